package xdpcap_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/xdpcap"
)

var pinCounter atomic.Uint32

// pinPath returns a fresh path on the bpffs, removed when the test ends.
func pinPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bpfcap-test-%d-%d", os.Getpid(), pinCounter.Add(1)))
	t.Cleanup(func() { os.Remove(p) })
	return p
}

// udpFrame builds an Ethernet/IPv4/UDP frame from sport to dport.
func udpFrame(t testing.TB, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{2, 0, 0, 0, 0, 1},
		DstMAC:       net.HardwareAddr{2, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 1, 0, 1), DstIP: net.IPv4(10, 1, 0, 2)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// runVerdict runs prog once on frame and returns its XDP action.
func runVerdict(t testing.TB, prog *ebpf.Program, frame []byte) xdpcap.Action {
	t.Helper()
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	return xdpcap.Action(ret)
}

func loadFirewall(t *testing.T, opts firewall.Options) *firewall.Firewall {
	t.Helper()
	fw, err := firewall.Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	for port, a := range map[uint16]xdpcap.Action{9: xdpcap.Drop, 7: xdpcap.TX, 53: xdpcap.Pass} {
		if err := fw.SetRule(port, a); err != nil {
			t.Fatal(err)
		}
	}
	return fw
}

func TestParseActions(t *testing.T) {
	testutils.RunsInGuests(t)
	got, err := xdpcap.ParseActions("XDP_DROP, pass,drop")
	if err != nil || fmt.Sprint(got) != "[drop pass]" {
		t.Fatalf("ParseActions = %v, %v", got, err)
	}
	if all, _ := xdpcap.ParseActions("all"); len(all) != 5 {
		t.Fatalf("all = %v", all)
	}
	if _, err := xdpcap.ParseActions("pass,bounce"); err == nil || !strings.Contains(err.Error(), `"bounce"`) {
		t.Fatalf("bad action error = %v", err)
	}
}

// TestFirewallVerdicts checks the example program's behaviour with an empty
// hook, in both layouts and both attach types, and that TargetAttrs finds
// the attributes the owner demands.
func TestFirewallVerdicts(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	for _, tc := range []struct {
		name string
		opts firewall.Options
		want xdpcap.Target
	}{
		{"bpfcap", firewall.Options{}, xdpcap.Target{AttachType: ebpf.AttachXDP}},
		{"cloudflare", firewall.Options{Layout: firewall.LayoutCloudflare}, xdpcap.Target{AttachType: ebpf.AttachXDP}},
		{"legacy-attach", firewall.Options{LegacyAttachType: true}, xdpcap.Target{AttachType: ebpf.AttachNone}},
		{"frags", firewall.Options{Frags: true}, xdpcap.Target{AttachType: ebpf.AttachXDP, Frags: true}},
		{"cloudflare-legacy-frags", firewall.Options{Layout: firewall.LayoutCloudflare, LegacyAttachType: true, Frags: true},
			xdpcap.Target{AttachType: ebpf.AttachNone, Frags: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook, err := xdpcap.CreatePinned(pinPath(t))
			if err != nil {
				t.Fatal(err)
			}
			defer hook.Close()
			if _, err := hook.TargetAttrs(xdpcap.Pass); !errors.Is(err, xdpcap.ErrNoOwner) {
				t.Fatalf("TargetAttrs on an unused hook = %v, want ErrNoOwner", err)
			}
			tc.opts.Hook = hook
			fw := loadFirewall(t, tc.opts)
			for _, c := range []struct {
				sport, dport uint16
				want         xdpcap.Action
			}{{40000, 53, xdpcap.Pass}, {53, 9, xdpcap.Drop}, {53, 7, xdpcap.TX}, {1000, 2000, xdpcap.Pass}, {9, 1000, xdpcap.Drop}} {
				if got := runVerdict(t, fw.Program, udpFrame(t, c.sport, c.dport, []byte("x"))); got != c.want {
					t.Errorf("%d->%d: verdict %s, want %s", c.sport, c.dport, got, c.want)
				}
			}
			target, err := hook.TargetAttrs(xdpcap.Drop)
			if err != nil {
				t.Fatal(err)
			}
			// Kernels before the owner check of expected attach types
			// (6.1) accept either attach type: the frags flag must match.
			if target != tc.want && (target.Frags != tc.want.Frags || kernelChecksAttachType(t, hook)) {
				t.Fatalf("TargetAttrs = %s, want %s", target, tc.want)
			}
			if occ, err := hook.Occupants(); err != nil || len(occ) != 0 {
				t.Fatalf("probe left the hook occupied: %v, %v", occ, err)
			}
		})
	}
}

// TestOpenHookRefuses checks the messages for pins that are not hooks.
func TestOpenHookRefuses(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	for _, tc := range []struct {
		name string
		spec ebpf.MapSpec
		want string
	}{
		{"array", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 5}, "it is a map of type Array, a hook is a prog array"},
		{"size", ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 8}, "prog array of 8 slots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ebpf.NewMap(&tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p := pinPath(t)
			if err := m.Pin(p); err != nil {
				t.Fatal(err)
			}
			_, err = xdpcap.OpenHook(p)
			if !errors.Is(err, xdpcap.ErrNotHook) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenHook = %v, want ErrNotHook saying %q", err, tc.want)
			}
		})
	}
	if _, err := xdpcap.OpenHook("/sys/fs/bpf/bpfcap-no-such-pin"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenHook(missing) = %v", err)
	}
}

// TestOccupantsHolders checks that a slot program held by another process
// is reported with that process, and one nobody holds is stale.
func TestOccupantsHolders(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	hook, err := xdpcap.CreatePinned(pinPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer hook.Close()
	loadFirewall(t, firewall.Options{Hook: hook})
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpfcap_t", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(xdpcap.Drop)), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := hook.Set(xdpcap.Drop, prog); err != nil {
		t.Fatal(err)
	}
	defer hook.Clear(xdpcap.Drop)

	// A child process holding the program's fd.
	cmd := testutils.HoldInChild(t, prog.FD())
	occ, err := hook.Occupants()
	if err != nil {
		t.Fatal(err)
	}
	if len(occ) != 1 || occ[0].Action != xdpcap.Drop || occ[0].Name != "bpfcap_t" || len(occ[0].Holders) != 1 || occ[0].Holders[0].PID != cmd.Process.Pid {
		t.Fatalf("occupants = %+v, want drop slot held by pid %d", occ, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	occ, err = hook.Occupants()
	if err != nil || len(occ) != 1 || !occ[0].Stale() {
		t.Fatalf("occupants after the holder died = %+v, %v; want one stale", occ, err)
	}
}

func removePin(p string) { os.Remove(p) }

// kernelChecksAttachType reports whether the kernel refuses a tail-call
// target whose expected attach type differs from the hook owner's (the
// firewall, loaded with BPF_XDP unless LegacyAttachType).
func kernelChecksAttachType(t *testing.T, hook *xdpcap.Hook) bool {
	t.Helper()
	target, err := hook.TargetAttrs(xdpcap.Aborted)
	if err != nil {
		t.Fatal(err)
	}
	other := ebpf.AttachNone
	if target.AttachType == ebpf.AttachNone {
		other = ebpf.AttachXDP
	}
	spec := &ebpf.ProgramSpec{Type: ebpf.XDP, AttachType: other, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}}
	target.Apply(spec)
	spec.AttachType = other
	p, err := ebpf.NewProgram(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = hook.Set(xdpcap.Aborted, p)
	hook.Clear(xdpcap.Aborted)
	return err != nil
}
