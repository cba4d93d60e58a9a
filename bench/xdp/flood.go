package xdpbench

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// xdpMD mirrors struct xdp_md, the context of an XDP test run.
type xdpMD struct {
	Data, DataEnd, DataMeta uint32
	IngressIfindex          uint32
	RxQueueIndex            uint32
	EgressIfindex           uint32
}

// Generators a Flooder uses (Flooder.Generator).
const (
	// GeneratorLiveFrames is BPF_PROG_TEST_RUN in live-frames mode with
	// an XDP_TX program.
	GeneratorLiveFrames = "live-frames"
	// GeneratorXDPLoop is a loop of XDP programs on a veth pair of its
	// own that broadcasts a few seed frames, copies out of the interface
	// on each pass (Linux 5.16).
	GeneratorXDPLoop = "xdp-broadcast-loop"
	// GeneratorTxRing is an AF_PACKET TPACKET_V2 TX ring with qdisc
	// bypass.
	GeneratorTxRing = "af_packet-tx-ring"
)

// Flooder sends frames out of one interface, with the first of three
// generators that works here:
//
//   - live frames, where ProbeLiveFrames says they work: BPF_PROG_TEST_RUN
//     in live-frames mode (Linux 5.18) with a program that returns XDP_TX,
//     so each frame is transmitted by the interface's driver as an XDP
//     frame. A pass-through program stays attached to the interface, or
//     every test run would pay for an RCU grace period. ~2.6 Mpps of 64 B
//     frames on this project's 2-vCPU development VM (DESIGN, Measured).
//   - the XDP broadcast loop (see xdpLoop; Linux 5.16): frames also leave
//     as XDP frames, without live frames. Measured on the same VM with live
//     frames refused, 60 B frames into a veth peer that passes them in XDP
//     and drops them in the stack, while 5 other jobs shared the 2 vCPUs
//     (load average 7-10): 1.0-1.63 Mpps wall-clock, 1.5-1.8 Mpps per
//     second of CPU 0's softirq time; 0.6-1.0 Mpps with tcpdump -w
//     capturing on the peer (its copy runs in the same softirqs), where
//     tcpdump kept every frame: with tcpdump the flood, not tcpdump, sets
//     the limit here. `go test -run '^$' -bench FloodRate -benchtime 2x
//     ./bench/xdp/` logs the rates.
//   - an AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS, one sendto
//     per 4096 frames), which works on any kernel: each frame becomes an
//     skb the veth driver hands to its peer. Under the same load it reached
//     only 120-230 kpps wall-clock, ~400 kpps per CPU-second of the sending
//     thread (the peer's receive path runs in its softirqs): the ring's
//     skbs point into the ring, so the veth copies each twice
//     (skb_copy_ubufs, then skb_pp_cow_data for XDP).
//
// The peer of a veth must have an XDP program (or GRO) to receive XDP
// frames; the benchmarks attach one for every generator. Use a Flooder
// from a thread in the interface's network namespace.
type Flooder struct {
	// BatchSize is how many frames the kernel builds and sends before it
	// lets the receiver run (BPF_PROG_TEST_RUN batch size; default 256),
	// for live frames only. A veth ring holds 256 frames: on a single CPU,
	// larger batches drop. The other generators let the receiver run
	// every few frames.
	BatchSize uint32

	tx      *ebpf.Program
	pass    *ebpf.Program
	link    link.Link
	ifindex int
	loop    *xdpLoop // instead of the above, without live frames
	ring    *txRing  // without live frames nor the loop
	why     error    // why not live frames (nor the loop, for ring)
}

func xdpProg(name string, action int32) (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.XDP,
		AttachType:   ebpf.AttachXDP,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, action), asm.Return()},
	})
}

// NewFlooder prepares a flood out of ifindex, with live frames where
// ProbeLiveFrames says they work, else with the XDP broadcast loop where
// that can be set up, else with the AF_PACKET TX ring. It returns the error
// of loading or attaching the live-frames programs, or of opening the
// AF_PACKET socket.
func NewFlooder(ifindex int) (*Flooder, error) {
	why := ProbeLiveFrames()
	if why == nil {
		return newFlooderWith(ifindex, GeneratorLiveFrames)
	}
	f, err := newFlooderWith(ifindex, GeneratorXDPLoop)
	if err == nil {
		f.why = why
		return f, nil
	}
	why = fmt.Errorf("%w; %w", why, err)
	if f, err = newFlooderWith(ifindex, GeneratorTxRing); err != nil {
		return nil, fmt.Errorf("flood out of ifindex %d without live frames (%v): %w", ifindex, why, err)
	}
	f.why = why
	return f, nil
}

// newFlooderWith prepares a flood out of ifindex with the generator gen.
func newFlooderWith(ifindex int, gen string) (*Flooder, error) {
	switch gen {
	case GeneratorXDPLoop:
		loop, err := newXDPLoop(ifindex)
		if err != nil {
			return nil, fmt.Errorf("XDP loop: %w", err)
		}
		return &Flooder{BatchSize: 256, ifindex: ifindex, loop: loop}, nil
	case GeneratorTxRing:
		r, err := newTxRing(ifindex)
		if err != nil {
			return nil, fmt.Errorf("AF_PACKET TX ring: %w", err)
		}
		return &Flooder{BatchSize: 256, ifindex: ifindex, ring: r}, nil
	case GeneratorLiveFrames:
	default:
		return nil, fmt.Errorf("unknown generator %q", gen)
	}
	tx, err := xdpProg("bpfcap_flood", 3) // XDP_TX
	if err != nil {
		return nil, fmt.Errorf("load flood program: %w", err)
	}
	pass, err := xdpProg("bpfcap_fpass", 2) // XDP_PASS
	if err != nil {
		tx.Close()
		return nil, fmt.Errorf("load pass program: %w", err)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: pass, Interface: ifindex})
	if err != nil {
		tx.Close()
		pass.Close()
		return nil, fmt.Errorf("attach pass program to the sending end: %w", err)
	}
	return &Flooder{BatchSize: 256, tx: tx, pass: pass, link: l, ifindex: ifindex}, nil
}

// Generator names the generator f uses: GeneratorLiveFrames,
// GeneratorXDPLoop or GeneratorTxRing; for the last two, why says why live
// frames are not used (ProbeLiveFrames's error), and for the TX ring why
// the loop is not either.
func (f *Flooder) Generator() (name string, why error) {
	switch {
	case f.loop != nil:
		return GeneratorXDPLoop, f.why
	case f.ring != nil:
		return GeneratorTxRing, f.why
	}
	return GeneratorLiveFrames, nil
}

// Send transmits frame n times (with live frames, rounded up to whole
// batches of the kernel's live-frames loop). Frames the device drops
// (a full veth ring) count as sent: count arrivals at the receiver.
func (f *Flooder) Send(frame []byte, n uint32) error {
	switch {
	case f.loop != nil:
		return f.loop.send(frame, n)
	case f.ring != nil:
		return f.ring.send(frame, n)
	}
	_, err := f.tx.Run(&ebpf.RunOptions{
		Data:      frame,
		Context:   xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(f.ifindex)},
		Repeat:    n,
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize: f.BatchSize,
	})
	if err != nil {
		return fmt.Errorf("live-frames flood of %d frames: %w", n, err)
	}
	return nil
}

// SendPaced transmits frame n times at about pps frames per second (0: as
// fast as possible), in bursts of burst frames, from a thread bound to
// cpu. It returns how long sending took.
func (f *Flooder) SendPaced(frame []byte, n uint32, pps float64, burst uint32, cpu int) (time.Duration, error) {
	var took time.Duration
	err := onCPU(cpu, func() error {
		start := time.Now()
		for sent := uint32(0); sent < n; {
			k := min(burst, n-sent)
			if err := f.Send(frame, k); err != nil {
				return err
			}
			sent += k
			if pps > 0 {
				due := start.Add(time.Duration(float64(sent) / pps * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
		}
		took = time.Since(start)
		return nil
	})
	return took, err
}

// Close detaches and releases the flood programs, or the loop, or closes
// the TX ring.
func (f *Flooder) Close() error {
	switch {
	case f.loop != nil:
		return f.loop.Close()
	case f.ring != nil:
		return f.ring.Close()
	}
	err := f.link.Close()
	f.tx.Close()
	f.pass.Close()
	return err
}
