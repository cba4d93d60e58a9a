package progcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Map names bpf/bpfcap.h gives its maps (kernel map names, at most 15
// characters).
const (
	// EventsMapName is the ring buffer of records.
	EventsMapName = "bpfcap_events"
	// ConfigMapName is the map of the data section that holds the global
	// variable bpfcap_config.
	ConfigMapName = ".data.bpfcap"
	// configMapNameNoDot is ConfigMapName as loaders spell it on kernels
	// that refuse dots in names (before 5.2).
	configMapNameNoDot = "databpfcap"
	scratchMapName     = "bpfcap_out_buf"
)

// nameLen is the longest object name the kernel keeps (BPF_OBJ_NAME_LEN-1).
const nameLen = 15

// ErrNotFound is wrapped by the errors of FindProgram when no program
// matches, and of Open when the program does not use the capture maps.
var ErrNotFound = errors.New("not found")

// Selector picks the program to capture: exactly one of its fields is set.
type Selector struct {
	// ID is the program's id (bpftool prog show).
	ID ebpf.ProgramID
	// Pinned is the path of a pinned program on a BPF filesystem (a pinned
	// link also works: its program is taken).
	Pinned string
	// Name is the program's name as the kernel keeps it (at most 15
	// characters; a longer name matches its first 15).
	Name string
}

// String returns the selector as the command line spells it ("id 42").
func (s Selector) String() string {
	switch {
	case s.Pinned != "":
		return "pinned " + s.Pinned
	case s.Name != "":
		return "name " + s.Name
	}
	return "id " + strconv.FormatUint(uint64(s.ID), 10)
}

func (s Selector) check() error {
	n := 0
	if s.ID != 0 {
		n++
	}
	if s.Pinned != "" {
		n++
	}
	if s.Name != "" {
		n++
	}
	if n != 1 {
		return errors.New("select the program by exactly one of id, pinned path or name")
	}
	return nil
}

// FindProgram opens the program sel names. No program with that id,
// path or name is an error wrapping ErrNotFound; several programs with
// the name is an error listing their ids; a pinned path that holds a map
// is an error saying so.
func FindProgram(sel Selector) (*ebpf.Program, error) {
	if err := sel.check(); err != nil {
		return nil, err
	}
	switch {
	case sel.Pinned != "":
		return findPinned(sel.Pinned)
	case sel.Name != "":
		return findByName(sel.Name)
	}
	return findByID(sel.ID)
}

func findByID(id ebpf.ProgramID) (*ebpf.Program, error) {
	p, err := ebpf.NewProgramFromID(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no BPF program with id %d (bpftool prog show lists them): %w", id, ErrNotFound)
	}
	if errors.Is(err, os.ErrPermission) {
		// Opening a program by id needs CAP_SYS_ADMIN, whoever owns it.
		return nil, fmt.Errorf("open BPF program id %d: needs privilege (CAP_SYS_ADMIN, or root; or give its pinned path if you may read it): %w", id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open BPF program id %d: %w", id, err)
	}
	return p, nil
}

func findPinned(path string) (*ebpf.Program, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("pinned program %s: %w (pin one with bpftool prog pin, or use bpfcap prog id ID)", path, err)
	}
	p, perr := ebpf.LoadPinnedProgram(path, nil)
	if perr == nil {
		return p, nil
	}
	// Say what the path holds instead, or take a pinned link's program.
	if m, err := ebpf.LoadPinnedMap(path, nil); err == nil {
		defer m.Close()
		what := fmt.Sprintf("a %v map", m.Type())
		if info, err := m.Info(); err == nil && info.Name != "" {
			what += fmt.Sprintf(" named %q", info.Name)
		}
		return nil, fmt.Errorf("%s is %s, not a program: give the path of a pinned program (bpftool prog pin), or use bpfcap prog id ID or name NAME", path, what)
	}
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		defer l.Close()
		info, err := l.Info()
		if err != nil {
			return nil, fmt.Errorf("%s is a pinned link: read its program: %w", path, err)
		}
		return findByID(info.Program)
	}
	if errors.Is(perr, os.ErrPermission) {
		var st unix.Statfs_t
		if unix.Statfs(path, &st) == nil && st.Type != unix.BPF_FS_MAGIC {
			return nil, fmt.Errorf("%s is not on a BPF filesystem: give the path of a pinned program under /sys/fs/bpf (bpftool prog pin), or use bpfcap prog id ID or name NAME", path)
		}
		return nil, fmt.Errorf("open pinned program %s: needs privilege (CAP_BPF and read access to the pin, or root): %w", path, perr)
	}
	return nil, fmt.Errorf("open pinned program %s: %w", path, perr)
}

func findByName(name string) (*ebpf.Program, error) {
	want := name
	if len(want) > nameLen {
		want = want[:nameLen]
	}
	var (
		found *ebpf.Program
		ids   []ebpf.ProgramID
	)
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			if found != nil {
				found.Close()
			}
			return nil, fmt.Errorf("list BPF programs: %w", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		info, err := p.Info()
		if err != nil || info.Name != want {
			p.Close()
			continue
		}
		ids = append(ids, id)
		if found == nil {
			found = p
		} else {
			p.Close()
		}
	}
	switch len(ids) {
	case 0:
		return nil, fmt.Errorf("no BPF program named %q (bpftool prog show lists them; the kernel keeps %d characters of a name): %w", name, nameLen, ErrNotFound)
	case 1:
		return found, nil
	}
	found.Close()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return nil, fmt.Errorf("%d BPF programs are named %q (ids %s): pick one with bpfcap prog id ID", len(ids), name, strings.Join(s, ", "))
}

// progMaps are the capture maps of one program.
type progMaps struct {
	events  *ebpf.Map
	config  *ebpf.Map
	maxData int // BPFCAP_OUTPUT_MAX of the object (0: unknown)
}

func (m *progMaps) close() {
	if m.events != nil {
		m.events.Close()
	}
	if m.config != nil {
		m.config.Close()
	}
}

// findMaps opens the capture maps among the maps prog uses.
func findMaps(prog *ebpf.Program, desc string) (*progMaps, error) {
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("%s: read program info: %w", desc, err)
	}
	ids, ok := info.MapIDs()
	if !ok {
		return nil, fmt.Errorf("%s: the kernel does not list the maps of a program (Linux 4.15): %w", desc, ErrNotFound)
	}
	var pm progMaps
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue // freed meanwhile
		}
		mi, err := m.Info()
		if err != nil {
			m.Close()
			pm.close()
			return nil, fmt.Errorf("%s: read info of map id %d: %w", desc, id, err)
		}
		switch {
		case mi.Name == EventsMapName && pm.events == nil:
			pm.events = m
			continue
		case (mi.Name == ConfigMapName || mi.Name == configMapNameNoDot) && pm.config == nil:
			pm.config = m
			continue
		case mi.Name == scratchMapName && m.ValueSize() > recordHeaderSize:
			pm.maxData = int(m.ValueSize() - recordHeaderSize)
		}
		m.Close()
	}
	if pm.events == nil || pm.config == nil {
		pm.close()
		return nil, fmt.Errorf("%s does not use the capture maps %s and %s: include bpf/bpfcap.h in its source and call bpfcap_output(): %w", desc, EventsMapName, ConfigMapName, ErrNotFound)
	}
	if t := pm.events.Type(); t != ebpf.RingBuf {
		pm.close()
		return nil, fmt.Errorf("%s: map %s is a %v, want a ring buffer: rebuild the program with bpf/bpfcap.h", desc, EventsMapName, t)
	}
	if c := pm.config; c.Type() != ebpf.Array || c.KeySize() != 4 || c.ValueSize() != configSize || c.MaxEntries() != 1 || c.Flags()&bpfFMmapable == 0 {
		pm.close()
		return nil, fmt.Errorf("%s: map %s is a %v with key size %d, value size %d, %d entries, flags %#x; this bpfcap wants a memory-mappable array of one %d-byte value (put nothing else in section .data.bpfcap; the loader must create data sections with BPF_F_MMAPABLE, as libbpf and cilium/ebpf do): rebuild the program with this bpfcap's bpf/bpfcap.h", desc, ConfigMapName, c.Type(), c.KeySize(), c.ValueSize(), c.MaxEntries(), c.Flags(), configSize)
	}
	return &pm, nil
}

// Enabled reports whether capture of prog is on: whether some bpfcap
// (this one or another) has turned its bpfcap_config on. A program
// without the capture maps is an error wrapping ErrNotFound.
func Enabled(prog *ebpf.Program) (bool, error) {
	desc, _, _ := describe(prog)
	pm, err := findMaps(prog, desc)
	if err != nil {
		return false, err
	}
	defer pm.close()
	v := make([]byte, configSize)
	if err := pm.config.Lookup(uint32(0), &v); err != nil {
		return false, fmt.Errorf("%s: read %s: %w", desc, ConfigMapName, err)
	}
	return binary.NativeEndian.Uint32(v[cfgEnabled:]) != 0, nil
}

// describe names a program for messages: `program NAME (id N, TYPE)`.
func describe(prog *ebpf.Program) (string, ebpf.ProgramID, string) {
	info, err := prog.Info()
	if err != nil {
		return "the program", 0, ""
	}
	id, _ := info.ID()
	name := info.Name
	if name == "" {
		return fmt.Sprintf("program id %d (%v)", id, info.Type), id, name
	}
	return fmt.Sprintf("program %s (id %d, %v)", name, id, info.Type), id, name
}
