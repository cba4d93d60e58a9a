package progcap

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/procfd"
)

// Alive tells whether anything but this capture still keeps the program
// (bpfcap.LivenessChecker): a BPF link attaching it, or another process
// holding it open (its loader). Once the loader exits and its links are
// gone, the program runs nowhere and this capture would see nothing:
// Alive then returns an error wrapping hook.ErrGone.
//
// Only a program seen kept that way once is ever reported gone: one
// attached without a link (netlink XDP or tc) or kept only by a pin
// cannot be told from one that runs nowhere, and reads as alive, as does
// anything Alive cannot see (after -Z).
func (c *Capture) Alive() error {
	info, err := c.prog.Info()
	if err != nil {
		return nil
	}
	id, ok := info.ID()
	if !ok {
		return nil
	}
	kept, known := progKept(id)
	if !known {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kept {
		c.keptSeen = true
		return nil
	}
	if c.keptSeen {
		return fmt.Errorf("%s: its loader exited and nothing attaches it any more: nothing more to capture: %w", c.desc, hook.ErrGone)
	}
	return nil
}

// progKept reports whether a BPF link attaches program id or a process
// other than this one holds it.
func progKept(id ebpf.ProgramID) (kept, known bool) {
	var it link.Iterator
	for it.Next() {
		if info, err := it.Link.Info(); err == nil && info.Program == id {
			it.Link.Close()
			return true, true
		}
	}
	if it.Err() != nil {
		return false, false
	}
	return processHolds(id)
}

// processHolds reports whether a process other than this one has program
// id open. A process whose descriptors are not ours to see leaves it
// unknown, unless another one is seen holding it.
func processHolds(id ebpf.ProgramID) (held, known bool) {
	held, denied, err := procfd.OthersHold(procfd.Program, uint64(id))
	if err != nil || (denied && !held) {
		return false, false
	}
	return held, true
}
