// Package procfd finds the BPF programs and maps that processes hold
// open, from /proc/PID/fd and /proc/PID/fdinfo: who loaded a program,
// whether a process still holds a map.
package procfd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Kind is the kind of BPF object a file descriptor refers to.
type Kind struct {
	link  string // the descriptor's link target
	field string // the fdinfo line that carries its id
}

// Kinds of BPF objects.
var (
	// Program is a BPF program (anon_inode:bpf-prog, "prog_id:").
	Program = Kind{link: "anon_inode:bpf-prog", field: "prog_id"}
	// Map is a BPF map (anon_inode:bpf-map, "map_id:").
	Map = Kind{link: "anon_inode:bpf-map", field: "map_id"}
)

// Holds reports whether process pid holds the object of kind with this
// id open. It fails with an error wrapping os.ErrNotExist when the
// process is gone and os.ErrPermission when its descriptors are not ours
// to see.
func Holds(pid int, kind Kind, id uint64) (bool, error) {
	return scan(pid, kind, func(got uint64) bool { return got != id })
}

// OthersHold reports whether a process other than this one holds the
// object of kind with this id open. Processes whose descriptors are not
// ours to see are passed over: denied says at least one was. Only
// listing /proc fails.
func OthersHold(kind Kind, id uint64) (held, denied bool, err error) {
	pids, err := otherPIDs()
	if err != nil {
		return false, false, err
	}
	for _, pid := range pids {
		found, err := Holds(pid, kind, id)
		if found {
			return true, denied, nil
		}
		if errors.Is(err, os.ErrPermission) {
			denied = true
		}
	}
	return false, denied, nil
}

// Others calls fn(pid, id) for every object of kind held open by a
// process other than this one. Processes that exit meanwhile, or whose
// descriptors are not ours to see, are passed over. Only listing /proc
// fails.
func Others(kind Kind, fn func(pid int, id uint64)) error {
	pids, err := otherPIDs()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		scan(pid, kind, func(id uint64) bool {
			fn(pid, id)
			return true
		})
	}
	return nil
}

// otherPIDs lists the processes of /proc other than this one.
func otherPIDs() ([]int, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	pids := make([]int, 0, len(procs))
	for _, d := range procs {
		if pid, err := strconv.Atoi(d.Name()); err == nil && pid != self {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// scan passes the id of every object of kind that process pid holds open
// to more, until it returns false (found then says so). Descriptors
// closed while they are read are passed over.
func scan(pid int, kind Kind, more func(id uint64) bool) (found bool, err error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return false, fmt.Errorf("list file descriptors of process %d: %w", pid, err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if err != nil || target != kind.link {
			continue
		}
		info, err := os.ReadFile(filepath.Join(dir, "fdinfo", fd.Name()))
		if err != nil {
			continue
		}
		if id, ok := Field(string(info), kind.field); ok && !more(id) {
			return true, nil
		}
	}
	return false, nil
}

// Field returns the numeric value of the line "key:\tvalue" of an fdinfo
// file.
func Field(info, key string) (uint64, bool) {
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}
