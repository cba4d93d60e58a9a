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

// Flooder sends frames out of one interface at the speed of an XDP_TX
// loop: BPF_PROG_TEST_RUN in live-frames mode (Linux 5.18) with a program
// that returns XDP_TX, so each frame is transmitted by the interface's
// driver. The peer of a veth must have an XDP program (or GRO) to receive
// them. A pass-through program stays attached to the interface, or every
// test run would pay for an RCU grace period. Use it from a thread in the
// interface's network namespace.
type Flooder struct {
	// BatchSize is how many frames the kernel builds and sends before it
	// lets the receiver run (BPF_PROG_TEST_RUN batch size; default 256).
	// A veth ring holds 256 frames: on a single CPU, larger batches drop.
	BatchSize uint32

	tx      *ebpf.Program
	pass    *ebpf.Program
	link    link.Link
	ifindex int
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

// NewFlooder prepares a flood out of ifindex.
func NewFlooder(ifindex int) (*Flooder, error) {
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

// Send transmits frame n times (rounded up to whole batches of the kernel's
// live-frames loop).
func (f *Flooder) Send(frame []byte, n uint32) error {
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

// Close detaches and releases the flood programs.
func (f *Flooder) Close() error {
	err := f.link.Close()
	f.tx.Close()
	f.pass.Close()
	return err
}
