package xdpcap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/procfd"
)

// Occupant is a program found in a hook slot.
type Occupant struct {
	// Action is the slot.
	Action Action
	// ID is the program's kernel ID, Name its name ("" if unreadable).
	ID   ebpf.ProgramID
	Name string
	// Holders are the processes (other than this one) with the program
	// open. A program that nobody holds was left by a capture that was
	// killed: only the hook keeps it alive.
	Holders []Holder
}

// Holder is a process that has a BPF program open.
type Holder struct {
	PID  int
	Comm string
}

// String describes the holder as "pid 123 (bpfcap)".
func (h Holder) String() string { return fmt.Sprintf("pid %d (%s)", h.PID, h.Comm) }

// Stale reports whether only the hook keeps the occupant alive.
func (o Occupant) Stale() bool { return len(o.Holders) == 0 }

// Occupants returns the hook's non-empty slots, with the processes that
// hold each slot's program. Finding holders reads /proc/*/fdinfo, which
// needs root to see other users' processes.
func (h *Hook) Occupants() ([]Occupant, error) {
	var occ []Occupant
	for slot := 0; slot < h.NumSlots(); slot++ {
		var id uint32
		if err := h.m.Lookup(uint32(slot), &id); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return nil, fmt.Errorf("read hook slot %d: %w", slot, err)
		}
		o := Occupant{Action: Action(slot), ID: ebpf.ProgramID(id)}
		if p, err := ebpf.NewProgramFromID(o.ID); err == nil {
			if info, err := p.Info(); err == nil {
				o.Name = info.Name
			}
			p.Close()
		}
		occ = append(occ, o)
	}
	if len(occ) == 0 {
		return nil, nil
	}
	ids := make(map[ebpf.ProgramID][]Holder)
	for _, o := range occ {
		ids[o.ID] = nil
	}
	if err := findHolders(ids); err != nil {
		return nil, err
	}
	for i := range occ {
		occ[i].Holders = ids[occ[i].ID]
	}
	return occ, nil
}

// findHolders fills ids with the processes other than this one that have
// each program open.
func findHolders(ids map[ebpf.ProgramID][]Holder) error {
	err := procfd.Others(procfd.Program, func(pid int, id uint64) {
		if hs, want := ids[ebpf.ProgramID(id)]; want {
			comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
			ids[ebpf.ProgramID(id)] = append(hs, Holder{PID: pid, Comm: strings.TrimSpace(string(comm))})
		}
	})
	if err != nil {
		return fmt.Errorf("list processes holding hook programs: %w", err)
	}
	return nil
}

// ownerProgType returns the program type of the hook's owner (the first
// program that used the map), or ok=false if no program uses it yet. It
// reads the map's fdinfo (owner_prog_type, Linux 4.10).
func (h *Hook) ownerProgType() (ebpf.ProgramType, bool, error) {
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", h.m.FD()))
	if err != nil {
		return 0, false, fmt.Errorf("read hook owner: %w", err)
	}
	t, ok := procfd.Field(string(info), "owner_prog_type")
	if !ok || t == 0 {
		return 0, false, nil
	}
	return ebpf.ProgramType(t), true, nil
}

// Set puts p into the slot for action a.
func (h *Hook) Set(a Action, p *ebpf.Program) error {
	if int(a) >= h.NumSlots() {
		return fmt.Errorf("hook has no slot for %s: it has %d slots (Cloudflare layout has no XDP_REDIRECT slot)", a.KernelName(), h.NumSlots())
	}
	if err := h.m.Update(uint32(a), p, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("fill hook slot %s: %w", a, err)
	}
	return nil
}

// Clear empties the slot for action a; an empty slot is not an error.
func (h *Hook) Clear(a Action) error {
	if err := h.m.Delete(uint32(a)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("empty hook slot %s: %w", a, err)
	}
	return nil
}

// ClearIf empties the slot for action a if it still holds program id, so a
// capture never empties a slot that another capture filled since.
func (h *Hook) ClearIf(a Action, id ebpf.ProgramID) error {
	var cur uint32
	if err := h.m.Lookup(uint32(a), &cur); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return fmt.Errorf("read hook slot %s: %w", a, err)
	}
	if ebpf.ProgramID(cur) != id {
		return nil
	}
	return h.Clear(a)
}
