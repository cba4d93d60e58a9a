package guestcheck

import (
	"fmt"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// udpPort is the destination port the packet programs count.
const udpPort = 4789

// packets is how many matching packets each network test waits for.
const packets = 5

// udpCounter counts IPv4 UDP packets (IHL 5) to udpPort. dataOff and
// endOff are the ctx offsets of the data and data_end pointers; retval is
// the program's verdict (pass).
func udpCounter(m *ebpf.Map, dataOff, endOff int16, retval int32) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, dataOff, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, endOff, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 38),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R5, int32(htons(unix.ETH_P_IP)), "pass"),
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 23, asm.Byte),
		asm.JNE.Imm(asm.R5, unix.IPPROTO_UDP, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 36, asm.Half),
		asm.JNE.Imm(asm.R5, int32(htons(udpPort)), "pass"),
	}
	insns = append(insns, incrementInsns(m, retval)...)
	return append(insns,
		asm.Mov.Imm(asm.R0, retval).WithSymbol("pass"),
		asm.Return(),
	)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sendUntilCounted sends UDP datagrams from the pair's host end to the peer
// until the counter reaches packets.
func sendUntilCounted(t *testing.T, p *testutils.VethPair, m *ebpf.Map, hook string) {
	t.Helper()
	var conn *net.UDPConn
	err := testutils.Do(t, p.HostNS, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: p.PeerIP, Port: udpPort})
		return err
	})
	if err != nil {
		t.Fatalf("udp socket in %s: %v", p.HostNSName, err)
	}
	defer conn.Close()
	waitFor(t, func() bool {
		conn.Write([]byte("bpfcap guestcheck"))
		return count(t, m) >= packets
	}, func() string {
		return fmt.Sprintf("%s on %s counted %d UDP packets to port %d, want >= %d", hook, p.PeerName, count(t, m), udpPort, packets)
	})
}

func TestXDPVeth(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	kconfig.Require(t, "CONFIG_VETH")
	p := testutils.NewVethPair(t)
	m := newCounter(t)
	prog := loadProgram(t, &ebpf.ProgramSpec{
		Name:         "gc_xdp",
		Type:         ebpf.XDP,
		Instructions: udpCounter(m, 0, 4, 2 /* XDP_PASS */),
	}, "CONFIG_BPF_SYSCALL")
	var l link.Link
	err := testutils.Do(t, p.PeerNS, func() error {
		var err error
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: p.PeerIndex})
		return err
	})
	if err != nil {
		failOrSkip(t, fmt.Errorf("attach xdp to %s: %w", p.PeerName, err), "CONFIG_BPF_SYSCALL", "CONFIG_VETH")
	}
	defer l.Close()
	sendUntilCounted(t, p, m, "xdp")
}

// __sk_buff offsets of data and data_end.
const skbData, skbDataEnd = 76, 80

func loadTCProgram(t *testing.T, m *ebpf.Map, syms ...string) *ebpf.Program {
	t.Helper()
	return loadProgram(t, &ebpf.ProgramSpec{
		Name:         "gc_tc",
		Type:         ebpf.SchedCLS,
		Instructions: udpCounter(m, skbData, skbDataEnd, 0 /* TC_ACT_OK */),
	}, syms...)
}

func TestTCX(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	kconfig.Require(t, "CONFIG_NET_XGRESS")
	p := testutils.NewVethPair(t)
	m := newCounter(t)
	prog := loadTCProgram(t, m, "CONFIG_NET_XGRESS")
	var l link.Link
	err := testutils.Do(t, p.PeerNS, func() error {
		var err error
		l, err = link.AttachTCX(link.TCXOptions{Interface: p.PeerIndex, Program: prog, Attach: ebpf.AttachTCXIngress})
		return err
	})
	if err != nil {
		failOrSkip(t, fmt.Errorf("attach tcx ingress to %s: %w", p.PeerName, err), "CONFIG_NET_XGRESS")
	}
	defer l.Close()
	sendUntilCounted(t, p, m, "tcx")
}

func TestClsact(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	kconfig.Require(t, "CONFIG_NET_SCH_INGRESS", "CONFIG_NET_CLS_BPF")
	p := testutils.NewVethPair(t)
	m := newCounter(t)
	prog := loadTCProgram(t, m, "CONFIG_NET_CLS_BPF")
	h, err := netlink.NewHandleAt(p.PeerNS)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", p.PeerNSName, err)
	}
	defer h.Close()
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: p.PeerIndex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := h.QdiscAdd(qdisc); err != nil {
		failOrSkip(t, fmt.Errorf("add clsact qdisc to %s: %w", p.PeerName, err), "CONFIG_NET_SCH_INGRESS")
	}
	defer h.QdiscDel(qdisc)
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: p.PeerIndex, Parent: netlink.HANDLE_MIN_INGRESS,
			Handle: 1, Protocol: unix.ETH_P_ALL, Priority: 1,
		},
		Fd: prog.FD(), Name: "guestcheck", DirectAction: true,
	}
	if err := h.FilterAdd(filter); err != nil {
		failOrSkip(t, fmt.Errorf("add bpf filter to clsact ingress of %s: %w", p.PeerName, err), "CONFIG_NET_CLS_BPF")
	}
	defer h.FilterDel(filter)
	sendUntilCounted(t, p, m, "clsact")
}
