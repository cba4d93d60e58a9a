package progcap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	example "github.com/bpfcap/bpfcap/examples/progcap"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

var counter atomic.Uint32

// uniqueName returns a program name no other test process uses (at most
// 15 characters).
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, os.Getpid()%1000000, counter.Add(1))
}

// pinPath returns a fresh path on the BPF filesystem, removed at cleanup.
func pinPath(t *testing.T) string {
	p := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bpfcap-progtest-%d-%d", os.Getpid(), counter.Add(1)))
	t.Cleanup(func() { os.Remove(p) })
	return p
}

// loadXDP loads the XDP example with rules 5353 -> id 0x1001 (pass) and
// 9 -> id 0x2002 (drop).
func loadXDP(t testing.TB, opts example.XDPOptions) *example.XDP {
	t.Helper()
	testutils.RequireRoot(t)
	x, err := example.LoadXDP(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if err := x.SetRule(5353, 0x1001, false); err != nil {
		t.Fatal(err)
	}
	if err := x.SetRule(9, 0x2002, true); err != nil {
		t.Fatal(err)
	}
	return x
}

// attachPeer attaches prog at XDP on the peer end of p.
func attachPeer(t *testing.T, p *testutils.VethPair, prog *ebpf.Program) {
	t.Helper()
	err := testutils.Do(t, p.PeerNS, func() error {
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: p.PeerIndex})
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	})
	if err != nil {
		t.Fatalf("attach XDP: %v", err)
	}
}

func progID(t testing.TB, prog *ebpf.Program) ebpf.ProgramID {
	t.Helper()
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("the kernel gave no program id")
	}
	return id
}

// dropReason returns the value of enum skb_drop_reason's name in the
// running kernel's BTF.
func dropReason(t *testing.T, name string) uint64 {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		t.Fatal(err)
	}
	for _, v := range e.Values {
		if v.Name == name {
			return v.Value
		}
	}
	t.Fatalf("enum skb_drop_reason has no %s", name)
	return 0
}
