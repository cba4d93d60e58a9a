package filter

import (
	"testing"
	"time"
)

func TestFilterExpLoad(t *testing.T) {
	tb, err := NewTestBed()
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for _, expr := range []string{"protochain 6", "ip6 protochain 6 or ip6 protochain 17", "(ip protochain 1 and src and dst portrange 35-2365 or mpls 100 and not src or dst portrange 1776-3325)"} {
		prog, _ := Compile(expr, LinkEthernet, 262144)
		for _, be := range []Backend{Direct, Scratch} {
			s := time.Now()
			kf, err := tb.Load(prog, be)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%q %s: %d insns, %d verified, %v", expr, be, kf.Instructions, kf.VerifiedInstructions, time.Since(s))
			kf.Close()
		}
	}
}
