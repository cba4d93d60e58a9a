//go:build dpdk

package dpdk

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// maxSlots bounds how many captures of one primary can run at once, and
// so how many rings and pools bpfcap ever leaves in its hugepages.
const maxSlots = 16

// claimSlot locks the first free capture slot of this primary and returns
// the name of its ring and pool. Rings and pools are never freed while
// the primary runs (DPDK 22.11's pdump may still touch them after
// rte_pdump_disable, and a primary crashed when they were freed), so each
// slot's are reused by the next capture that takes the slot, and the
// memory bpfcap leaves behind stays bounded.
func (cp *Capture) claimSlot() (string, error) {
	dir := filepath.Dir(cp.p.configPath)
	for n := range maxSlots {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("bpfcap-slot-%d.lock", n)), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return "", fmt.Errorf("claim a capture slot in %s: %w", dir, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		cp.slot = f
		// The name carries what the ring and pool were made for, so a
		// capture never reuses ones of another size or ops alignment.
		room := min(cp.opts.SnapLen, 2176)
		suffix := ""
		if cp.opts.NoAlignOps {
			suffix = "u"
		}
		return fmt.Sprintf("bpfcap_s%d_%d_%d%s", n, cp.opts.RingSize, room, suffix), nil
	}
	return "", fmt.Errorf("all %d capture slots of the primary are in use: stop another bpfcap dpdk first", maxSlots)
}

// releaseSlot unlocks the slot (also done by the kernel when we exit).
func (cp *Capture) releaseSlot() {
	if cp.slot != nil {
		cp.slot.Close()
		cp.slot = nil
	}
}
