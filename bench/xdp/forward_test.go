package xdpbench

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// forwardPort is the UDP port the firewall bounces (XDP_TX) in the
// forwarding benchmark; the capture filter (udp port 53) never matches it.
const forwardPort = 2000

// forwardSetup is a veth pair whose host end forwards: the firewall
// variants run there (in live-frames mode, or attached in place of the
// pass-through program for real traffic) and bounce every frame (XDP_TX)
// to the peer end, where an XDP program drops it.
type forwardSetup struct {
	*testutils.VethPair
	names    []string
	progs    []*ebpf.Program
	hostLink link.Link // the XDP link of the host end
}

// newForwardSetup loads the firewall four ways, each bouncing forwardPort:
// without a hook, with an empty hook, with a hook holding programs that
// only return their action (the cost of the xdpcap tail call itself), and
// with bpfcap's capture programs and a filter that does not match.
func newForwardSetup(tb testing.TB) *forwardSetup {
	tb.Helper()
	testutils.RequireRoot(tb)
	s := &forwardSetup{VethPair: testutils.NewVethPair(tb)}
	add := func(name string, opts firewall.Options) {
		fw, err := firewall.Load(opts)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { fw.Close() })
		if err := fw.SetRule(forwardPort, xdpcap.TX); err != nil {
			tb.Fatal(err)
		}
		s.names, s.progs = append(s.names, name), append(s.progs, fw.Program)
	}
	newHook := func() *xdpcap.Hook {
		pin := fmt.Sprintf("/sys/fs/bpf/bpfcap-bench-fwd-%d-%d", os.Getpid(), len(s.progs))
		os.Remove(pin)
		h, err := xdpcap.CreatePinned(pin)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { h.Close(); os.Remove(pin) })
		return h
	}
	add("nohook", firewall.Options{Layout: firewall.LayoutNoHook})
	add("empty", firewall.Options{Hook: newHook()})

	h := newHook()
	release, err := FillReturnOnly(h)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(release)
	add("tailcall", firewall.Options{Hook: h})

	h = newHook()
	add("filled", firewall.Options{Hook: h})
	c, err := xdpcap.OpenCapture(h.PinPath(), xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "udp port 53", Ring: hook.RingOptions{Size: 1 << 20}}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })

	attach := func(ns netns.NsHandle, ifindex int, action int32) link.Link {
		prog, err := xdpProg("bpfcap_fend", action)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { prog.Close() })
		var l link.Link
		err = testutils.Do(tb, ns, func() error {
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex})
			if err != nil {
				return err
			}
			tb.Cleanup(func() { l.Close() })
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		return l
	}
	// The receiving end drops in XDP (veth hands XDP_TX frames only to a
	// peer with XDP); the forwarding end keeps a pass-through program
	// attached so that the runs do not wait for RCU grace periods.
	attach(s.PeerNS, s.PeerIndex, 1)
	s.hostLink = attach(s.HostNS, s.HostIndex, 2)
	return s
}

// run forwards n frames through prog on the host end and returns the
// kernel's time per frame.
func (s *forwardSetup) run(tb testing.TB, prog *ebpf.Program, frame []byte, n uint32) time.Duration {
	tb.Helper()
	var d time.Duration
	err := testutils.Do(tb, s.HostNS, func() error {
		return onCPU(runtime.NumCPU()-1, func() error {
			var err error
			d, err = LiveRun(prog, frame, s.HostIndex, n, 64)
			return err
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// TestForwardSetupForwards checks the forwarding benchmark's premise with
// real packets, so that it holds where live frames are refused: attached
// to the host end in turn, every variant bounces (XDP_TX) the UDP
// datagrams the peer end sends it to forwardPort back to the peer end, and
// the capture programs in the filled hook do not change that. The peer's
// XDP program drops what comes back, so its rx counter counts them.
func TestForwardSetupForwards(t *testing.T) {
	testutils.RunsInGuests(t)
	s := newForwardSetup(t)
	// The peer end drops everything in XDP, ARP replies included: it
	// knows the host end's MAC without asking.
	s.KnowNeighbours(t)
	const n = 256
	for i, prog := range s.progs {
		if err := s.hostLink.Update(prog); err != nil {
			t.Fatalf("%s: attach to the host end: %v", s.names[i], err)
		}
		before := peerRx(t, s.VethPair)
		err := testutils.Do(t, s.PeerNS, func() error {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: s.PeerIP})
			if err != nil {
				return err
			}
			defer c.Close()
			for j := 0; j < n; j++ {
				if _, err := c.WriteToUDP(make([]byte, 16), &net.UDPAddr{IP: s.HostIP, Port: forwardPort}); err != nil {
					return fmt.Errorf("send datagram %d: %w", j, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", s.names[i], err)
		}
		testutils.WaitFor(t, fmt.Sprintf("%s: %d datagrams bounced back to the peer", s.names[i], n), 5*time.Second, func() bool {
			return peerRx(t, s.VethPair)-before >= n
		})
	}
}

// TestForwardLiveRun checks what BenchmarkXDPForwardCost relies on beyond
// that: in a live-frames run every variant bounces the kernel-built frames
// out of the host end to the peer end. It needs live frames (Linux 5.18,
// and no policy refusing them).
func TestForwardLiveRun(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	kconfig.SkipOrFailFeature(t, ProbeLiveFrames(), LiveFramesFeature, LiveFramesMinLinux)
	s := newForwardSetup(t)
	frame := udpFrame(nil, forwardPort)
	const n = 4096
	for i, prog := range s.progs {
		before := peerRx(t, s.VethPair)
		s.run(t, prog, frame, n)
		testutils.WaitFor(t, fmt.Sprintf("%s: %d frames forwarded to the peer", s.names[i], n), 5*time.Second, func() bool {
			return peerRx(t, s.VethPair)-before >= n
		})
	}
}

// BenchmarkXDPForwardCost measures the hook's cost where it matters: the
// example firewall forwarding frames (XDP_TX out of a veth, live frames:
// the kernel builds each frame, runs the program and transmits), with the
// hook empty, with a tail call that only returns, and with bpfcap
// capturing through a filter that does not match. Rounds interleave the
// variants; each variant's time per frame is divided by the no-hook
// firewall's in the same round and the median ratio is reported (DESIGN
// target: filled < 1.05).
//
// It needs live frames (the kernel's own time per frame) and skips with
// the reason kconfig.SkipOrFailFeature classifies where they are refused
// or missing: a generator of real traffic (the AF_PACKET TX ring) costs
// microseconds per frame on this 2-vCPU machine shared with other work,
// and the hook's few nanoseconds drown in that and in its noise.
// BenchmarkXDPHookCost still measures the hook's cost per program run.
func BenchmarkXDPForwardCost(b *testing.B) {
	testutils.RequireRoot(b)
	kconfig.SkipOrFailFeature(b, ProbeLiveFrames(), LiveFramesFeature, LiveFramesMinLinux)
	s := newForwardSetup(b)
	frame := udpFrame(nil, forwardPort)
	const rounds, n = 31, 1 << 18
	ratios := make([][]float64, len(s.progs))
	per := make([][]time.Duration, len(s.progs))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			var base time.Duration
			for j, prog := range s.progs {
				d := s.run(b, prog, frame, n)
				if j == 0 {
					base = d
				}
				ratios[j] = append(ratios[j], float64(d)/float64(base))
				per[j] = append(per[j], d)
			}
		}
	}
	b.StopTimer()
	for j, name := range s.names {
		sort.Float64s(ratios[j])
		sort.Slice(per[j], func(x, y int) bool { return per[j][x] < per[j][y] })
		if j > 0 {
			q := ratios[j]
			b.ReportMetric(q[len(q)/2], name+"/nohook")
			b.Logf("%s/nohook: median %.3f (quartiles %.3f..%.3f)", name, q[len(q)/2], q[len(q)/4], q[3*len(q)/4])
		}
		b.Logf("%s: median %v per forwarded frame", name, per[j][len(per[j])/2])
	}
}
