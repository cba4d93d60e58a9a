package xdpcap

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/hook"
)

// Alive tells whether the hook a hook capture fills is still the one
// pinned at its path and still used by an XDP program
// (bpfcap.LivenessChecker). Once the instrumented program exits, or the
// path is pinned again by a restarted one, this capture would see nothing:
// Alive then returns an error wrapping hook.ErrGone. What it cannot tell
// (after -Z dropped the privilege to look) reads as alive.
func (c *Capture) Alive() error {
	if c.hook == nil || c.hook.pin == "" {
		return nil
	}
	c.aliveMu.Lock()
	defer c.aliveMu.Unlock()
	info, err := c.hook.m.Info()
	if err != nil {
		return nil
	}
	id, ok := info.ID()
	if !ok {
		return nil
	}
	pinned, err := ebpf.LoadPinnedMap(c.hook.pin, nil)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("hook %s was unpinned: no program can reach this capture any more: %w", c.hook.pin, hook.ErrGone)
	case err == nil:
		pinfo, ierr := pinned.Info()
		pinned.Close()
		if ierr == nil {
			if pid, ok := pinfo.ID(); ok && pid != id {
				return fmt.Errorf("hook %s was pinned again (map id %d, was %d; the program restarted?): this capture holds the old hook, which nothing uses: run bpfcap again: %w", c.hook.pin, pid, id, hook.ErrGone)
			}
		}
	}
	used, known := mapUsed(id)
	if !known {
		return nil
	}
	if used {
		c.hookUsed = true
		return nil
	}
	if c.hookUsed {
		return fmt.Errorf("no program uses hook %s any more (the instrumented XDP program exited): nothing more to capture: %w", c.hook.pin, hook.ErrGone)
	}
	return nil
}

// mapUsed reports whether a loaded program uses map id (known false when
// the programs cannot be listed, as after -Z).
func mapUsed(id ebpf.MapID) (used, known bool) {
	var cur ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(cur)
		if errors.Is(err, os.ErrNotExist) {
			return false, true
		}
		if err != nil {
			return false, false
		}
		cur = next
		p, err := ebpf.NewProgramFromID(next)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded meanwhile
		}
		if err != nil {
			return false, false
		}
		info, err := p.Info()
		p.Close()
		if err != nil {
			continue
		}
		ids, _ := info.MapIDs()
		for _, m := range ids {
			if m == id {
				return true, true
			}
		}
	}
}
