package progcap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/hook"
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
// id open (/proc/PID/fdinfo "prog_id:").
func processHolds(id ebpf.ProgramID) (held, known bool) {
	pids, err := os.ReadDir("/proc")
	if err != nil {
		return false, false
	}
	self := strconv.Itoa(os.Getpid())
	want := strconv.FormatUint(uint64(id), 10)
	for _, d := range pids {
		if d.Name() == self || d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		dir := filepath.Join("/proc", d.Name())
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if errors.Is(err, os.ErrPermission) {
			return false, false // not ours to see: cannot tell
		}
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil || target != "anon_inode:bpf-prog" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, "fdinfo", fd.Name()))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && k == "prog_id" && strings.TrimSpace(v) == want {
					return true, true
				}
			}
		}
	}
	return false, true
}
