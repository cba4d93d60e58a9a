package progcap

import (
	"errors"
	"os"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/procfd"
)

// ErrBusy is returned (wrapped) by Open when a live bpfcap, named by its
// pid, already captures from the program: two captures would split its
// records, and the one that ends first would turn capture off for both.
var ErrBusy = errors.New("program's capture is owned by another bpfcap")

// ownerAlive reports whether process pid (this pid namespace) exists and
// holds the capture config map m open, as the bpfcap that turned capture
// on does for as long as it runs. A pid reused by another process, or an
// owner in another pid namespace, reads as not alive.
func ownerAlive(pid uint32, m *ebpf.Map) bool {
	if pid == 0 || int(pid) == os.Getpid() {
		return false
	}
	info, err := m.Info()
	if err != nil {
		return true // cannot tell: do not take over
	}
	id, ok := info.ID()
	if !ok {
		return true
	}
	held, err := procfd.Holds(int(pid), procfd.Map, uint64(id))
	if err != nil {
		// Gone, or not ours to see (then it is alive: EACCES).
		return !errors.Is(err, os.ErrNotExist)
	}
	return held
}
