package hook

import (
	"testing"
	"time"
)

func TestProducerOnly(t *testing.T) {
	spec, _ := loadCapturetest()
	ring, err := NewRing(spec, RingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	for _, o := range []Options{{Program: "capture_direct", Ifindex: 12345}, {Program: "capture_direct", Hook: 1}} {
		prog, err := Load(spec, ring, o)
		if err != nil {
			t.Fatal(err)
		}
		pkt := frame(17, 53, 64)
		for i := 0; i < 3; i++ {
			start := time.Now()
			_, d, err := prog.Program.Benchmark(pkt, 4096, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v: %v per run (kernel-measured), wall %v per run", o.Ifindex, d, time.Since(start)/4096)
		}
		prog.Close()
	}
}
