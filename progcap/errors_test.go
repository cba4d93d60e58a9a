package progcap_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	example "github.com/bpfcap/bpfcap/examples/progcap"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/progcap"
)

// TestOpenErrors checks the messages for programs bpfcap cannot capture
// and selectors that name nothing.
func TestOpenErrors(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	plainName := uniqueName("pcp")
	plain, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: plainName, Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plainPin := pinPath(t)
	if err := plain.Pin(plainPin); err != nil {
		t.Fatal(err)
	}
	noOut := loadXDP(t, example.XDPOptions{NoOutput: true})
	mapPin := pinPath(t)
	if err := noOut.Rules.Pin(mapPin); err != nil {
		t.Fatal(err)
	}
	twin := uniqueName("pct")
	a := loadXDP(t, example.XDPOptions{Name: twin})
	b := loadXDP(t, example.XDPOptions{Name: twin})

	for _, tc := range []struct {
		name     string
		sel      progcap.Selector
		want     []string
		notFound bool
	}{
		{"no capture maps", progcap.Selector{Pinned: plainPin}, []string{plainName, "include bpf/bpfcap.h", "bpfcap_output()"}, true},
		{"built without the helper", progcap.Selector{ID: progID(t, noOut.Program)}, []string{"progcap_xdp", "include bpf/bpfcap.h"}, true},
		{"pinned map", progcap.Selector{Pinned: mapPin}, []string{mapPin, "Hash map", "progcap_rules", "not a program"}, false},
		{"missing pin", progcap.Selector{Pinned: mapPin + "-none"}, []string{"no such file", "bpftool prog pin"}, false},
		{"unknown id", progcap.Selector{ID: 0x7ffffff0}, []string{"no BPF program with id 2147483632"}, true},
		{"unknown name", progcap.Selector{Name: uniqueName("pcn")}, []string{"no BPF program named"}, true},
		{"ambiguous name", progcap.Selector{Name: twin}, []string{"2 BPF programs are named", fmt.Sprint(progID(t, a.Program)), fmt.Sprint(progID(t, b.Program)), "bpfcap prog id ID"}, false},
		{"no selector", progcap.Selector{}, []string{"exactly one of"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := progcap.Open(tc.sel, progcap.Options{})
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if errors.Is(err, progcap.ErrNotFound) != tc.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, !tc.notFound, tc.notFound)
			}
		})
	}
}
