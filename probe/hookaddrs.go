package probe

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// hookAddrsMap is the probe object's map from a probed function's address
// to its hook index (bpf/probe.c, probe_config.addr_hook).
const hookAddrsMap = "probe_hook_addrs"

// newHookAddrs creates the session's probe_hook_addrs map and fills it for
// the targets that find their hook index by address (Target.AddrHook):
// each function's address, from /proc/kallsyms, to the target's index. A
// target whose function has no single address there (a name several
// static functions share, hidden addresses) has AddrHook cleared and gets a
// program of its own. With no such target the map has one unused entry:
// every program refers to it.
func newHookAddrs(base *ebpf.CollectionSpec, targets []*Target) (*ebpf.Map, error) {
	ms := base.Maps[hookAddrsMap]
	if ms == nil {
		return nil, fmt.Errorf("probe object has no map %s", hookAddrsMap)
	}
	ms = ms.Copy()
	entries := map[uint64]uint32{}
	var addrs map[string]uint64
	for i, t := range targets {
		if !t.AddrHook {
			continue
		}
		if addrs == nil {
			var err error
			if addrs, err = uniqueTextAddresses(); err != nil {
				addrs = map[string]uint64{}
			}
		}
		addr, ok := addrs[t.Name]
		if !ok {
			t.AddrHook = false
			continue
		}
		entries[addr] = uint32(i)
	}
	ms.MaxEntries = uint32(max(1, len(entries)))
	m, err := ebpf.NewMap(ms)
	if err != nil {
		return nil, fmt.Errorf("create map %s: %w", hookAddrsMap, featureError("create map", err))
	}
	for addr, i := range entries {
		if err := m.Put(addr, i); err != nil {
			m.Close()
			return nil, fmt.Errorf("fill map %s: %w", hookAddrsMap, err)
		}
	}
	return m, nil
}
