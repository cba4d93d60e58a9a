package xdpcap_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// testRing keeps the ring at capture.h's declared size (4 MiB), so tests
// load the object as it is declared.
var testRing = hook.RingOptions{Size: 4 << 20}

// firewallOnVeth loads the example firewall with a fresh pinned hook and
// attaches it to the peer end of a new veth pair.
func firewallOnVeth(t *testing.T, opts firewall.Options) (*testutils.VethPair, string, *firewall.Firewall) {
	t.Helper()
	return firewallOnVethMTU(t, opts, 0)
}

// firewallOnVethMTU is firewallOnVeth with both ends' MTU set to mtu first
// (0: unchanged); a large MTU needs programs with frags on both ends.
func firewallOnVethMTU(t *testing.T, opts firewall.Options, mtu int) (*testutils.VethPair, string, *firewall.Firewall) {
	t.Helper()
	p := testutils.NewVethPair(t)
	if mtu > 0 {
		for _, c := range [][2]string{{p.HostNSName, p.HostName}, {p.PeerNSName, p.PeerName}} {
			if out, err := testutils.Exec(c[0], "ip", "link", "set", c[1], "mtu", fmt.Sprint(mtu)); err != nil {
				t.Fatal(out, err)
			}
		}
	}
	pin := pinPath(t)
	hook, err := xdpcap.CreatePinned(pin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hook.Close() })
	opts.Hook = hook
	fw := loadFirewall(t, opts)
	err = testutils.Do(t, p.PeerNS, func() error {
		l, err := fw.Attach(p.PeerIndex)
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// veth hands XDP_TX frames only to a peer with XDP (or GRO) enabled:
	// a pass-through program on the host end lets bounced packets arrive.
	err = testutils.Do(t, p.HostNS, func() error {
		spec := &ebpf.ProgramSpec{Name: "pass", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(xdpcap.Pass)), asm.Return()}}
		if opts.Frags {
			spec.Flags = unix.BPF_F_XDP_HAS_FRAGS
		}
		prog, err := ebpf.NewProgram(spec)
		if err != nil {
			return err
		}
		t.Cleanup(func() { prog.Close() })
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: p.HostIndex})
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, pin, fw
}

// sendUDP sends payload from srcPort (0: any) on the host end to dst:dstPort.
func sendUDP(t *testing.T, p *testutils.VethPair, srcPort, dstPort int, payload []byte) {
	t.Helper()
	err := testutils.Do(t, p.HostNS, func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: p.HostIP, Port: srcPort}, &net.UDPAddr{IP: p.PeerIP, Port: dstPort})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
	if err != nil {
		t.Fatalf("send udp %d->%d: %v", srcPort, dstPort, err)
	}
}

type flow struct {
	sport, dport uint16
	verdict      int64
}

func flowOf(t *testing.T, p pcapng.Packet) flow {
	pkt := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
	udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !ok {
		t.Fatalf("captured a packet that is not UDP: %v", pkt)
	}
	if p.VerdictType != pcapng.VerdictXDP {
		t.Fatalf("packet without an XDP verdict: %+v", p)
	}
	return flow{uint16(udp.SrcPort), uint16(udp.DstPort), p.Verdict}
}

// TestCaptureHookDNS is the main proof, without external tools:
// the firewall on a veth, DNS and other traffic through it, a capture of
// 'udp port 53' from its hook sees exactly the DNS packets with their
// verdicts, the firewall behaves the same, and the hook is empty after.
func TestCaptureHookDNS(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, tc := range []struct {
		name string
		opts firewall.Options
	}{
		{"bpfcap-layout", firewall.Options{}},
		{"cloudflare-layout-legacy-attach", firewall.Options{Layout: firewall.LayoutCloudflare, LegacyAttachType: true}},
		{"frags", firewall.Options{Frags: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, pin, _ := firewallOnVeth(t, tc.opts)
			dnsSrv := testutils.ListenUDP(t, p.PeerNS, p.PeerIP, 53)
			discard := testutils.ListenUDP(t, p.PeerNS, p.PeerIP, 9)
			other := testutils.ListenUDP(t, p.PeerNS, p.PeerIP, 2000)
			bounced := testutils.ListenUDP(t, p.HostNS, p.HostIP, 53)
			// Resolve ARP before capturing, so the capture sees only UDP.
			// (The first datagrams can be lost while the links settle.)
			testutils.WaitFor(t, "a warm-up datagram to arrive", 10*time.Second, func() bool {
				sendUDP(t, p, 0, 2000, []byte("warm-up"))
				return testutils.CountDatagrams(other, 100*time.Millisecond, 100*time.Millisecond) > 0
			})
			testutils.CountDatagrams(other, 100*time.Millisecond, 100*time.Millisecond)

			c, err := xdpcap.OpenCapture(pin, xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "udp port 53", CountSeen: true, Ring: testRing}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if want := []string{"aborted", "drop", "pass", "tx"}; len(c.Actions) < 4 || fmt.Sprint(c.Actions[:4]) != fmt.Sprint(want) {
				t.Fatalf("actions = %v", c.Actions)
			}
			if !c.FilterInlined {
				t.Errorf("the kernel filter is not inlined into the capture programs")
			}
			if n := slotFunctionCalls(t, pin, xdpcap.Pass); n != 0 {
				t.Errorf("the capture program in slot pass makes %d bpf-to-bpf calls, want 0 (filter inlined)", n)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sink := &testutils.PacketCollector{}
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, sink) }()

			const n = 3
			for i := 0; i < n; i++ {
				sendUDP(t, p, 0, 9, []byte("not dns, dropped"))
				sendUDP(t, p, 0, 2000, []byte("not dns, passed"))
			}
			for i := 0; i < n; i++ {
				sendUDP(t, p, 0, 53, testutils.DNSQuery(uint16(i))) // passed
				// From port 53: the socket that receives the bounced ones.
				for _, port := range []int{9, 7} { // dropped, bounced
					if _, err := bounced.WriteToUDP(testutils.DNSQuery(uint16(i)), &net.UDPAddr{IP: p.PeerIP, Port: port}); err != nil {
						t.Fatal(err)
					}
				}
			}
			testutils.WaitFor(t, "9 DNS packets captured", 10*time.Second, func() bool { return sink.Len() >= 3*n })
			// The firewall did what it does without a capture.
			if got := testutils.CountDatagrams(dnsSrv, 5*time.Second, 300*time.Millisecond); got != n {
				t.Errorf("DNS server got %d queries, want %d (passed)", got, n)
			}
			if got := testutils.CountDatagrams(other, 5*time.Second, 300*time.Millisecond); got != n {
				t.Errorf("port 2000 got %d datagrams, want %d (passed)", got, n)
			}
			if got := testutils.CountDatagrams(discard, 300*time.Millisecond, 300*time.Millisecond); got != 0 {
				t.Errorf("port 9 got %d datagrams, want 0 (dropped)", got)
			}
			if got := testutils.CountDatagrams(bounced, 5*time.Second, 300*time.Millisecond); got != n {
				t.Errorf("host got %d bounced datagrams, want %d (XDP_TX)", got, n)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			var flows []string
			for _, pk := range sink.Packets() {
				f := flowOf(t, pk)
				// Ephemeral ports read as 0.
				if f.sport >= 1024 {
					f.sport = 0
				}
				if f.dport >= 1024 {
					f.dport = 0
				}
				flows = append(flows, fmt.Sprintf("%d->%d:%d", f.sport, f.dport, f.verdict))
				if pk.Data == nil || pk.WireLen != len(pk.Data) {
					t.Errorf("packet of %d bytes, wire length %d", len(pk.Data), pk.WireLen)
				}
				// The firewall runs in the peer's namespace, not ours:
				// the device is found there.
				if pk.Device != p.PeerName {
					t.Errorf("packet on device %q, want %q", pk.Device, p.PeerName)
				}
			}
			sort.Strings(flows)
			var want []string
			for i := 0; i < n; i++ {
				// The bounced packet is captured as the firewall sends it
				// back: ports (and addresses) swapped.
				want = append(want, "0->53:2", "53->9:1", "7->53:3")
			}
			sort.Strings(want)
			if fmt.Sprint(flows) != fmt.Sprint(want) {
				t.Fatalf("captured flows (sport->dport:verdict) = %v, want %v", flows, want)
			}
			st := c.Stats()
			// The kernel filtered: it matched only the DNS packets.
			if len(st) != 1 || st[0].Captured != 3*n || st[0].Matched != 3*n || st[0].UserFiltered != 0 || st[0].Seen < 5*n {
				t.Fatalf("stats = %+v, want %d matched in the kernel and captured, and seen >= %d", st, 3*n, 5*n)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			assertHookEmpty(t, pin)
		})
	}
}

func assertHookEmpty(t *testing.T, pin string) {
	t.Helper()
	h, err := xdpcap.OpenHook(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	occ, err := h.Occupants()
	if err != nil || len(occ) != 0 {
		t.Fatalf("hook not empty after capture: %+v, %v", occ, err)
	}
}

// TestCaptureStaleAndBusy: a hook left full by a capture that did not
// exit is emptied with a notice; a slot another running process holds is
// refused with ErrBusy and nothing is changed.
func TestCaptureStaleAndBusy(t *testing.T) {
	testutils.RunsInGuests(t)
	_, pin, _ := firewallOnVeth(t, firewall.Options{})
	h, err := xdpcap.OpenHook(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fill := func(a xdpcap.Action) *ebpf.Program {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpfcap_xdp", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(a)), asm.Return()}})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Set(a, prog); err != nil {
			t.Fatal(err)
		}
		return prog
	}
	// Busy: the drop slot's program is held by another process.
	held := fill(xdpcap.Drop)
	child := testutils.HoldInChild(t, held.FD())
	held.Close()
	// Stale: the tx slot's program is held by nobody.
	fill(xdpcap.TX).Close()

	var notices strings.Builder
	_, err = xdpcap.OpenCapture(pin, xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Ring: hook.RingOptions{Notices: &notices}}})
	if !errors.Is(err, xdpcap.ErrBusy) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d (sleep)", child.Process.Pid)) {
		t.Fatalf("OpenCapture on a busy hook = %v, want ErrBusy naming pid %d", err, child.Process.Pid)
	}
	if occ, _ := h.Occupants(); len(occ) != 2 {
		t.Fatalf("after the refused capture the hook holds %+v, want it unchanged (drop, tx)", occ)
	}

	// Capturing the other actions is fine while drop is busy; the stale tx
	// slot is emptied with a notice.
	c, err := xdpcap.OpenCapture(pin, xdpcap.CaptureOptions{Actions: []xdpcap.Action{xdpcap.Pass, xdpcap.TX}, CaptureOptions: hook.CaptureOptions{Ring: ringWith(&notices)}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notices.String(), "emptied slot tx") {
		t.Fatalf("no notice about the stale slot: %q", notices.String())
	}
	if occ, _ := h.Occupants(); len(occ) != 3 {
		t.Fatalf("during capture the hook holds %+v, want drop, pass, tx", occ)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if occ, _ := h.Occupants(); len(occ) != 1 || occ[0].Action != xdpcap.Drop {
		t.Fatalf("after the capture the hook holds %+v, want only the other capture's drop slot", occ)
	}
}

// slotFunctionCalls counts the bpf-to-bpf calls in the instructions the
// kernel runs for the program in slot a of the hook pinned at pin.
func slotFunctionCalls(t *testing.T, pin string, a xdpcap.Action) int {
	t.Helper()
	h, err := xdpcap.OpenHook(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var id uint32
	if err := h.Map().Lookup(uint32(a), &id); err != nil {
		t.Fatalf("slot %s: %v", a, err)
	}
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		t.Fatalf("slot %s: program %d: %v", a, id, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	insns, err := info.Instructions()
	if err != nil {
		t.Fatalf("read the instructions of program %d: %v", id, err)
	}
	n := 0
	for _, ins := range insns {
		if ins.IsFunctionCall() {
			n++
		}
	}
	return n
}

// TestCaptureFilterInlined: by default the capture programs run the filter
// inlined (no bpf-to-bpf call per packet); with FilterInStub they call it
// in its stub, which also shows that slotFunctionCalls sees such a call.
func TestCaptureFilterInlined(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	for _, inStub := range []bool{false, true} {
		pin := pinPath(t)
		h, err := xdpcap.CreatePinned(pin)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		fw, err := firewall.Load(firewall.Options{Hook: h})
		if err != nil {
			t.Fatal(err)
		}
		defer fw.Close()
		c, err := xdpcap.OpenCapture(pin, xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "udp port 53", Ring: testRing}, FilterInStub: inStub, Actions: []xdpcap.Action{xdpcap.Pass}})
		if err != nil {
			t.Fatal(err)
		}
		calls := slotFunctionCalls(t, pin, xdpcap.Pass)
		c.Close()
		if inStub && (c.FilterInlined || calls == 0) {
			t.Errorf("FilterInStub: FilterInlined %v, %d bpf-to-bpf calls: want the filter called in its stub", c.FilterInlined, calls)
		}
		if !inStub && (!c.FilterInlined || calls != 0) {
			t.Errorf("default: FilterInlined %v, %d bpf-to-bpf calls: want the filter inlined", c.FilterInlined, calls)
		}
	}
}

// ringWith is testRing with notices going to w.
func ringWith(w io.Writer) hook.RingOptions {
	r := testRing
	r.Notices = w
	return r
}
