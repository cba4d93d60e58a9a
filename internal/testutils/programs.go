package testutils

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// CountPrograms counts the BPF programs loaded in the kernel whose names
// start with prefix (e.g. "probe_" for bpf/probe.c): a link that stays
// attached keeps its program loaded, so a count that does not fall back
// after a capture means something was left behind.
func CountPrograms(tb testing.TB, prefix string) int {
	tb.Helper()
	n := 0
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return n
		}
		if err != nil {
			tb.Fatalf("iterate BPF programs: %v", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		info, err := p.Info()
		p.Close()
		if err == nil && strings.HasPrefix(info.Name, prefix) {
			n++
		}
	}
}

// WaitProgramsUnloaded waits until no more programs named prefix* are
// loaded than before (the kernel frees a closed program after an RCU grace
// period), and fails the test when that takes more than 5 s.
func WaitProgramsUnloaded(tb testing.TB, prefix string, before int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := CountPrograms(tb, prefix)
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s* programs still loaded: %d before, %d now", prefix, before, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
