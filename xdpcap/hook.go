package xdpcap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
)

// Hook map layouts.
const (
	// Slots is the number of slots in a bpfcap-layout hook: one per XDP
	// action, XDP_ABORTED to XDP_REDIRECT (XDPCAP_HOOK in bpf/xdpcap.h).
	Slots = 5
	// LegacySlots is the number of slots in a hook of Cloudflare
	// xdpcap's layout before 2019: XDP_ABORTED to XDP_TX
	// (XDPCAP_HOOK_LEGACY in bpf/xdpcap.h). Its hook.h has declared
	// Slots (5, up to XDP_REDIRECT) since 2019.
	LegacySlots = 4
)

// ErrNotHook is returned (wrapped) for a map or map definition that is not
// a hook: not a BPF_MAP_TYPE_PROG_ARRAY with 4-byte keys and values and
// Slots or LegacySlots entries.
var ErrNotHook = errors.New("not an xdpcap hook map")

// Hook is a hook map: a prog array with one slot per XDP action. It is
// reusable by several XDP programs. Close releases the map; the pin (if any)
// stays until Unpin.
type Hook struct {
	m   *ebpf.Map
	pin string
}

// NewHook creates an unpinned hook map in bpfcap's layout (Slots slots),
// named name (sanitised; the kernel keeps 15 characters).
func NewHook(name string) (*Hook, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       sanitizeName(name),
		Type:       ebpf.ProgramArray,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: Slots,
	})
	if err != nil {
		return nil, fmt.Errorf("create hook map %s: %w", name, err)
	}
	return &Hook{m: m}, nil
}

// OpenHook opens the hook pinned at path and checks that it is one. The
// error wraps ErrNotHook, os.ErrNotExist or the kernel's error, and says
// what was found instead.
func OpenHook(path string) (*Hook, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrPermission) && !onBPFFS(path):
			// The kernel says EPERM for any file outside a bpffs, even to
			// root: that is not a privilege problem.
			return nil, fmt.Errorf("open hook %s: %w: it is not on a BPF filesystem (pins live under /sys/fs/bpf)", path, ErrNotHook)
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("open hook %s: no such pin: pin the hook map there first (Go: xdpcap.Hook.Pin; libbpf: bpf_map__pin): %w", path, err)
		case errors.Is(err, os.ErrPermission):
			return nil, &hook.PermissionError{Op: "open hook " + path, Needs: "root or CAP_BPF", Err: err}
		}
		if p, perr := ebpf.LoadPinnedProgram(path, nil); perr == nil {
			p.Close()
			return nil, fmt.Errorf("open hook %s: %w: it is a pinned program, not a map: pin the hook map the program passes to xdpcap_exit", path, ErrNotHook)
		}
		return nil, fmt.Errorf("open hook %s: not a pinned BPF map (is it on a bpffs?): %w", path, err)
	}
	if err := checkHookMap(m.Type(), m.KeySize(), m.ValueSize(), m.MaxEntries()); err != nil {
		m.Close()
		return nil, fmt.Errorf("hook %s: %w", path, err)
	}
	return &Hook{m: m, pin: path}, nil
}

// checkHookMap says what is wrong with a map that should be a hook.
func checkHookMap(typ ebpf.MapType, keySize, valueSize, maxEntries uint32) error {
	if typ != ebpf.ProgramArray {
		return fmt.Errorf("%w: it is a map of type %s, a hook is a prog array (BPF_MAP_TYPE_PROG_ARRAY): pin the map the program passes to xdpcap_exit", ErrNotHook, typ)
	}
	if keySize != 4 || valueSize != 4 {
		return fmt.Errorf("%w: key size %d and value size %d, a hook has 4 and 4", ErrNotHook, keySize, valueSize)
	}
	if maxEntries != Slots && maxEntries != LegacySlots {
		return fmt.Errorf("%w: prog array of %d slots, a hook has one per XDP action: %d (bpfcap layout) or %d (Cloudflare xdpcap layout)",
			ErrNotHook, maxEntries, Slots, LegacySlots)
	}
	return nil
}

// Pin pins the hook at path, which must be on a bpffs (usually under
// /sys/fs/bpf) and must not exist yet.
func (h *Hook) Pin(path string) error {
	if err := h.m.Pin(path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("pin hook at %s: something is pinned there already: remove it first (rm %s): %w", path, path, err)
		}
		return fmt.Errorf("pin hook at %s (must be on a bpffs, e.g. /sys/fs/bpf): %w", path, err)
	}
	h.pin = path
	return nil
}

// Unpin removes the hook's pin. Programs using the hook keep it.
func (h *Hook) Unpin() error {
	if err := h.m.Unpin(); err != nil {
		return fmt.Errorf("unpin hook %s: %w", h.pin, err)
	}
	h.pin = ""
	return nil
}

// PinPath returns where the hook is pinned, or "".
func (h *Hook) PinPath() string { return h.pin }

// Map returns the hook's prog array. It stays owned by the Hook.
func (h *Hook) Map() *ebpf.Map { return h.m }

// NumSlots returns the hook's number of slots: Slots or LegacySlots.
func (h *Hook) NumSlots() int { return int(h.m.MaxEntries()) }

// Close releases the hook map. The pin (if any) stays.
func (h *Hook) Close() error { return h.m.Close() }

// Patch makes every program in spec that references the map symbol (the
// hook map the program passes to xdpcap_exit) use this hook instead, and
// removes the map from spec so that loading it creates no other. Load
// the programs after Patch with LoadAndAssign into a struct that does not
// ask for symbol, or with ebpf.NewCollection. The error wraps ErrNotHook if
// spec's map is not a hook.
func (h *Hook) Patch(spec *ebpf.CollectionSpec, symbol string) error {
	ms, ok := spec.Maps[symbol]
	if !ok {
		return fmt.Errorf("patch hook: the collection has no map %q: declare it with XDPCAP_HOOK(%s) from bpf/xdpcap.h", symbol, symbol)
	}
	if err := checkHookMap(ms.Type, ms.KeySize, ms.ValueSize, ms.MaxEntries); err != nil {
		return fmt.Errorf("patch hook: map %s: %w", symbol, err)
	}
	used := false
	for name, ps := range spec.Programs {
		err := ps.Instructions.AssociateMap(symbol, h.m)
		if errors.Is(err, asm.ErrUnreferencedSymbol) {
			continue
		}
		if err != nil {
			return fmt.Errorf("patch hook into program %s: %w", name, err)
		}
		used = true
	}
	if !used {
		return fmt.Errorf("patch hook: no program uses map %s: call xdpcap_exit(ctx, &%s, action) on every exit", symbol, symbol)
	}
	delete(spec.Maps, symbol)
	return nil
}

// CreatePinned creates a bpfcap-layout hook and pins it at path, named after
// the pin's base name.
func CreatePinned(path string) (*Hook, error) {
	h, err := NewHook(filepath.Base(path))
	if err != nil {
		return nil, err
	}
	if err := h.Pin(path); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// sanitizeName turns s into a valid kernel object name: at most 15
// characters from [A-Za-z0-9_.].
func sanitizeName(s string) string {
	out := make([]byte, 0, 15)
	for i := 0; i < len(s) && len(out) < 15; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.':
			out = append(out, c)
		default:
			out = append(out, '_')
		}
	}
	return string(out)
}

// onBPFFS reports whether path is on a BPF filesystem (true when that
// cannot be told, so the kernel's own error stands).
func onBPFFS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return true
	}
	return st.Type == unix.BPF_FS_MAGIC
}
