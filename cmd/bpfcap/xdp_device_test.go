package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// TestXDPCLIDevice: `bpfcap xdp dev IF` on an interface without XDP
// captures at entry and detaches on exit; on one with an XDP program it
// says how to instrument the program and whether fentry/fexit is allowed.
func TestXDPCLIDevice(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	out := filepath.Join(t.TempDir(), "dev.pcapng")
	r := xdpStart(t, &p.PeerNS, "xdp", "dev", p.PeerName, "icmp", "-w", out)
	r.waitFile(t, out)
	xdpPing(t, p.HostNS, p.HostIP, p.PeerIP, 3)
	if err := r.stop(t); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	pkts, ifs := xdpReadPcapng(t, out)
	if len(ifs) != 1 || ifs[0].Name != "xdp:dev:"+p.PeerName {
		t.Fatalf("interfaces = %+v", ifs)
	}
	requests := 0
	for _, pk := range pkts {
		pkt := gopacket.NewPacket(pk.Data, layers.LayerTypeEthernet, gopacket.Default)
		icmp, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !ok {
			t.Fatalf("captured a packet that is not ICMP: %v", pkt)
		}
		if icmp.TypeCode.Type() == layers.ICMPv4TypeEchoRequest {
			requests++
		}
		if pk.VerdictType != pcapng.VerdictNone {
			t.Errorf("entry capture recorded a verdict: %+v", pk)
		}
	}
	if requests != 3 || len(pkts) != 3 {
		t.Fatalf("captured %d packets, %d echo requests; want the 3 requests only (XDP sees received packets)", len(pkts), requests)
	}
	h, err := netlink.NewHandleAt(p.PeerNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByIndex(p.PeerIndex)
	if err != nil {
		t.Fatal(err)
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		t.Fatalf("XDP program %d left on %s", x.ProgId, p.PeerName)
	}

	// With an XDP program on the interface: where the kernel lets bpfcap
	// attach fexit to it, the capture shows the program's packets with
	// their verdicts; where it refuses, the error says how to instrument
	// the program and that fexit was refused.
	s := newXDPSetup(t, firewall.Options{})
	xdpDeviceOnProgram(t, s)
}

// xdpDeviceOnProgram runs `bpfcap xdp dev PEER 'udp port 53'` with the
// firewall on PEER.
func xdpDeviceOnProgram(t *testing.T, s *xdpSetup) {
	t.Helper()
	warmUp(t, s)
	out := filepath.Join(t.TempDir(), "fexit.pcapng")
	r := xdpStart(t, &s.PeerNS, "xdp", "dev", s.PeerName, "udp port 53", "-w", out)
	attached := false
	deadline := time.Now().Add(15 * time.Second)
wait:
	for time.Now().Before(deadline) {
		if _, err := os.Stat(out); err == nil {
			attached = true
			break
		}
		select {
		case err := <-r.done: // ended before attaching
			r.once.Do(func() { r.err = err })
			break wait
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !attached {
		runErr := r.stop(t)
		for _, want := range []string{"already has an XDP program", "(firewall)", "xdpcap_exit", "bpfcap xdp PIN", "capturing inside it with fentry/fexit: refused"} {
			if runErr == nil || !strings.Contains(runErr.Error(), want) {
				t.Fatalf("xdp dev on an interface with XDP: %v; want it to say %q\nstderr: %s", runErr, want, r.stderr)
			}
		}
		var msg bytes.Buffer
		if code := exitCode(runErr, &msg); code != 2 {
			t.Fatalf("exit status %d, want 2", code)
		}
		t.Logf("this kernel refuses fexit on XDP programs: %v", runErr)
		return
	}
	want := dnsTraffic(t, s, 2)
	if err := r.stop(t); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	if !strings.Contains(r.stderr.String(), "capturing its packets and verdicts with fexit") {
		t.Errorf("no notice about fexit on stderr:\n%s", r.stderr)
	}
	pkts, ifs := xdpReadPcapng(t, out)
	if len(ifs) != 1 || ifs[0].Name != "xdp:fexit:"+s.PeerName {
		t.Fatalf("interfaces = %+v", ifs)
	}
	if got := flows(t, pkts); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fexit captured %v, want %v", got, want)
	}
	t.Logf("fexit capture: %d packets with verdicts", len(pkts))
}
