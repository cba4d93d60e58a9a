package tccap

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/procfd"
)

// filterName is the name bpfcap gives its cls_bpf filters (the program's
// name as `tc filter show` prints it).
const filterName = "bpfcap_tc"

// removeStale deletes the cls_bpf filters a killed bpfcap left at parent
// (named bpfcap_tc, with a program no process holds any more), saying so
// on notices. Filters of a running bpfcap are left alone.
func (a *attacher) removeStale(parent uint32, notices io.Writer) error {
	l := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: a.ifindex}}
	filters, err := a.nl.FilterList(l, parent)
	if err != nil {
		return fmt.Errorf("list tc filters: %w", err)
	}
	for _, f := range filters {
		bf, ok := f.(*netlink.BpfFilter)
		if !ok || !strings.HasPrefix(bf.Name, filterName) || bf.Id == 0 {
			continue
		}
		held, err := programHeld(uint32(bf.Id))
		if err != nil || held {
			continue
		}
		if err := a.nl.FilterDel(bf); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove a stale bpfcap filter (program %d): %w", bf.Id, err)
		}
		if notices != nil {
			fmt.Fprintf(notices, "removed a tc filter left by a bpfcap that did not exit cleanly (program %d, priority %d)\n",
				bf.Id, bf.Priority)
		}
	}
	return nil
}

// programHeld reports whether a process other than this one has the BPF
// program id open.
func programHeld(id uint32) (bool, error) {
	held, _, err := procfd.OthersHold(procfd.Program, uint64(id))
	return held, err
}
