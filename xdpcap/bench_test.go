package xdpcap_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	xdpbench "github.com/bpfcap/bpfcap/bench/xdp"
	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// hookCostVariants loads the example firewall without a hook, with an
// empty hook, with bpfcap's capture programs and a filter that matches
// nothing the benchmark sends (inlined), the same counting every packet
// seen, and the same with the filter called in its stub subprogram.
func hookCostVariants(tb testing.TB) (names []string, progs []*ebpf.Program) {
	tb.Helper()
	testutils.RequireRoot(tb)
	add := func(name string, opts firewall.Options) {
		fw, err := firewall.Load(opts)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { fw.Close() })
		names, progs = append(names, name), append(progs, fw.Program)
	}
	add("nohook", firewall.Options{Layout: firewall.LayoutNoHook})
	for _, v := range []struct {
		name string
		opts *xdpcap.CaptureOptions
	}{
		{"empty", nil},
		{"filled", &xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "udp port 53"}}},
		{"filled-seen", &xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "udp port 53", CountSeen: true}}},
		{"filled-stub", &xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "udp port 53"}, FilterInStub: true}},
	} {
		pin := benchPin(tb)
		h, err := xdpcap.CreatePinned(pin)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { h.Close() })
		add(v.name, firewall.Options{Hook: h})
		if v.opts != nil {
			v.opts.Ring = hook.RingOptions{Size: 1 << 20}
			c, err := xdpcap.OpenCapture(pin, *v.opts)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { c.Close() })
		}
	}
	// The floor of the xdpcap design: a hook whose slots hold programs that
	// only return their action, so the difference from "empty" is the tail
	// call itself and the difference to "filled" is bpfcap's program.
	h, err := xdpcap.NewHook("bpfcap_floor")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	release, err := xdpbench.FillReturnOnly(h)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(release)
	add("tailcall", firewall.Options{Hook: h})
	return names, progs
}

func benchPin(tb testing.TB) string {
	tb.Helper()
	if t, ok := tb.(*testing.T); ok {
		return pinPath(t)
	}
	p := fmt.Sprintf("/sys/fs/bpf/bpfcap-bench-%d-%d", os.Getpid(), pinCounter.Add(1))
	tb.Cleanup(func() { removePin(p) })
	return p
}

func medianRuns(tb testing.TB, progs []*ebpf.Program, frame []byte, repeat, rounds int) []time.Duration {
	tb.Helper()
	d, err := xdpbench.MedianRuns(progs, frame, repeat, rounds)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// BenchmarkHookCost measures, with BPF_PROG_TEST_RUN on a 60-byte UDP
// frame that the filter does not match, the example firewall's time per
// packet in each variant, interleaved, and reports it as ratios to the
// firewall without a hook (DESIGN target: filled < 1.05).
func BenchmarkHookCost(b *testing.B) {
	names, progs := hookCostVariants(b)
	frame := udpFrame(b, 40000, 2000, make([]byte, 18))
	const repeat = 200000
	sums := make([]time.Duration, len(progs))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, d := range medianRuns(b, progs, frame, repeat, 9) {
			sums[j] += d
		}
	}
	b.StopTimer()
	for j, name := range names {
		b.ReportMetric(float64(sums[j])/float64(b.N), name+"-ns/pkt")
		if j > 0 {
			b.ReportMetric(float64(sums[j])/float64(sums[0]), name+"/nohook")
		}
	}
}

// TestHookCostBudget guards the hook's cost: with bpfcap's programs in the
// hook and a filter that does not match, the firewall program may be at
// most 50% slower than without a hook. This measures the program alone
// (BPF_PROG_TEST_RUN), the strictest view: here about 1.10-1.14 x, of which
// the tail call itself ("tailcall") is up to 1.07 x, the rest the filter.
// DESIGN's target (< 5%) is for forwarding, which bench/xdp's
// BenchmarkXDPForwardCost measures (about 1.04 x). The bound catches
// regressions such as a per-packet map update or helper call on the
// non-matching path.
func TestHookCostBudget(t *testing.T) {
	names, progs := hookCostVariants(t)
	frame := udpFrame(t, 40000, 2000, make([]byte, 18))
	d := medianRuns(t, progs, frame, 50000, 15)
	for j := range names {
		t.Logf("%s: %.2f x nohook (%v per packet)", names[j], float64(d[j])/float64(d[0]), d[j])
	}
	if r := float64(d[2]) / float64(d[0]); r > 1.5 {
		t.Fatalf("filled hook with a non-matching filter costs %.2f x no hook, want <= 1.5", r)
	}
	for _, p := range progs[2:] {
		if got := runVerdict(t, p, frame); got != xdpcap.Pass {
			t.Fatalf("verdict with the hook filled: %s, want pass", got)
		}
	}
}
