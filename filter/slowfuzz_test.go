package filter

import (
	"testing"
	"time"
)

func TestSlowFuzzHunt(t *testing.T) {
	tb, err := NewTestBed()
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	g := newPacketGen(99)
	deadline := time.Now().Add(20 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		code := g.bytes(g.pick(300))
		prog, _ := fuzzProgram(code)
		for _, be := range []Backend{Direct, Scratch} {
			s := time.Now()
			insns, err := Translate(prog, Options{Backend: be, ScratchSize: TestScratchSize})
			if err != nil {
				continue
			}
			td := time.Since(s)
			kf, err := tb.LoadTranslated(insns, be)
			ld := time.Since(s)
			if err != nil {
				t.Fatalf("%v: %v", prog, err)
			}
			if ld > 200*time.Millisecond {
				t.Logf("slow: translate %v load %v verified %d insns %d: %v", td, ld, kf.VerifiedInstructions, len(insns), prog)
			}
			kf.Close()
			n++
		}
	}
	t.Logf("%d loads", n)
}
