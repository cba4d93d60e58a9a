package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// TestTraceMaxRate: a flood through a hook with MaxRate is captured up to
// the bound (rate per CPU over the capture's lifetime plus the bursts), and
// the rest of the matched packets are counted as shed, apart from losses.
func TestTraceMaxRate(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	const port, rate = 6551, 100
	var (
		src  *Source
		sink *collectSink
		stop func() error
	)
	start := time.Now()
	err := testutils.Do(t, p.HostNS, func() error {
		src, sink, stop = runCapture(t, Options{
			Hooks:  []string{"tracepoint:net:net_dev_xmit"},
			Proto:  "eth",
			Device: "lo",
			CaptureOptions: hook.CaptureOptions{
				Filter:  fmt.Sprintf("udp dst port %d", port),
				MaxRate: rate,
			},
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := testutils.FloodUDP(t, p.HostNS, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, 64, time.Second)
	time.Sleep(200 * time.Millisecond) // let the reader drain the ring
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	src.Close()
	elapsed := time.Since(start)
	delivered := len(sink.find(func(*pcapng.Packet) bool { return true }))
	testutils.CheckRateBound(t, src.Stats()[0], sent, delivered, rate, elapsed)
}

// TestTraceFilterReads: the filter runs on a copy of only the bytes it
// reads; a filter naming the right payload word captures the datagram, one
// naming another word does not, both seeing it. The word lies in the
// linear part of a 1000-byte datagram, and in the paged frags of a
// 20000-byte one (where the kernel's page map is known).
func TestTraceFilterReads(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	for _, c := range []struct {
		name            string
		payloadLen, off int
		paged, perf     bool
	}{
		{"linear", 1000, 900, false, false},
		{"linear perf", 1000, 900, false, true},
		{"paged", 20000, 4000, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if pages := findPageMap(); c.paged && pages.Mode == fragsNone {
				if os.Getenv(kconfig.EnvVMTest) != "" && runtime.GOARCH == "amd64" && kconfig.Enabled("CONFIG_KALLSYMS_ALL") == kconfig.Yes {
					t.Fatalf("kernel config: CONFIG_KALLSYMS_ALL=y, yet paged data would not be copied: %s", pages.Reason)
				}
				t.Skipf("paged frags are not copied on this kernel (%s): TestTracePagedData covers that case", pages.Reason)
			}
			filterReads(t, 6552, c.payloadLen, c.off, c.perf)
		})
	}
}

// filterReads is one TestTraceFilterReads case: a payloadLen datagram to
// port, the filters naming its payload word at off, through a perf
// buffer or the ring buffer.
func filterReads(t *testing.T, port, payloadLen, off int, perf bool) {
	payload := make([]byte, payloadLen)
	for i := range payload {
		payload[i] = byte(i % 251)
	}
	word := binary.BigEndian.Uint32(payload[off:])
	p := testutils.NewVethPair(t)
	open := func(filter string) (*Source, *collectSink, func() error) {
		var (
			src  *Source
			sink *collectSink
			stop func() error
		)
		err := testutils.Do(t, p.HostNS, func() error {
			src, sink, stop = runCapture(t, Options{
				Hooks:  []string{"tracepoint:net:net_dev_xmit"},
				Proto:  "eth",
				Device: "lo",
				CaptureOptions: hook.CaptureOptions{
					Filter:    filter,
					Ring:      hook.RingOptions{Perf: perf},
					CountSeen: true,
				},
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if d := src.Interfaces()[0].Description; strings.Contains(d, "userspace") {
			t.Fatalf("the filter %q does not run in the kernel: %s", filter, d)
		}
		return src, sink, stop
	}
	base := fmt.Sprintf("udp dst port %d and udp[%d:4] = ", port, 8+off)
	_, yesSink, stopYes := open(base + fmt.Sprintf("0x%08x", word))
	no, noSink, stopNo := open(base + fmt.Sprintf("0x%08x", word+1))
	send := func() {
		testutils.Do(t, p.HostNS, func() error {
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.WriteToUDP(payload, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			return err
		})
	}
	all := func(*pcapng.Packet) bool { return true }
	waitFor(t, "the datagram with the matching word", send, func() bool { return len(yesSink.find(all)) > 0 })
	if err := stopYes(); err != nil {
		t.Fatal(err)
	}
	if err := stopNo(); err != nil {
		t.Fatal(err)
	}
	pk := yesSink.find(all)[0]
	if want := 14 + 20 + 8 + payloadLen; pk.WireLen != want || len(pk.Data) != want {
		t.Errorf("captured %d of %d bytes, want %d of %d", len(pk.Data), pk.WireLen, want, want)
	} else if !bytes.Equal(pk.Data[14+20+8:], payload) {
		t.Errorf("payload differs")
	}
	if n := len(noSink.find(all)); n != 0 {
		t.Errorf("the filter naming another word captured %d packets", n)
	}
	if st := no.Stats()[0]; st.Seen == 0 || st.Matched != 0 {
		t.Errorf("non-matching filter: stats %+v, want packets seen and none matched", st)
	}
}
