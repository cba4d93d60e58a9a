package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// TestTraceHostTrackDNAT: `bpfcap trace tp_btf:netif_receive_skb
// tp_btf:kfree_skb --track --stack 'tcp port 9999'` with a DNAT rule
// (9999 -> 8080, nothing listening) in the peer's netns: tshark reads
// the SYN rewritten to 8080 at kfree_skb with the packet id
// (frame.packet_id) it had at netif_receive_skb, and a comment with the
// drop location and the stack. Without --track the rewritten SYN is not
// in the file. Needs iptables and tshark (host only).
func TestTraceHostTrackDNAT(t *testing.T) {
	testutils.RequireRoot(t)
	for _, tool := range []string{"iptables", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("host test needs %s: %v", tool, err)
		}
	}
	p := testutils.NewVethPair(t)
	if out, err := testutils.Exec(p.PeerNSName, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9999", "-j", "DNAT", "--to-destination", p.PeerIP.String()+":8080"); err != nil {
		t.Fatalf("iptables DNAT: %v\n%s", err, out)
	}
	syn := func() {
		testutils.Do(t, p.HostNS, func() error {
			c, err := net.DialTimeout("tcp4", fmt.Sprintf("%s:9999", p.PeerIP), 300*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return nil
		})
	}
	// capture returns tshark's lines "dstport<TAB>packet_id<TAB>comment"
	// for the TCP packets at each hook, by hook name.
	capture := func(t *testing.T, flags ...string) map[string][]string {
		out := filepath.Join(t.TempDir(), "track.pcapng")
		args := append([]string{"trace", "tp_btf:netif_receive_skb", "tp_btf:kfree_skb", "-w", out}, flags...)
		args = append(args, "tcp port 9999")
		tr := startRun(t, args...)
		tr.waitAttached(t, out)
		for range 3 {
			syn()
		}
		if err := tr.stop(t); err != nil {
			t.Fatalf("bpfcap %v: %v\n%s", args, err, tr.stderr)
		}
		res, err := exec.Command("tshark", "-r", out, "-Y", "tcp", "-T", "fields", "-e", "frame.interface_name", "-e", "tcp.dstport", "-e", "frame.packet_id", "-e", "frame.comment").CombinedOutput()
		if err != nil {
			t.Fatalf("tshark: %v\n%s", err, res)
		}
		byHook := map[string][]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(res)), "\n") {
			hook, rest, ok := strings.Cut(l, "\t")
			if ok && !strings.HasPrefix(l, "Running as user") {
				byHook[hook] = append(byHook[hook], rest)
			}
		}
		return byHook
	}
	const rx, free = "tp_btf:netif_receive_skb:arg1", "tp_btf:kfree_skb:arg1"

	t.Run("track", func(t *testing.T) {
		got := capture(t, "--track", "--stack")
		ids := map[string]bool{}
		for _, l := range got[rx] {
			if f := strings.Split(l, "\t"); f[0] == "9999" {
				ids[f[1]] = true
			}
		}
		if len(ids) == 0 {
			t.Fatalf("no SYN to 9999 at %s: %q", rx, got)
		}
		n := 0
		for _, l := range got[free] {
			f := strings.Split(l, "\t")
			if len(f) < 3 || f[0] != "8080" {
				continue
			}
			n++
			if !ids[f[1]] {
				t.Errorf("SYN to 8080 at kfree_skb has packet id %s, none of those at netif_receive_skb (%v)", f[1], ids)
			}
			c := &pcapng.Packet{}
			rest := pcapng.ParseComment(f[2], c)
			if !strings.Contains(rest, "location=") || !strings.Contains(rest, "stack=") {
				t.Errorf("comment %q lacks location= or stack=", f[2])
			}
		}
		if n == 0 {
			t.Errorf("with --track no SYN to 8080 at kfree_skb: %q", got[free])
		}
	})
	t.Run("untracked", func(t *testing.T) {
		got := capture(t)
		if len(got[rx]) == 0 {
			t.Fatalf("no SYN to 9999 at %s: %q", rx, got)
		}
		for _, l := range got[free] {
			if strings.HasPrefix(l, "8080\t") {
				t.Errorf("without --track the filter 'tcp port 9999' passed a SYN to 8080: %q", l)
			}
		}
	})
}

// TestSummaryLineTrackComment: the terminal line ends with what the
// source adds to the comment (parent, location, stack).
func TestSummaryLineTrackComment(t *testing.T) {
	p := &pcapng.Packet{
		Hook: "tp_btf:kfree_skb", Flags: pcapng.HasPacketID, PacketID: 0x1000000000002,
		DropReason: "NETFILTER_DROP", Comment: "location=nf_hook_slow+0x8c stack=nf_hook_slow<-ip_rcv",
		Data: make([]byte, 14), WireLen: 14,
	}
	line := summaryLine(p, pcapng.LinkTypeEthernet, time.UTC)
	if !strings.HasSuffix(line, " [NETFILTER_DROP] id 0x1000000000002 location=nf_hook_slow+0x8c stack=nf_hook_slow<-ip_rcv") {
		t.Errorf("line %q does not end with the reason, id, location and stack", line)
	}
}

// TestTraceHostTrackAllJourney is the proof on this machine:
// `bpfcap trace all --track 'tcp port 6666'` with a DNAT (6666 -> 8080)
// and a DROP of 8080 in the peer's netns; `bpfcap journey` shows the
// SYN's journey through the hooks after the rewrite, ending in kfree_skb
// with NETFILTER_DROP and its location. Needs iptables (host only).
func TestTraceHostTrackAllJourney(t *testing.T) {
	testutils.RequireRoot(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("host test needs iptables: %v", err)
	}
	p := testutils.NewVethPair(t)
	for _, rule := range [][]string{
		{"-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "6666", "-j", "DNAT", "--to-destination", p.PeerIP.String() + ":8080"},
		{"-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"},
	} {
		if out, err := testutils.Exec(p.PeerNSName, "iptables", rule...); err != nil {
			t.Fatalf("iptables %v: %v\n%s", rule, err, out)
		}
	}
	out := filepath.Join(t.TempDir(), "all.pcapng")
	tr := startPatternRun(t, "trace", "all", "--track", "-w", out, "tcp port 6666")
	// Loading some thirty programs takes tens of seconds on a loaded
	// machine: longer than waitAttached's bound for one hook.
	testutils.WaitFor(t, "bpfcap trace all to attach", 180*time.Second, func() bool {
		_, err := os.Stat(out)
		return err == nil
	})
	testutils.Do(t, p.HostNS, func() error {
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("%s:6666", p.PeerIP), 300*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return nil
	})
	if err := tr.stop(t); err != nil {
		t.Fatalf("bpfcap trace all: %v\n%s", err, tr.stderr)
	}
	text := runJourney(t, out)
	if !strings.Contains(text, "tp_btf:kfree_skb") || !strings.Contains(text, "dropped: NETFILTER_DROP at n") {
		t.Errorf("no journey ends in kfree_skb with NETFILTER_DROP and a netfilter location:\n%s\nstderr:\n%s", text, tr.stderr)
	}
	// The SYN kept its id after the rewrite: tshark sees port 8080 in the
	// file although the filter names 6666.
	res, err := exec.Command("tshark", "-r", out, "-Y", "tcp.dstport==8080", "-T", "fields", "-e", "frame.packet_id").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, res)
	}
	ids := 0
	for _, l := range strings.Split(strings.TrimSpace(string(res)), "\n") {
		if l != "" && !strings.HasPrefix(l, "Running as user") {
			ids++
		}
	}
	if ids == 0 {
		t.Errorf("no packet with an id to 8080 in the file: %q", res)
	}
}
