// Package firewall is the complete example of an XDP program instrumented
// for bpfcap (see bpf/firewall.c and bpf/xdpcap.h): a tiny firewall that
// passes, drops or bounces UDP and TCP packets by port, and ends every path
// with xdpcap_exit so `bpfcap xdp PIN` can capture each packet with its
// verdict. It also shows the Go side: Load patches a pinned or fresh hook
// into the object with one call to xdpcap.Hook.Patch.
//
// The object is built twice: with the hook in bpfcap's layout (5 slots) and
// in Cloudflare xdpcap's pre-2019 layout (4 slots, "maps" section), to show
// that both work.
package firewall

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/xdpcap"
)

// HookSymbol is the name of the hook map in the firewall's C source.
const HookSymbol = "xdpcap_hook"

// Layout picks which build of the firewall to load.
type Layout int

const (
	// LayoutBpfcap is the build with XDPCAP_HOOK (5 slots).
	LayoutBpfcap Layout = iota
	// LayoutCloudflare is the build with Cloudflare xdpcap's pre-2019
	// layout (XDPCAP_HOOK_LEGACY, 4 slots).
	LayoutCloudflare
	// LayoutNoHook is the build without a hook (plain returns): the
	// baseline of the hook cost benchmarks. Options.Hook must be nil.
	LayoutNoHook
)

// Options say how to load the firewall.
type Options struct {
	// Hook is patched in as the firewall's hook map. Required except
	// with LayoutNoHook.
	Hook *xdpcap.Hook
	// Layout picks the build.
	Layout Layout
	// LegacyAttachType loads the program without an expected attach type
	// (0), as iproute2 and old loaders do, instead of BPF_XDP as libbpf
	// and cilium/ebpf do for SEC("xdp"). Tail-call targets must match.
	LegacyAttachType bool
	// Frags loads the program with BPF_F_XDP_HAS_FRAGS (Linux 5.18).
	Frags bool
}

// Firewall is the loaded program and its rule map.
type Firewall struct {
	// Program is the XDP program.
	Program *ebpf.Program
	// Rules maps a port (host byte order) to the XDP action to take.
	Rules *ebpf.Map
}

// objects is what Load takes from the collection: not the hook map, which
// Patch removed from the spec.
type objects struct {
	Program *ebpf.Program `ebpf:"firewall"`
	Rules   *ebpf.Map     `ebpf:"firewall_rules"`
}

// Load loads the firewall with opts.Hook as its hook.
func Load(opts Options) (*Firewall, error) {
	if (opts.Hook == nil) != (opts.Layout == LayoutNoHook) {
		return nil, errors.New("load firewall: a hook is needed except with LayoutNoHook: create one with xdpcap.NewHook or xdpcap.CreatePinned")
	}
	var spec *ebpf.CollectionSpec
	var err error
	switch opts.Layout {
	case LayoutCloudflare:
		spec, err = loadFirewallCloudflare()
	case LayoutNoHook:
		spec, err = loadFirewallNoHook()
	default:
		spec, err = loadFirewall()
	}
	if err != nil {
		return nil, fmt.Errorf("load firewall object: %w", err)
	}
	if opts.Hook != nil {
		// The one call that gives the program the hook.
		if err := opts.Hook.Patch(spec, HookSymbol); err != nil {
			return nil, fmt.Errorf("load firewall: %w", err)
		}
	}
	ps := spec.Programs["firewall"]
	if opts.LegacyAttachType {
		ps.AttachType = ebpf.AttachNone
	}
	if opts.Frags {
		ps.Flags |= unix.BPF_F_XDP_HAS_FRAGS
	}
	var objs objects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load firewall: %w", err)
	}
	return &Firewall{Program: objs.Program, Rules: objs.Rules}, nil
}

// SetRule makes the firewall apply action to packets to or (failing a rule
// for the destination port) from port. Redirect is not supported and
// behaves as Pass.
func (f *Firewall) SetRule(port uint16, action xdpcap.Action) error {
	if err := f.Rules.Put(port, uint32(action)); err != nil {
		return fmt.Errorf("set firewall rule for port %d: %w", port, err)
	}
	return nil
}

// Attach attaches the firewall to the interface ifindex (native XDP where
// the driver has it, generic otherwise). Close the link to detach.
func (f *Firewall) Attach(ifindex int) (link.Link, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: f.Program, Interface: ifindex})
	if err != nil {
		return nil, fmt.Errorf("attach firewall to ifindex %d: %w", ifindex, err)
	}
	return l, nil
}

// Close releases the program and the rule map.
func (f *Firewall) Close() error {
	return errors.Join(f.Program.Close(), f.Rules.Close())
}
