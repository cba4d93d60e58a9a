package tccap

import (
	"testing"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// BenchmarkMetaFilter runs the tc program on a 64-byte frame (without a
// socket) with no metadata filter (every packet captured), and with a
// --mark and a --pid filter that reject it before the copy.
func BenchmarkMetaFilter(b *testing.B) {
	testutils.RequireRoot(b)
	spec, err := loadCapture()
	if err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 64)
	pkt[12], pkt[13] = 0x08, 0x00
	for _, c := range []struct {
		name string
		want hook.MetaFilter
	}{
		{"none", hook.MetaFilter{}},
		{"mark", hook.MetaFilter{Mark: 7, MarkMask: 0xff}},
		{"pid", hook.MetaFilter{PID: 1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ring, err := hook.NewRing(spec, hook.RingOptions{Size: 4 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer ring.Close()
			p, err := hook.Load(spec, ring, hook.Options{Program: captureProgram, LinkType: pcapng.LinkTypeEthernet, Backend: hook.Direct, Want: c.want})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			_, per, err := p.Program.Benchmark(pkt, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/run")
		})
	}
}
