package xdpbench

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestProbeLiveFrames checks that the probe gives one of its three
// outcomes, the same one twice (it is cached).
func TestProbeLiveFrames(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	err := ProbeLiveFrames()
	t.Logf("live frames: %v", err)
	if err != nil && !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, unix.EPERM) {
		t.Fatalf("probe failed, neither not supported nor refused: %v", err)
	}
	if again := ProbeLiveFrames(); again != err {
		t.Fatalf("second probe gave %v, want the cached %v", again, err)
	}
}
