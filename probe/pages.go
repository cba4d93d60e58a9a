package probe

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/bpfcap/bpfcap/internal/kconfig"
)

// Values of probe_config.frags (enum probe_frags in bpf/probe.c).
const (
	fragsNone     = 0 // linear data only
	fragsBases    = 1 // PageOffset and Vmemmap are the bases themselves
	fragsBaseVars = 2 // they are the addresses of the kernel's variables
)

// Fixed x86-64 bases of the direct map and of the struct page array, for
// kernels without CONFIG_DYNAMIC_MEMORY_LAYOUT (neither
// CONFIG_RANDOMIZE_MEMORY nor CONFIG_X86_5LEVEL), where they are constants.
const (
	x86PageOffsetBase = 0xffff888000000000
	x86VmemmapBase    = 0xffffea0000000000
)

// pageMap tells the probe how to turn a paged frag's struct page pointer
// into the address where the kernel maps the page, so that it can copy
// paged data: the direct-map base (page_offset_base) and the base of the
// struct page array (vmemmap_base), or the addresses of the variables that
// hold them, which the program reads.
type pageMap struct {
	Mode       uint32 // a frags* value
	PageOffset uint64
	Vmemmap    uint64
	// Reason says why paged data is not copied (Mode fragsNone).
	Reason string
}

// findPageMap works out the running kernel's pageMap, from /proc/kallsyms
// and the kernel config. It reads kallsyms once; call it once per session.
func findPageMap() pageMap {
	if runtime.GOARCH != "amd64" {
		return pageMap{Reason: "page addresses are only computed on x86-64"}
	}
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return pageMap{Reason: fmt.Sprintf("cannot read kernel symbols: %v", err)}
	}
	defer f.Close()
	cfg, _ := kconfig.Load() // nil: unknown, every symbol unset
	return pageMapFrom(f, cfg.Value)
}

// pageMapFrom is findPageMap with the kallsyms text and the config lookup
// (kconfig.Config.Value) given.
//
// Where the kernel lists page_offset_base and vmemmap_base (data symbols:
// CONFIG_KALLSYMS_ALL), the program reads them. Otherwise the fixed bases
// apply only to a kernel whose config says it neither randomizes its
// memory layout nor can use 5-level paging (CONFIG_X86_5LEVEL present and
// not set: 6.16 and later always can, and dropped the symbol).
func pageMapFrom(kallsyms io.Reader, config func(string) (string, bool)) pageMap {
	addrs, err := kernelSymbols(kallsyms, "page_offset_base", "vmemmap_base")
	if err != nil {
		return pageMap{Reason: err.Error()}
	}
	po, okPO := addrs["page_offset_base"]
	vm, okVM := addrs["vmemmap_base"]
	switch {
	case okPO && okVM && po != 0 && vm != 0:
		return pageMap{Mode: fragsBaseVars, PageOffset: po, Vmemmap: vm}
	case okPO && okVM:
		return pageMap{Reason: "/proc/kallsyms hides kernel addresses (kernel.kptr_restrict)"}
	}
	randomize, _ := config("CONFIG_RANDOMIZE_MEMORY")
	level5, known := config("CONFIG_X86_5LEVEL")
	switch {
	case (randomize == "" || randomize == "n") && known && level5 == "n":
		return pageMap{Mode: fragsBases, PageOffset: x86PageOffsetBase, Vmemmap: x86VmemmapBase}
	case !known && randomize == "":
		return pageMap{Reason: "page_offset_base is not in /proc/kallsyms and the kernel config does not say the memory layout is fixed"}
	}
	return pageMap{Reason: "the kernel places its direct map at boot and does not list page_offset_base in /proc/kallsyms (CONFIG_KALLSYMS_ALL is not set)"}
}

// kernelSymbols returns the addresses of the named symbols in kallsyms
// text; absent symbols are absent from the map.
func kernelSymbols(r io.Reader, names ...string) (map[string]uint64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	found := make(map[string]uint64, len(names))
	sc := bufio.NewScanner(r)
	for sc.Scan() && len(found) < len(want) {
		// "ffffffff82a1b2c8 D page_offset_base"
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || !want[fields[2]] {
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("kernel symbols: bad address in %q: %w", sc.Text(), err)
		}
		found[fields[2]] = addr
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	return found, nil
}
