package xdpbench

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/xdpcap"
)

// FillReturnOnly puts into every slot of h a program that only returns
// the slot's action. A program instrumented with that hook pays for the
// xdpcap tail call and nothing else: the floor under the cost of any
// capture program in the hook. Call release when done with the programs.
func FillReturnOnly(h *xdpcap.Hook) (release func(), err error) {
	var progs []*ebpf.Program
	release = func() {
		for _, p := range progs {
			p.Close()
		}
	}
	for slot := 0; slot < h.NumSlots(); slot++ {
		p, err := xdpProg("bpfcap_ret", int32(slot))
		if err != nil {
			release()
			return nil, fmt.Errorf("load the return-only program for slot %d: %w", slot, err)
		}
		progs = append(progs, p)
		if err := h.Map().Put(uint32(slot), p); err != nil {
			release()
			return nil, fmt.Errorf("fill hook slot %d: %w", slot, err)
		}
	}
	return release, nil
}
