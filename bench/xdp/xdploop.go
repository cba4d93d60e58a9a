package xdpbench

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// loopState is the value of the XDP loop's state map.
type loopState struct {
	Emitted uint64 // copies sent out of the target so far
	Budget  uint64 // copies to send
	Dead    uint64 // seed frames dropped once the budget was spent
}

const (
	// loopSeeds is how many frames circulate in the loop: well below a
	// veth ring's 256 slots, so the loop itself never drops.
	loopSeeds = 8
	// loopCopies is how many copies each pass sends out of the target:
	// the device map holds the target that many times.
	loopCopies = 4
)

var loopCounter atomic.Uint32

// xdpLoop amplifies a few seed frames into a flood of XDP frames, without
// live frames: a veth pair of its own (g0, g1) where the XDP program of g1
// broadcasts every frame it receives (bpf_redirect_map with
// BPF_F_BROADCAST, Linux 5.16) through a device map holding g0 once and the
// target interface loopCopies times. The copy sent out of g0 arrives at g1
// again; the others leave through the target as XDP frames (ndo_xdp_xmit),
// until a budget in a map is spent, after which the seeds die. The seeds
// enter through an AF_PACKET socket on g0. All of it runs in the softirqs
// of the CPU that sent the seeds.
type xdpLoop struct {
	g0, g1  int // ifindexes
	name    string
	state   *ebpf.Map
	devs    *ebpf.Map
	bcast   *ebpf.Program
	links   []link.Link
	seeder  *txRing
	closers []func() error
}

// newXDPLoop builds the loop towards target in the calling thread's
// network namespace. On failure it releases what it made.
func newXDPLoop(target int) (_ *xdpLoop, err error) {
	// l, not the named result: every failure returns nil, and the
	// deferred Close must see what was made.
	l := &xdpLoop{name: fmt.Sprintf("bfl%d_%d", os.Getpid()%100000, loopCounter.Add(1))}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	// The handle's socket stays in this namespace: Close may run on
	// another thread.
	nh, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	l.closers = append(l.closers, func() error { nh.Close(); return nil })
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.name + "a"}, PeerName: l.name + "b"}
	if err := nh.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create loop veth %s: %w", l.name, err)
	}
	for i, name := range []string{l.name + "a", l.name + "b"} {
		nl, err := nh.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", name, err)
		}
		if i == 0 {
			l.closers = append(l.closers, func() error {
				if err := nh.LinkDel(nl); err != nil {
					return fmt.Errorf("remove loop veth %s: %w", name, err)
				}
				return nil
			})
		}
		// Nothing but the seeds may enter the loop: no IPv6 (router and
		// neighbour solicitations), no ARP.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("disable IPv6 on %s: %w", name, err)
		}
		if err := nh.LinkSetARPOff(nl); err != nil {
			return nil, fmt.Errorf("no ARP on %s: %w", name, err)
		}
		if i == 0 {
			l.g0 = nl.Attrs().Index
		} else {
			l.g1 = nl.Attrs().Index
		}
	}
	l.state, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bpfcap_loopst", Type: ebpf.Array, KeySize: 4, ValueSize: 24, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create the loop's state map: %w", err)
	}
	l.devs, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bpfcap_loopdev", Type: ebpf.DevMap, KeySize: 4, ValueSize: 4, MaxEntries: 1 + loopCopies})
	if err != nil {
		return nil, fmt.Errorf("create the loop's device map: %w", err)
	}
	if err := l.devs.Put(uint32(0), uint32(l.g0)); err != nil {
		return nil, fmt.Errorf("put %s into the device map: %w", l.name+"a", err)
	}
	for i := uint32(1); i <= loopCopies; i++ {
		if err := l.devs.Put(i, uint32(target)); err != nil {
			return nil, fmt.Errorf("put ifindex %d into the device map: %w", target, err)
		}
	}
	if err := probeBroadcast(l.devs); err != nil {
		return nil, err
	}
	l.bcast, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "bpfcap_lbcast", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, l.state.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "drop"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.LoadMem(asm.R2, asm.R0, 8, asm.DWord),
			asm.JGE.Reg(asm.R1, asm.R2, "dead"),
			asm.Mov.Imm(asm.R1, loopCopies),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.LoadMapPtr(asm.R1, l.devs.FD()),
			asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Imm(asm.R3, unix.BPF_F_BROADCAST),
			asm.FnRedirectMap.Call(),
			asm.Return(),
			asm.Mov.Imm(asm.R1, 1).WithSymbol("dead"),
			asm.Add.Imm(asm.R0, 16),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"), // XDP_DROP
			asm.Return(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("load the loop's broadcast program: %w", err)
	}
	for _, at := range []struct {
		prog    *ebpf.Program
		ifindex int
	}{{l.bcast, l.g1}} {
		lk, err := link.AttachXDP(link.XDPOptions{Program: at.prog, Interface: at.ifindex})
		if err != nil {
			return nil, fmt.Errorf("attach the loop's program to ifindex %d: %w", at.ifindex, err)
		}
		l.links = append(l.links, lk)
	}
	for _, name := range []string{l.name + "a", l.name + "b"} {
		nl, err := nh.LinkByName(name)
		if err == nil {
			err = nh.LinkSetUp(nl)
		}
		if err != nil {
			return nil, fmt.Errorf("set %s up: %w", name, err)
		}
	}
	if l.seeder, err = newTxRing(l.g0); err != nil {
		return nil, fmt.Errorf("seed socket: %w", err)
	}
	return l, nil
}

// probeBroadcast checks that bpf_redirect_map takes BPF_F_BROADCAST (Linux
// 5.16) with a plain test run, which returns the helper's verdict without
// acting on it: XDP_REDIRECT where the flag is known, XDP_ABORTED before.
func probeBroadcast(devs *ebpf.Map) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "bpfcap_lbprobe", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.LoadMapPtr(asm.R1, devs.FD()),
			asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Imm(asm.R3, unix.BPF_F_BROADCAST),
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		return fmt.Errorf("load the broadcast probe: %w", err)
	}
	defer prog.Close()
	ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 60)})
	if err != nil {
		return fmt.Errorf("run the broadcast probe: %w", err)
	}
	if ret != 4 { // XDP_REDIRECT
		return fmt.Errorf("bpf_redirect_map with BPF_F_BROADCAST returned %d, not XDP_REDIRECT (needs Linux 5.16): %w", ret, ebpf.ErrNotSupported)
	}
	return nil
}

// send makes the loop send n copies of frame out of the target (rounded up
// to whole passes of loopCopies) and waits until they are sent (or dropped
// by a full ring on the way).
func (l *xdpLoop) send(frame []byte, n uint32) error {
	if n == 0 {
		return nil
	}
	if err := l.state.Put(uint32(0), loopState{Budget: uint64(n)}); err != nil {
		return fmt.Errorf("XDP loop: set the budget: %w", err)
	}
	seeds := min(n, loopSeeds)
	var st loopState
	for reseed := 0; ; reseed++ {
		if reseed > 3 {
			return fmt.Errorf("XDP loop: %d of %d frames sent, then no progress", st.Emitted, n)
		}
		if err := l.seeder.send(frame, seeds); err != nil {
			return fmt.Errorf("XDP loop: seed: %w", err)
		}
		// Wait for the budget to be spent; seeds lost on the way (a
		// full ring) slow the loop down, losing them all stops it.
		last, still := uint64(0), 0
		for st.Emitted < uint64(n) && still < 100 {
			time.Sleep(200 * time.Microsecond)
			if err := l.state.Lookup(uint32(0), &st); err != nil {
				return fmt.Errorf("XDP loop: read the state: %w", err)
			}
			if st.Emitted == last {
				still++
			} else {
				last, still = st.Emitted, 0
			}
		}
		if st.Emitted >= uint64(n) {
			break
		}
	}
	// Let the seeds die before the next budget revives them.
	for i := 0; i < 50 && st.Dead < uint64(seeds); i++ {
		time.Sleep(100 * time.Microsecond)
		if err := l.state.Lookup(uint32(0), &st); err != nil {
			return fmt.Errorf("XDP loop: read the state: %w", err)
		}
	}
	return nil
}

// Close detaches the loop's programs and removes its veth pair.
func (l *xdpLoop) Close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if l.seeder != nil {
		keep(l.seeder.Close())
	}
	for _, lk := range l.links {
		keep(lk.Close())
	}
	for _, p := range []*ebpf.Program{l.bcast} {
		if p != nil {
			keep(p.Close())
		}
	}
	for _, m := range []*ebpf.Map{l.devs, l.state} {
		if m != nil {
			keep(m.Close())
		}
	}
	for i := len(l.closers) - 1; i >= 0; i-- {
		keep(l.closers[i]())
	}
	return first
}
