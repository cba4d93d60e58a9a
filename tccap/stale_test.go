package tccap_test

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/tccap"
)

// TestStaleClsactFilter: a cls_bpf filter left by a killed bpfcap (its
// program held by nobody) is removed by the next clsact capture with a
// notice; one whose program a running process holds is kept.
func TestStaleClsactFilter(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	h, err := netlink.NewHandleAt(p.HostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.QdiscAdd(&netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: p.HostIndex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}); err != nil {
		t.Fatal(err)
	}
	leave := func(prio uint16) *ebpf.Program {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpfcap_tc", Type: ebpf.SchedCLS, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()}})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.FilterAdd(&netlink.BpfFilter{
			FilterAttrs:  netlink.FilterAttrs{LinkIndex: p.HostIndex, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Priority: prio, Protocol: unix.ETH_P_ALL},
			Fd:           prog.FD(),
			Name:         "bpfcap_tc",
			DirectAction: true,
		}); err != nil {
			t.Fatal(err)
		}
		return prog
	}
	leave(1).Close() // stale: nobody holds it
	held := leave(2)
	testutils.HoldInChild(t, held.FD())
	held.Close()

	var notices strings.Builder
	var c *tccap.Capture
	err = testutils.Do(t, p.HostNS, func() error {
		var err error
		c, err = tccap.Open(p.HostName, tccap.Options{Mode: tccap.ModeClsact, Directions: []tccap.Direction{tccap.Ingress}, CaptureOptions: hook.CaptureOptions{Ring: ringWith(&notices)}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notices.String(), "removed a tc filter left by a bpfcap that did not exit cleanly") {
		t.Fatalf("no notice: %q", notices.String())
	}
	prios := func() []uint16 {
		l, err := h.LinkByIndex(p.HostIndex)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := h.FilterList(l, netlink.HANDLE_MIN_INGRESS)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint16
		for _, f := range fs {
			out = append(out, f.Attrs().Priority)
		}
		return out
	}
	// The stale filter (priority 1) is gone; bpfcap's new one took its
	// place; the held one (2) stays.
	if got := prios(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("filter priorities during capture: %v, want [1 2]", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := prios(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("filter priorities after capture: %v, want [2] (the running one's)", got)
	}
	// bpfcap did not create the qdisc, so it stays.
	if !clsactPresent(t, p) {
		t.Fatal("bpfcap removed a clsact qdisc it did not create")
	}
}
