package progcap

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// XDPOptions say which build of the XDP example to load.
type XDPOptions struct {
	// NoOutput loads the build without bpfcap_output() (and without the
	// capture maps): the cost baseline.
	NoOutput bool
	// Name replaces the program's kernel name "progcap_xdp" (at most 15
	// characters), e.g. to tell several loaded copies apart.
	Name string
}

// XDP is the loaded XDP example.
type XDP struct {
	// Program is the XDP program, named "progcap_xdp".
	Program *ebpf.Program
	// Rules maps a UDP destination port (host byte order) to a Rule.
	Rules *ebpf.Map
	// Hits is the per-CPU count of packets a rule matched.
	Hits *ebpf.Map
}

// Rule is the value of the XDP example's rule table (struct rule).
type Rule struct {
	// ID is emitted with every packet the rule matches.
	ID uint32
	// Drop makes the program drop the packets (else it passes them).
	Drop uint32
}

type xdpObjects struct {
	Program *ebpf.Program `ebpf:"progcap_xdp"`
	Rules   *ebpf.Map     `ebpf:"progcap_rules"`
	Hits    *ebpf.Map     `ebpf:"progcap_hits"`
}

// LoadXDP loads the XDP example (not attached: attach XDP.Program with
// link.AttachXDP, or run it with BPF_PROG_TEST_RUN).
func LoadXDP(opts XDPOptions) (*XDP, error) {
	load := loadXdpRules
	if opts.NoOutput {
		load = loadXdpRulesNoOutput
	}
	spec, err := load()
	if err != nil {
		return nil, fmt.Errorf("load XDP example spec: %w", err)
	}
	if opts.Name != "" {
		spec.Programs["progcap_xdp"].Name = opts.Name
	}
	var objs xdpObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load XDP example: %w", err)
	}
	return &XDP{Program: objs.Program, Rules: objs.Rules, Hits: objs.Hits}, nil
}

// SetRule makes port's packets match a rule with id id, dropped if drop.
func (x *XDP) SetRule(port uint16, id uint32, drop bool) error {
	r := Rule{ID: id}
	if drop {
		r.Drop = 1
	}
	if err := x.Rules.Put(port, r); err != nil {
		return fmt.Errorf("set rule for port %d: %w", port, err)
	}
	return nil
}

// Close frees the program and its maps (the kernel keeps what is pinned
// or attached).
func (x *XDP) Close() error {
	return errors.Join(x.Program.Close(), x.Rules.Close(), x.Hits.Close())
}

// Drops is the loaded tp_btf example.
type Drops struct {
	// Program is the tp_btf/kfree_skb program, named "progcap_drops".
	Program *ebpf.Program
}

type dropsLoaded struct {
	Program *ebpf.Program `ebpf:"progcap_drops"`
}

// DropsOptions say how to load the tp_btf example.
type DropsOptions struct {
	// NoOutput loads the build without bpfcap_output() (and without the
	// capture maps): the cost baseline.
	NoOutput bool
	// Name replaces the program's kernel name "progcap_drops" (at most
	// 15 characters).
	Name string
}

// LoadDrops loads the tp_btf example (needs BTF, CONFIG_DEBUG_INFO_BTF,
// and the drop reason argument of kfree_skb, Linux 5.17: on an older
// kernel the error wraps ebpf.ErrNotSupported and says "needs Linux
// 5.17"). Attach it with Attach.
func LoadDrops(opts DropsOptions) (*Drops, error) {
	if err := haveDropReasons(); err != nil {
		return nil, fmt.Errorf("load drops example: %w", err)
	}
	load := loadDrops
	if opts.NoOutput {
		load = loadDropsNoOutput
	}
	spec, err := load()
	if err != nil {
		return nil, fmt.Errorf("load drops example spec: %w", err)
	}
	if opts.Name != "" {
		spec.Programs["progcap_drops"].Name = opts.Name
	}
	var objs dropsLoaded
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load drops example: %w", err)
	}
	return &Drops{Program: objs.Program}, nil
}

// haveDropReasons looks for enum skb_drop_reason in the kernel's BTF: the
// type of kfree_skb's reason argument, which came with it (Linux 5.17).
func haveDropReasons() error {
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("kernel BTF: %w", err)
	}
	var e *btf.Enum
	err = kernel.TypeByName("skb_drop_reason", &e)
	if errors.Is(err, btf.ErrNotFound) {
		return fmt.Errorf("kfree_skb's drop reason argument needs Linux 5.17: %w", ebpf.ErrNotSupported)
	}
	if err != nil {
		return fmt.Errorf("kernel BTF: enum skb_drop_reason: %w", err)
	}
	return nil
}

// Attach attaches the program to the kfree_skb tracepoint; close the link
// to detach it.
func (d *Drops) Attach() (link.Link, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: d.Program})
	if err != nil {
		return nil, fmt.Errorf("attach tp_btf/kfree_skb: %w", err)
	}
	return l, nil
}

// Close frees the program (an attached link keeps it loaded).
func (d *Drops) Close() error { return d.Program.Close() }
