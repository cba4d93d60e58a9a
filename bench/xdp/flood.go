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
	// GeneratorTxRing is an AF_PACKET TPACKET_V2 TX ring with qdisc
	// bypass.
	GeneratorTxRing = "af_packet-tx-ring"
)

// Flooder sends frames out of one interface, with one of two generators:
//
//   - live frames, where ProbeLiveFrames says they work: BPF_PROG_TEST_RUN
//     in live-frames mode (Linux 5.18) with a program that returns XDP_TX,
//     so each frame is transmitted by the interface's driver as an XDP
//     frame. A pass-through program stays attached to the interface, or
//     every test run would pay for an RCU grace period. ~2.6 Mpps of 64 B
//     frames on this project's 2-vCPU development VM (DESIGN, Measured).
//   - otherwise (live frames refused by a policy, or a kernel before 5.18)
//     an AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS, one sendto
//     per 4096 frames): each frame becomes an skb the veth driver hands to
//     its peer. Measured on this project's development VM (2 vCPUs shared
//     with other work, live frames refused) into a veth peer that passes
//     them in XDP: ~400 kpps of 60 B frames per CPU-second of the sending
//     thread (the peer's receive path runs in its softirqs), 120-230 kpps
//     of wall-clock time while the machine was loaded; `go test -run '^$'
//     -bench FloodRate ./bench/xdp/` logs it. That is below what tcpdump -w
//     keeps (~1.56 Mpps): the TX ring's skbs point into the ring, so the
//     veth copies each twice (skb_copy_ubufs, then skb_pp_cow_data for XDP).
//
// The peer of a veth must have an XDP program (or GRO) to receive XDP_TX
// frames; the benchmarks attach one for both generators. Use a Flooder from
// a thread in the interface's network namespace.
type Flooder struct {
	// BatchSize is how many frames the kernel builds and sends before it
	// lets the receiver run (BPF_PROG_TEST_RUN batch size; default 256),
	// for live frames only. A veth ring holds 256 frames: on a single CPU,
	// larger batches drop. The TX ring lets the receiver run after every
	// frame.
	BatchSize uint32

	tx      *ebpf.Program
	pass    *ebpf.Program
	link    link.Link
	ifindex int
	ring    *txRing // instead of the above, without live frames
	why     error   // ProbeLiveFrames's answer, when ring is used
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
// ProbeLiveFrames says they work and the AF_PACKET TX ring otherwise. It
// returns the error of loading or attaching the live-frames programs, or of
// opening the AF_PACKET socket.
func NewFlooder(ifindex int) (*Flooder, error) {
	if why := ProbeLiveFrames(); why != nil {
		r, err := newTxRing(ifindex)
		if err != nil {
			return nil, fmt.Errorf("flood out of ifindex %d without live frames (%v): %w", ifindex, why, err)
		}
		return &Flooder{BatchSize: 256, ifindex: ifindex, ring: r, why: why}, nil
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

// Generator names the generator f uses: GeneratorLiveFrames or
// GeneratorTxRing; for the latter, why says why live frames are not used
// (ProbeLiveFrames's error).
func (f *Flooder) Generator() (name string, why error) {
	if f.ring != nil {
		return GeneratorTxRing, f.why
	}
	return GeneratorLiveFrames, nil
}

// Send transmits frame n times (with live frames, rounded up to whole
// batches of the kernel's live-frames loop). Frames the device drops
// (a full veth ring) count as sent: count arrivals at the receiver.
func (f *Flooder) Send(frame []byte, n uint32) error {
	if f.ring != nil {
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

// Close detaches and releases the flood programs, or closes the TX ring.
func (f *Flooder) Close() error {
	if f.ring != nil {
		return f.ring.Close()
	}
	err := f.link.Close()
	f.tx.Close()
	f.pass.Close()
	return err
}
