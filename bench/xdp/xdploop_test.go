package xdpbench

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestXDPLoopClose checks that closing the loop from a thread outside its
// namespace removes its veth pair there (and nothing elsewhere).
func TestXDPLoopClose(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	var l *xdpLoop
	err := testutils.Do(t, p.HostNS, func() error {
		var err error
		l, err = newXDPLoop(p.HostIndex)
		return err
	})
	if errors.Is(err, ebpf.ErrNotSupported) {
		kconfig.SkipOrFailFeature(t, err, "XDP broadcast redirect (BPF_F_BROADCAST)", "5.16")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(p.HostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range []string{l.name + "a", l.name + "b"} {
		if _, err := h.LinkByName(name); err == nil {
			t.Errorf("%s still exists after Close", name)
		}
	}
}
