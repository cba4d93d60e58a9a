package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap/pcapng"
)

// newJourneyCmd builds `bpfcap journey FILE`: the path of each packet
// through the hooks of a capture bpfcap wrote.
func newJourneyCmd(env *cliEnv) *cobra.Command {
	var (
		asJSON bool
		id     string
	)
	cmd := &cobra.Command{
		Use:   "journey FILE",
		Short: "show each packet's path through the hooks of a capture bpfcap wrote",
		Long: `journey reads a pcapng file bpfcap wrote and prints, for each packet id
(epb_packetid: the packet seen at several hooks), one block: the hooks it
passed in time order, each with the time since the previous hop, the
device, the network namespace and the verdict; and at the end the drop
reason (and the drop location, when the file records it). A journey ends
at a hook that frees the packet (kfree_skb, consume_skb, ...): a later hop
with the same id is another packet. Blocks come in the order their
packets were first seen. FILE "-" is stdin.

--json writes one JSON object per packet and line instead, for scripts,
with the keys id (a hex string, null for a packet without one), first
(the time of the first hop), hops, reason and location; each hop has
hook, time, since_prev_ns, device, netns, verdict, reason and location.

--id ID prints only the journeys of one packet id; Wireshark shows the same
packets with the display filter frame.packet_id == ID.`,
		Example: `  bpfcap trace all -w path.pcapng 'tcp port 6666'
  bpfcap journey path.pcapng
  bpfcap journey --json path.pcapng | jq 'select(.reason != "")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			journeys, err := readJourneys(env.stdin, args[0])
			if err != nil {
				return err
			}
			if id != "" {
				if journeys, err = selectJourneys(journeys, id); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJourneysJSON(env.stdout, journeys)
			}
			return writeJourneys(env.stdout, journeys)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per packet and line")
	cmd.Flags().StringVar(&id, "id", "", "only the journeys of this packet id (0x... as printed, or decimal as Wireshark's frame.packet_id)")
	return cmd
}

// hop is one packet seen at one hook.
type hop struct {
	Hook     string
	Time     time.Time
	Device   string
	Netns    uint32
	HasNetns bool
	Verdict  string
	Reason   string
	Location string
}

// journey is one packet id's hops, in time order.
type journey struct {
	ID    uint64
	HasID bool
	Hops  []hop
}

// end returns the drop reason and location the journey ends with: those
// of its last hop that has a reason.
func (j *journey) end() (reason, location string) {
	for i := len(j.Hops) - 1; i >= 0; i-- {
		if j.Hops[i].Reason != "" {
			return j.Hops[i].Reason, j.Hops[i].Location
		}
	}
	return "", ""
}

// errNotBpfcap says a file was not written by bpfcap.
var errNotBpfcap = errors.New("not a capture bpfcap wrote")

// readJourneys reads path ("-": in) and groups its packets by packet id,
// in the order ids were first seen.
func readJourneys(in io.Reader, path string) ([]*journey, error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("journey: %w", err)
		}
		defer f.Close()
		in = f
	}
	br := bufio.NewReaderSize(in, 1<<16)
	magic, err := br.Peek(4)
	switch {
	case len(magic) == 0:
		return nil, fmt.Errorf("journey %s: %w: the file is empty", path, errNotBpfcap)
	case err != nil || !bytes.Equal(magic, pcapngMagic):
		return nil, fmt.Errorf("journey %s: %w: not pcapng (bpfcap writes pcapng, with a packet id per packet)", path, errNotBpfcap)
	}
	rd, err := pcapng.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("journey %s: %w: %w", path, errNotBpfcap, err)
	}
	if app := rd.Application(); app != "bpfcap" {
		return nil, fmt.Errorf("journey %s: %w: it was written by %q, and journey reads the packet ids and metadata bpfcap records (capture with bpfcap trace -w FILE)", path, errNotBpfcap, app)
	}
	type idHop struct {
		hop
		id    uint64
		hasID bool
	}
	var hops []idHop
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("journey %s: %w", path, err)
		}
		hops = append(hops, idHop{hopOf(p), p.PacketID, p.Flags&pcapng.HasPacketID != 0})
	}
	// Records of different CPUs reach the file slightly out of order.
	slices.SortStableFunc(hops, func(a, b idHop) int { return a.Time.Compare(b.Time) })
	var out []*journey
	open := map[uint64]*journey{}
	for _, h := range hops {
		j := open[h.id]
		if !h.hasID || j == nil {
			j = &journey{ID: h.id, HasID: h.hasID}
			out = append(out, j)
			if h.hasID {
				open[h.id] = j
			}
		}
		j.Hops = append(j.Hops, h.hop)
		// Once freed, the id may come back on another packet.
		if frees(h.Hook) {
			delete(open, h.id)
		}
	}
	return out, nil
}

// freeingHooks are the functions and tracepoints that free an sk_buff:
// a journey ends there.
var freeingHooks = []string{"kfree_skb", "kfree_skb_reason", "sk_skb_reason_drop", "consume_skb", "__kfree_skb", "kfree_skbmem", "napi_consume_skb"}

// frees reports whether the hook spec hook ("tp_btf:kfree_skb:arg1",
// "tracepoint:skb:consume_skb") is one where the sk_buff is freed.
func frees(hook string) bool {
	for _, f := range strings.Split(hook, ":")[1:] {
		if slices.Contains(freeingHooks, f) {
			return true
		}
	}
	return false
}

// selectJourneys keeps the journeys of packet id text: hex with 0x, or
// decimal.
func selectJourneys(journeys []*journey, text string) ([]*journey, error) {
	id, err := strconv.ParseUint(text, 0, 64)
	if err != nil {
		return nil, fmt.Errorf("journey --id %q: want a packet id, 0x... as journey prints it or decimal as Wireshark's frame.packet_id", text)
	}
	var out []*journey
	for _, j := range journeys {
		if j.HasID && j.ID == id {
			out = append(out, j)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("journey --id %s: no packet with this id in the file", text)
	}
	return out, nil
}

// hopOf takes a packet's hop from its options and bpfcap's comment.
func hopOf(p *pcapng.Packet) hop {
	pcapng.ParseComment(p.Comment, p)
	return packetHop(p)
}

// packetHop is the hop a packet whose metadata is parsed stands for.
func packetHop(p *pcapng.Packet) hop {
	return hop{
		Hook:     p.Hook,
		Time:     p.Timestamp,
		Device:   p.Device,
		Netns:    p.Netns,
		HasNetns: p.Flags&pcapng.HasNetns != 0,
		Verdict:  pcapng.VerdictName(p.VerdictType, p.Verdict),
		Reason:   p.DropReason,
		Location: locationOf(p.Comment),
	}
}

// locationOf returns the drop location a packet's comment records: its
// word "location=SYMBOL+OFF" ("" for none).
func locationOf(comment string) string {
	loc := ""
	for _, w := range strings.Fields(comment) {
		if l, ok := strings.CutPrefix(w, "location="); ok {
			loc = l
		}
	}
	return loc
}

// formatID writes a packet id as bpfcap prints it.
func formatID(j *journey) string {
	if !j.HasID {
		return "(no id)"
	}
	return "0x" + strconv.FormatUint(j.ID, 16)
}

// writeJourneys prints one block per journey, a blank line between two.
func writeJourneys(w io.Writer, journeys []*journey) error {
	bw := bufio.NewWriter(w)
	for i, j := range journeys {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		if err := writeJourney(bw, j); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// writeJourney prints one journey's block: a line naming the packet, one
// line per hop (hook, time since the previous hop, device, netns,
// verdict) and, when the packet was dropped, the reason and location. The
// file view (bpfcap journey) and the live view (bpfcap trace) both print
// with it.
func writeJourney(w io.Writer, j *journey) error {
	first, last := j.Hops[0].Time, j.Hops[len(j.Hops)-1].Time
	hops := "1 hop"
	if len(j.Hops) > 1 {
		hops = fmt.Sprintf("%d hops in %s", len(j.Hops), last.Sub(first))
	}
	fmt.Fprintf(w, "packet %s at %s (%s)\n", formatID(j), first.Local().Format("15:04:05.000000"), hops)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	prev := first
	for _, h := range j.Hops {
		netns := "-"
		if h.HasNetns {
			netns = "netns " + strconv.FormatUint(uint64(h.Netns), 10)
		}
		fmt.Fprintf(tw, "  %s\t+%s\t%s\t%s\t%s\n", h.Hook, h.Time.Sub(prev), orDash(h.Device), netns, orDash(h.Verdict))
		prev = h.Time
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if reason, loc := j.end(); reason != "" {
		if loc != "" {
			reason += " at " + loc
		}
		_, err := fmt.Fprintf(w, "  dropped: %s\n", reason)
		return err
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// jsonHop and jsonJourney are the --json form.
type jsonHop struct {
	Hook        string    `json:"hook"`
	Time        time.Time `json:"time"`
	SincePrevNs int64     `json:"since_prev_ns"`
	Device      string    `json:"device"`
	Netns       *uint32   `json:"netns"`
	Verdict     string    `json:"verdict"`
	Reason      string    `json:"reason"`
	Location    string    `json:"location"`
}

type jsonJourney struct {
	ID       *string   `json:"id"`
	First    time.Time `json:"first"`
	Hops     []jsonHop `json:"hops"`
	Reason   string    `json:"reason"`
	Location string    `json:"location"`
}

// writeJourneysJSON writes one JSON object per journey and line.
func writeJourneysJSON(w io.Writer, journeys []*journey) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, j := range journeys {
		out := jsonJourney{First: j.Hops[0].Time}
		if j.HasID {
			id := formatID(j)
			out.ID = &id
		}
		out.Reason, out.Location = j.end()
		prev := out.First
		for _, h := range j.Hops {
			jh := jsonHop{Hook: h.Hook, Time: h.Time, SincePrevNs: h.Time.Sub(prev).Nanoseconds(),
				Device: h.Device, Verdict: h.Verdict, Reason: h.Reason, Location: h.Location}
			if h.HasNetns {
				ns := h.Netns
				jh.Netns = &ns
			}
			out.Hops = append(out.Hops, jh)
			prev = h.Time
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return bw.Flush()
}
