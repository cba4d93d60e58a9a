package procfd

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestHolds: a map this process created is found among its descriptors,
// among another process's once that process holds it too, and not under
// an id nobody holds.
func TestHolds(t *testing.T) {
	testutils.RunsInGuests(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatalf("create a map (needs root): %v", err)
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	mid, ok := info.ID()
	if !ok {
		t.Fatal("map has no id")
	}
	id := uint64(mid)
	if held, err := Holds(os.Getpid(), Map, id); err != nil || !held {
		t.Fatalf("Holds(self, map %d) = %v, %v: want true", id, held, err)
	}
	if held, err := Holds(os.Getpid(), Program, id); err != nil || held {
		t.Errorf("Holds(self, program %d) = %v, %v: a map is not a program", id, held, err)
	}
	if held, _, err := OthersHold(Map, id); err != nil || held {
		t.Fatalf("OthersHold(map %d) = %v, %v before any other process has it", id, held, err)
	}

	// A child inherits the map's descriptor.
	f := os.NewFile(uintptr(m.FD()), "map")
	cmd := exec.Command("sleep", "30")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if held, err := Holds(cmd.Process.Pid, Map, id); err != nil || !held {
		t.Errorf("Holds(child, map %d) = %v, %v: want true", id, held, err)
	}
	if held, _, err := OthersHold(Map, id); err != nil || !held {
		t.Errorf("OthersHold(map %d) = %v, %v with a child holding it", id, held, err)
	}
	var pids []int
	if err := Others(Map, func(pid int, got uint64) {
		if got == id {
			pids = append(pids, pid)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Errorf("Others: map %d held by %v, want only the child %d", id, pids, cmd.Process.Pid)
	}

	cmd.Process.Kill()
	cmd.Wait()
	if _, err := Holds(cmd.Process.Pid, Map, id); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Holds(exited child) = %v, want os.ErrNotExist", err)
	}
}

func TestField(t *testing.T) {
	info := "pos:\t0\nflags:\t02000002\nmap_type:\t2\nmap_id:\t417\n"
	if v, ok := Field(info, "map_id"); !ok || v != 417 {
		t.Errorf("map_id = %d, %v; want 417", v, ok)
	}
	if _, ok := Field(info, "prog_id"); ok {
		t.Error("prog_id found in a map's fdinfo")
	}
}
