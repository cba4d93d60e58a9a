package probe

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// kernelText names kernel text addresses from /proc/kallsyms (which
// shows the addresses to root only).
type kernelText struct {
	addrs []uint64 // sorted
	names []string
}

// errHiddenSymbols says /proc/kallsyms shows every address as zero: the
// reader lacks CAP_SYSLOG or kptr_restrict hides them.
var errHiddenSymbols = errors.New("kernel symbol addresses are hidden (kptr_restrict, or no CAP_SYSLOG)")

// loadKernelText reads the text symbols of /proc/kallsyms.
func loadKernelText() (*kernelText, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	defer f.Close()
	type sym struct {
		addr uint64
		name string
	}
	var syms []sym
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ffffffff81000000 T _text [module]"
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || (fields[1] != "t" && fields[1] != "T") {
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil || addr == 0 {
			continue
		}
		syms = append(syms, sym{addr, fields[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	if len(syms) == 0 {
		return nil, fmt.Errorf("read kernel symbols: %w", errHiddenSymbols)
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	k := &kernelText{addrs: make([]uint64, len(syms)), names: make([]string, len(syms))}
	for i, s := range syms {
		k.addrs[i], k.names[i] = s.addr, s.name
	}
	return k, nil
}

// lookup returns the symbol addr is in and the offset into it; ok is
// false below the first symbol.
func (k *kernelText) lookup(addr uint64) (name string, off uint64, ok bool) {
	if k == nil {
		return "", 0, false
	}
	i := sort.Search(len(k.addrs), func(i int) bool { return k.addrs[i] > addr }) - 1
	if i < 0 {
		return "", 0, false
	}
	return k.names[i], addr - k.addrs[i], true
}

// format returns addr as "symbol+0xoff", or "0x..." when it names none.
func (k *kernelText) format(addr uint64) string {
	name, off, ok := k.lookup(addr)
	if !ok {
		return "0x" + strconv.FormatUint(addr, 16)
	}
	return name + "+0x" + strconv.FormatUint(off, 16)
}

// function returns the name of the function addr is in, or "0x...".
func (k *kernelText) function(addr uint64) string {
	name, _, ok := k.lookup(addr)
	if !ok {
		return "0x" + strconv.FormatUint(addr, 16)
	}
	return name
}

// uniqueTextAddresses returns the address of each kernel text symbol of
// /proc/kallsyms that names one address only (a kprobe on a name several
// static functions share probes the first, which a name cannot tell).
func uniqueTextAddresses() (map[string]uint64, error) {
	k, err := loadKernelText()
	if err != nil {
		return nil, err
	}
	addrs := make(map[string]uint64, len(k.names))
	shared := map[string]bool{}
	for i, name := range k.names {
		if a, ok := addrs[name]; ok && a != k.addrs[i] {
			shared[name] = true
		}
		addrs[name] = k.addrs[i]
	}
	for name := range shared {
		delete(addrs, name)
	}
	return addrs, nil
}
