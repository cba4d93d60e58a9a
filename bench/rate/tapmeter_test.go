package ratebench

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// tapMeter times, for every packet a device transmits, the kernel's path
// from the net_dev_queue tracepoint to net_dev_start_xmit. On a device
// without a qdisc (a veth's noqueue) that path is the transmit lock, the
// packet taps (dev_queue_xmit_nit: tcpdump's packet_rcv/tpacket_rcv, with
// its classic BPF filter, the copy into its mapped ring and the wake-up)
// and the driver call's preamble. The same path with no tap open, less
// this one, is what tcpdump's kernel side costs per packet: work that
// runs in the sender's softirq and never shows in tcpdump's process time,
// as bpfcap's BPF programs never show in bpfcap's (their run time comes
// from the kernel's BPF statistics instead). The meter's own two programs
// are in both. It counts the packets of one device only.
type tapMeter struct {
	slots *ebpf.Map // per CPU: the skb between the two tracepoints, its start time, the sum and count, the packets that reached net_dev_start_xmit
	progs []*ebpf.Program
	links []link.Link
}

// tapOutlier is the longest transmit path the meter counts, in ns: the tap
// of one small packet costs ~1 µs; tens of µs mean an interrupt or another
// task ran in between.
const tapOutlier = 20000

// tapSlot is the value of tapMeter.slots.
type tapSlot struct {
	Skb, Start, Sum, Count, Reached uint64
}

// tapReading is the meter's sum and count at one moment, and how many of
// the device's packets had reached net_dev_start_xmit (timed or not).
type tapReading struct {
	sum, count, reached uint64
}

// newTapMeter attaches the meter, for the packets ifindex transmits, to
// the raw tracepoints (Linux 4.17); it is detached when the benchmark
// ends.
func newTapMeter(tb testing.TB, ifindex int) *tapMeter {
	tb.Helper()
	m := &tapMeter{}
	tb.Cleanup(m.close)
	ifindexOff, err := netDeviceIfindexOffset()
	if err != nil {
		tb.Fatalf("tap meter: %v", err)
	}
	m.slots, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bpfcap_tapslot", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 40, MaxEntries: 1})
	if err != nil {
		tb.Fatalf("create the tap meter's map: %v", err)
	}
	lookup := asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, 0, asm.DWord), // the skb, the tracepoints' first argument
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.slots.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(asm.R7, asm.R0),
	}
	start := append(append(asm.Instructions{}, lookup...),
		asm.StoreMem(asm.R7, 0, asm.R6, asm.DWord),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.R7, 8, asm.R0, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	stop := asm.Instructions{
		// The device, net_dev_start_xmit's second argument: only
		// ifindex's packets count.
		asm.LoadMem(asm.R3, asm.R1, 8, asm.DWord),
		asm.Mov.Reg(asm.R8, asm.R1),
		asm.Add.Imm(asm.R3, int32(ifindexOff)),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 4),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.Word),
		asm.JNE.Imm(asm.R1, int32(ifindex), "out"),
		asm.Mov.Reg(asm.R1, asm.R8),
	}
	stop = append(append(stop, lookup...),
		asm.LoadMem(asm.R1, asm.R7, 32, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R7, 32, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R7, 0, asm.DWord),
		asm.JNE.Reg(asm.R1, asm.R6, "out"),
		asm.FnKtimeGetNs.Call(),
		asm.LoadMem(asm.R1, asm.R7, 8, asm.DWord),
		asm.Sub.Reg(asm.R0, asm.R1),
		// A path longer than tapOutlier was interrupted or preempted
		// (the machine is shared): not counted.
		asm.JGT.Imm(asm.R0, tapOutlier, "out"),
		asm.LoadMem(asm.R1, asm.R7, 16, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R0),
		asm.StoreMem(asm.R7, 16, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R7, 24, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R7, 24, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.R7, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	for _, at := range []struct {
		tp    string
		insns asm.Instructions
	}{{"net_dev_queue", start}, {"net_dev_start_xmit", stop}} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "bpfcap_tapm", Type: ebpf.RawTracepoint, License: "Dual BSD/GPL", Instructions: at.insns,
		})
		if err != nil {
			tb.Fatalf("load the tap meter's %s program: %v", at.tp, err)
		}
		m.progs = append(m.progs, prog)
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: at.tp, Program: prog})
		if err != nil {
			tb.Fatalf("attach the tap meter to %s: %v", at.tp, err)
		}
		m.links = append(m.links, l)
	}
	return m
}

// netDeviceIfindexOffset returns the offset of ifindex in the kernel's
// struct net_device (BTF).
func netDeviceIfindexOffset() (uint32, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return 0, fmt.Errorf("kernel BTF: %w", err)
	}
	var nd *btf.Struct
	if err := spec.TypeByName("net_device", &nd); err != nil {
		return 0, fmt.Errorf("struct net_device: %w", err)
	}
	for _, m := range nd.Members {
		if m.Name == "ifindex" {
			return m.Offset.Bytes(), nil
		}
	}
	return 0, fmt.Errorf("struct net_device has no ifindex")
}

// read returns the time and packets measured so far, on all CPUs.
func (m *tapMeter) read(tb testing.TB) tapReading {
	tb.Helper()
	var per []tapSlot
	if err := m.slots.Lookup(uint32(0), &per); err != nil {
		tb.Fatalf("read the tap meter: %v", err)
	}
	var r tapReading
	for _, s := range per {
		r.sum += s.Sum
		r.count += s.Count
		r.reached += s.Reached
	}
	return r
}

// since returns the time per packet measured between then and now.
func (r tapReading) since(then tapReading) float64 {
	return float64(r.sum-then.sum) / float64(max(r.count-then.count, 1))
}

func (m *tapMeter) close() {
	for _, l := range m.links {
		l.Close()
	}
	for _, p := range m.progs {
		p.Close()
	}
	if m.slots != nil {
		m.slots.Close()
	}
}

// String says what the meter measures.
func (m *tapMeter) String() string {
	return fmt.Sprintf("tap meter: net_dev_queue -> net_dev_start_xmit, %d programs", len(m.progs))
}
