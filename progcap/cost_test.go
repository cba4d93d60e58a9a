package progcap_test

import (
	"math"
	"sort"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	xdpbench "github.com/bpfcap/bpfcap/bench/xdp"
	example "github.com/bpfcap/bpfcap/examples/progcap"
	"github.com/bpfcap/bpfcap/progcap"
)

// costFrame is a 60-byte UDP frame to port 5353, which the examples' rule
// matches: the program reaches its bpfcap_output() call.
func costFrame(tb testing.TB) []byte {
	tb.Helper()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 5353}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(make([]byte, 18)))
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// costPrograms loads the XDP example without the helper twice (the
// baseline and its twin, whose difference is the noise) and with the
// helper, capture off.
func costPrograms(tb testing.TB) (base, twin, helper *ebpf.Program) {
	tb.Helper()
	base = loadXDP(tb, example.XDPOptions{NoOutput: true}).Program
	twin = loadXDP(tb, example.XDPOptions{NoOutput: true}).Program
	helper = loadXDP(tb, example.XDPOptions{}).Program
	return base, twin, helper
}

// checkVerdict makes sure the frame takes the rule's path (XDP_PASS with
// a hit counted) in every program.
func checkVerdict(tb testing.TB, frame []byte, progs ...*ebpf.Program) {
	tb.Helper()
	for _, p := range progs {
		ret, err := p.Run(&ebpf.RunOptions{Data: frame})
		if err != nil {
			tb.Fatal(err)
		}
		if ret != 2 {
			tb.Fatalf("verdict %d, want XDP_PASS (2)", ret)
		}
	}
}

// costRatios measures the programs interleaved and returns helper/base
// and the noise |twin-base|/base.
func costRatios(tb testing.TB, repeat, rounds int) (ratio, noise float64, ns []float64) {
	tb.Helper()
	base, twin, helper := costPrograms(tb)
	frame := costFrame(tb)
	checkVerdict(tb, frame, base, twin, helper)
	if on, err := progcap.Enabled(helper); err != nil || on {
		tb.Fatalf("capture enabled = %v (%v), want off", on, err)
	}
	// One interleaved round per call; the kernel reports whole ns per
	// run, so the middle half of the rounds is averaged (a trimmed mean)
	// for a finer figure than the median.
	progs := []*ebpf.Program{base, helper, twin}
	runs := make([][]time.Duration, len(progs))
	for r := 0; r < rounds; r++ {
		d, err := xdpbench.MedianRuns(progs, frame, repeat, 1)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range progs {
			runs[i] = append(runs[i], d[i])
		}
	}
	ns = make([]float64, len(progs))
	for i := range progs {
		ns[i] = trimmedMean(runs[i])
	}
	ratio = ns[1] / ns[0]
	noise = math.Abs(ns[2]-ns[0]) / ns[0]
	return ratio, noise, ns
}

// trimmedMean averages the middle half of ds, in ns.
func trimmedMean(ds []time.Duration) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := len(s) / 4
	var sum float64
	for _, d := range s[q : len(s)-q] {
		sum += float64(d)
	}
	return sum / float64(len(s)-2*q)
}

// TestOutputCostWithinNoise: with capture off, the XDP example with
// bpfcap_output() runs (BPF_PROG_TEST_RUN, interleaved rounds) within
// noise of the same program built without it: at most 1.05 x, or 1 + 3 x
// the difference between two loads of the same build if that is larger.
func TestOutputCostWithinNoise(t *testing.T) {
	ratio, noise, d := costRatios(t, 100000, 24)
	bound := math.Max(1.05, 1+3*noise)
	t.Logf("no helper %.1f ns, helper off %.1f ns, no helper again %.1f ns per run: ratio %.3f, noise %.3f, bound %.3f", d[0], d[1], d[2], ratio, noise, bound)
	if ratio > bound {
		t.Fatalf("with capture off the helper costs %.3f x the program without it, want <= %.3f", ratio, bound)
	}
}

// BenchmarkOutputCost reports the XDP example's time per run without the
// helper, with it (capture off), and the ratio and the noise.
func BenchmarkOutputCost(b *testing.B) {
	var sumRatio, sumNoise float64
	var sums [3]float64
	for i := 0; i < b.N; i++ {
		ratio, noise, d := costRatios(b, 200000, 16)
		sumRatio += ratio
		sumNoise += noise
		for j := range sums {
			sums[j] += d[j]
		}
	}
	n := float64(b.N)
	b.ReportMetric(sums[0]/n, "nohelper-ns/run")
	b.ReportMetric(sums[1]/n, "helper-off-ns/run")
	b.ReportMetric(sumRatio/n, "helper/nohelper")
	b.ReportMetric(sumNoise/n, "noise")
}
