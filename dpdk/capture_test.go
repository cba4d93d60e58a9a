//go:build dpdk

package dpdk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"

	"github.com/bpfcap/bpfcap/pcapng"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// The package's tests share one primary and one attachment: DPDK allows
// one EAL per process. TestMain starts dpdk-testpmd (or uses the one
// `make test-dpdk` started, named by BPFCAP_DPDK_PREFIX) sending UDP
// packets from 64 source addresses on a null port and a ring port.
var (
	sharedPrefix string
	sharedProc   *Process
	sharedErr    error
)

// Ports of the shared primary.
const (
	nullPort = "net_null0"
	ringPort = "net_ring0"
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// testpmd dies with the thread that started it (Pdeathsig): keep
	// that thread alive until the end.
	runtime.LockOSThread()
	var tp *testpmd
	if dpdkEnvProblem() == "" {
		sharedPrefix = os.Getenv("BPFCAP_DPDK_PREFIX")
		if sharedPrefix == "" {
			sharedPrefix = fmt.Sprintf("bpfcapt%d", os.Getpid())
			tp, sharedErr = startSharedTestpmd(sharedPrefix)
		}
		if sharedErr == nil {
			sharedProc, sharedErr = Attach(Config{FilePrefix: sharedPrefix})
		}
	}
	code := m.Run()
	testutils.RemoveBuiltBinaries()
	if sharedProc != nil {
		sharedProc.Close()
	}
	if tp != nil {
		tp.stop()
	}
	return code
}

// startSharedTestpmd starts the primary the package's tests share.
func startSharedTestpmd(prefix string) (*testpmd, error) {
	return startTestpmd(prefix, "txonly", []string{"--txonly-multi-flow"}, nullPort, ringPort)
}

func sharedProcess(tb testing.TB) *Process {
	tb.Helper()
	requireDPDKEnv(tb)
	if sharedErr != nil {
		tb.Fatalf("shared DPDK primary: %v", sharedErr)
	}
	return sharedProc
}

func TestPorts(t *testing.T) {
	p := sharedProcess(t)
	ports, err := p.Ports()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{nullPort: "net_null", ringPort: "net_ring"}
	for _, port := range ports {
		if drv, ok := want[port.Name]; ok {
			if port.Driver != drv {
				t.Errorf("port %s: driver %q, want %q", port.Name, port.Driver, drv)
			}
			if len(port.MAC) != 6 {
				t.Errorf("port %s: no MAC", port.Name)
			}
			delete(want, port.Name)
		}
	}
	if len(want) > 0 {
		t.Fatalf("ports %v missing from %+v", want, ports)
	}
	if _, err := FindPort(ports, "net_nosuch0"); !errors.Is(err, ErrNoPort) || !strings.Contains(err.Error(), nullPort) {
		t.Fatalf("FindPort(net_nosuch0) = %v, want ErrNoPort listing the ports", err)
	}
}

// captureFor runs one capture into a pcapng file until d passed or about
// stopAfter packets were written (then it stops the capture, which
// writes what is still in flight), with sink
// writing through the plain WritePacket path (raw=false) or the bulk
// path, and returns the file and the capture (closed).
func captureFor(t *testing.T, opts CaptureOptions, d time.Duration, mode sinkMode) (string, *Capture) {
	const stopAfter = 3000
	if opts.RingSize == 0 {
		opts.RingSize = 1024 // bounds what is in flight at the stop
	}
	t.Helper()
	p := sharedProcess(t)
	cp, err := p.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	dir := t.TempDir()
	if keep := os.Getenv("BPFCAP_DPDK_KEEP"); keep != "" {
		dir = keep // to look at the files afterwards
	}
	path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapng.NewWriter(f, pcapng.WriterOptions{Application: "bpfcap-test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range cp.Interfaces() {
		if _, err := w.AddInterface(ifc); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var sink pcapng.PacketWriter
	plain := plainSink{w: w, stopAfter: stopAfter, stop: cancel}
	switch mode {
	case packetSink:
		sink = &plain
	case blockSink:
		sink = &rawSink{plain}
	case refusingSink:
		sink = &noRawSink{plain}
	}
	start := time.Now()
	if err := cp.Run(ctx, sink); err != nil {
		t.Fatalf("run: %v", err)
	}
	end := time.Now()
	for i, st := range cp.Stats() {
		if err := w.WriteStats(i, start, end, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}
	return path, cp
}

// sinkMode picks the path packets take to the writer.
type sinkMode int

const (
	packetSink   sinkMode = iota // WritePacket only
	blockSink                    // the bulk path
	refusingSink                 // has the bulk method but refuses it
)

func (m sinkMode) String() string { return [...]string{"packets", "blocks", "refused-blocks"}[m] }

// noRawSink has WriteRawPackets but refuses it, as a session over a
// summary printer does.
type noRawSink struct{ plainSink }

func (s *noRawSink) WriteRawPackets(b []byte, n int) (int, error) { return 0, errors.ErrUnsupported }

// plainSink hides the writer's bulk path; it calls stop once it wrote
// stopAfter packets, and goes on writing.
type plainSink struct {
	w         *pcapng.Writer
	n         int
	stopAfter int
	stop      func()
}

func (s *plainSink) WritePacket(p *pcapng.Packet) error {
	s.count(1)
	return s.w.WritePacket(p)
}

func (s *plainSink) Flush() error { return s.w.Flush() }

func (s *plainSink) count(n int) {
	if s.n += n; s.n >= s.stopAfter {
		s.stop()
	}
}

// rawSink offers the bulk path, block by block through WriteRawBlock.
type rawSink struct{ plainSink }

func (s *rawSink) WriteRawPackets(b []byte, n int) (int, error) {
	s.count(n)
	for i := 0; i < n; i++ {
		blk, rest, err := pcapng.SplitBlock(b)
		if err != nil {
			return i, err
		}
		if err := s.w.WriteRawBlock(blk); err != nil {
			return i, err
		}
		b = rest
	}
	return n, nil
}

// readBack reads path with our reader: packets per interface, their
// timestamps' range, and the statistics blocks.
type readBack struct {
	ifaces     []pcapng.Interface
	perIf      map[int]int
	first, end time.Time
	stats      []pcapng.ReadStats
	dirs       map[pcapng.Direction]int
	queued     int
}

func readFile(t *testing.T, path string) readBack {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapng.NewReader(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	rb := readBack{perIf: map[int]int{}, dirs: map[pcapng.Direction]int{}}
	for {
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		rb.perIf[p.Interface]++
		rb.dirs[p.Direction]++
		if p.Flags&pcapng.HasQueue != 0 {
			rb.queued++
		}
		if rb.first.IsZero() || p.Timestamp.Before(rb.first) {
			rb.first = p.Timestamp
		}
		if p.Timestamp.After(rb.end) {
			rb.end = p.Timestamp
		}
	}
	rb.ifaces, rb.stats = rd.Interfaces(), rd.Stats()
	return rb
}

// tsharkCount returns how many packets tshark reads from path, and
// fails when tshark reports a problem with the file.
func tsharkCount(t *testing.T, path, display string) int {
	t.Helper()
	args := []string{"-r", path, "-T", "fields", "-e", "frame.number"}
	if display != "" {
		args = append(args, "-Y", display)
	}
	var stderr strings.Builder
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v: %s", args, err, stderr.String())
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return 0
	}
	return len(strings.Split(s, "\n"))
}

func checkTimes(t *testing.T, rb readBack) {
	t.Helper()
	now := time.Now()
	if rb.first.Before(now.Add(-time.Minute)) || rb.end.After(now.Add(time.Minute)) {
		t.Fatalf("packet timestamps %v .. %v not within a minute of now (%v)", rb.first, rb.end, now)
	}
}

// checkCounts: the file, our counters and pdump's must agree.
func checkCounts(t *testing.T, cp *Capture, rb readBack) {
	t.Helper()
	for i, ps := range cp.PortStats() {
		if uint64(rb.perIf[i]) != ps.Captured {
			t.Errorf("port %s: %d packets in the file, stats say %d captured", ps.Port, rb.perIf[i], ps.Captured)
		}
		// Every copy the primary made reached us or was lost to a full
		// ring (the capture was stopped and drained before reading).
		if ps.Accepted != ps.Captured+ps.RingFull {
			t.Errorf("port %s: accepted %d != captured %d + ringfull %d", ps.Port, ps.Accepted, ps.Captured, ps.RingFull)
		}
		if ps.NoMbuf > ps.Accepted/10 {
			t.Errorf("port %s: nombuf %d of accepted %d", ps.Port, ps.NoMbuf, ps.Accepted)
		}
	}
	if len(rb.stats) != len(cp.Interfaces()) {
		t.Fatalf("%d statistics blocks, want %d", len(rb.stats), len(cp.Interfaces()))
	}
	for _, rs := range rb.stats {
		if got := uint64(rb.perIf[rs.Interface]); rs.Stats.Captured != got {
			t.Errorf("ISB of interface %d: captured %d, file has %d", rs.Interface, rs.Stats.Captured, got)
		}
	}
}

func TestCaptureNoFilter(t *testing.T) {
	for _, mode := range []sinkMode{packetSink, blockSink, refusingSink} {
		t.Run(mode.String(), func(t *testing.T) {
			path, cp := captureFor(t, CaptureOptions{Ports: []string{nullPort, ringPort}, SnapLen: 128}, 700*time.Millisecond, mode)
			rb := readFile(t, path)
			if len(rb.ifaces) != 2 || rb.ifaces[0].Name != nullPort || rb.ifaces[1].Name != ringPort {
				t.Fatalf("interfaces %+v, want %s and %s", rb.ifaces, nullPort, ringPort)
			}
			if len(rb.ifaces[0].MAC) != 6 || !strings.Contains(rb.ifaces[0].Description, "net_null") {
				t.Errorf("interface 0 lacks MAC or driver: %+v", rb.ifaces[0])
			}
			if rb.perIf[0] == 0 || rb.perIf[1] == 0 {
				t.Fatalf("packets per interface %v: want some on both ports", rb.perIf)
			}
			total := rb.perIf[0] + rb.perIf[1]
			// txonly only transmits: every packet is outbound, with its queue.
			if rb.dirs[pcapng.DirectionOutbound] != total || rb.queued != total {
				t.Errorf("directions %v, %d with a queue, of %d packets", rb.dirs, rb.queued, total)
			}
			checkTimes(t, rb)
			checkCounts(t, cp, rb)
			if n := tsharkCount(t, path, ""); n != total {
				t.Fatalf("tshark reads %d packets, we wrote %d", n, total)
			}
			if n := tsharkCount(t, path, "udp.dstport == 9"); n != total {
				t.Fatalf("tshark sees %d UDP packets to port 9 of %d", n, total)
			}
			t.Logf("%d packets, stats %+v, notes %v", total, cp.PortStats(), cp.Notes())
		})
	}
}

func TestCaptureFilter(t *testing.T) {
	// txonly-multi-flow varies the source address over 198.18.x.3; the
	// filter keeps an eighth of them, in the primary.
	const expr = "udp and src net 198.18.0.0/19"
	path, cp := captureFor(t, CaptureOptions{Ports: []string{nullPort}, Filter: expr, Direction: TX}, 700*time.Millisecond, blockSink)
	rb := readFile(t, path)
	ps := cp.PortStats()[0]
	if ps.Filtered == 0 || ps.Accepted == 0 {
		t.Fatalf("stats %+v: want packets both accepted and filtered", ps)
	}
	if rb.ifaces[0].Filter != expr {
		t.Errorf("if_filter %q, want %q", rb.ifaces[0].Filter, expr)
	}
	checkTimes(t, rb)
	checkCounts(t, cp, rb)
	total := rb.perIf[0]
	if n := tsharkCount(t, path, "ip.src == 198.18.0.0/19"); n != total || n == 0 {
		t.Fatalf("tshark: %d of %d packets from 198.18.0.0/19", n, total)
	}
	// About an eighth of the packets match.
	if ps.Filtered < 4*ps.Accepted || ps.Filtered > 12*ps.Accepted {
		t.Errorf("accepted %d, filtered %d: want about 1 in 8 accepted", ps.Accepted, ps.Filtered)
	}
	if cp.FilterFallback() != "" {
		t.Errorf("filter fell back to userspace: %s", cp.FilterFallback())
	}
}

func TestCaptureFilterNothing(t *testing.T) {
	path, cp := captureFor(t, CaptureOptions{Ports: []string{ringPort}, Filter: "tcp"}, 400*time.Millisecond, blockSink)
	rb := readFile(t, path)
	ps := cp.PortStats()[0]
	if rb.perIf[0] != 0 || ps.Accepted != 0 || ps.Filtered == 0 {
		t.Fatalf("filter tcp on UDP traffic: %d packets written, stats %+v", rb.perIf[0], ps)
	}
	checkCounts(t, cp, rb)
}

func TestOpenErrors(t *testing.T) {
	p := sharedProcess(t)
	if _, err := p.Open(CaptureOptions{Ports: []string{"net_nosuch0"}}); !errors.Is(err, ErrNoPort) {
		t.Errorf("unknown port: %v, want ErrNoPort", err)
	}
	if _, err := p.Open(CaptureOptions{Ports: []string{nullPort}, Filter: "udp port"}); err == nil || !strings.Contains(err.Error(), "syntax") {
		t.Errorf("bad filter: %v, want libpcap's syntax error", err)
	}
	if _, err := Attach(Config{FilePrefix: sharedPrefix}); !errors.Is(err, ErrAttached) {
		t.Errorf("second Attach: %v, want ErrAttached", err)
	}
	if _, err := Attach(Config{FilePrefix: "bpfcap-none"}); !errors.Is(err, ErrNoPrimary) {
		t.Errorf("Attach to no primary: %v, want ErrNoPrimary", err)
	}
}

// BenchmarkCaptureSinks compares the two ways packets reach a pcapng
// file on /dev/shm: the bulk block path and one WritePacket per packet.
// It reports packets written per second of each and their ratio.
func BenchmarkCaptureSinks(b *testing.B) {
	p := sharedProcess(b)
	rate := func(mode sinkMode) float64 {
		cp, err := p.Open(CaptureOptions{Ports: []string{nullPort}, Direction: TX, SnapLen: 2176})
		if err != nil {
			b.Fatal(err)
		}
		defer cp.Close()
		f, err := os.CreateTemp("/dev/shm", "bpfcap-dpdk-bench")
		if err != nil {
			b.Fatal(err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		w, err := pcapng.NewWriter(f, pcapng.WriterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		w.AddInterface(cp.Interfaces()[0])
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		plain := plainSink{w: w, stopAfter: 1 << 62, stop: cancel}
		var sink pcapng.PacketWriter = &plain
		if mode == blockSink {
			sink = &rawSink{plain}
		}
		start := time.Now()
		if err := cp.Run(ctx, sink); err != nil {
			b.Fatal(err)
		}
		return float64(cp.PortStats()[0].Captured) / time.Since(start).Seconds()
	}
	var blocks, packets float64
	for b.Loop() {
		blocks += rate(blockSink)
		packets += rate(packetSink)
	}
	b.ReportMetric(blocks/float64(b.N), "block-pkts/s")
	b.ReportMetric(packets/float64(b.N), "packet-pkts/s")
	b.ReportMetric(blocks/packets, "blocks/packets")
}

// TestCaptureFilterFallback: a filter the primary cannot run (protochain's
// backward jump: DPDK's validator refuses loops) falls back to userspace
// with libpcap's semantics, like every other source: protochain runs, and
// `len` is the wire length even where the snap length is shorter. Each
// packet kept is one libpcap's own filter keeps on the same bytes and
// length.
func TestCaptureFilterFallback(t *testing.T) {
	const snap = 40 // shorter than testpmd's 64-byte frames
	for _, tc := range []struct {
		expr string
		want bool // the frames (IPv4 UDP, 64 bytes on the wire) match
	}{
		{"ip protochain 17 and len > 60", true}, // the captured length (40) is not > 60
		{"ip protochain 17 and len > 100", false},
		{"ip6 protochain 6", false},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			path, cp := captureFor(t, CaptureOptions{Ports: []string{nullPort}, Filter: tc.expr, SnapLen: snap, Direction: TX}, 500*time.Millisecond, blockSink)
			if cp.FilterFallback() == "" {
				t.Fatalf("the primary took %q: this test needs the userspace fallback", tc.expr)
			}
			rb := readFile(t, path)
			ps := cp.PortStats()[0]
			got := rb.perIf[0]
			switch {
			case tc.want && (got == 0 || ps.UserFiltered != 0):
				t.Fatalf("%d packets kept, %d filtered in userspace (stats %+v): want every packet kept", got, ps.UserFiltered, ps)
			case !tc.want && (got != 0 || ps.UserFiltered == 0):
				t.Fatalf("%d packets kept, %d filtered in userspace: want every packet filtered", got, ps.UserFiltered)
			}
			// Not checkCounts: unfiltered copies overflow the ring, so
			// the primary's counters are not exact here; ours are.
			if ps.Captured != uint64(got) {
				t.Errorf("stats say %d captured, the file has %d", ps.Captured, got)
			}
			libpcap, err := pcap.NewBPF(layers.LinkTypeEthernet, snap, tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			kept := libpcapKeeps(t, path, libpcap)
			if kept != got {
				t.Fatalf("libpcap keeps %d of the %d packets written", kept, got)
			}
			t.Logf("%s: %d kept, %d filtered in userspace (%s)", tc.expr, got, ps.UserFiltered, cp.FilterFallback())
		})
	}
}

// libpcapKeeps returns how many packets of the pcapng file at path
// libpcap's filter matches, on their captured bytes and wire length.
func libpcapKeeps(t *testing.T, path string, f *pcap.BPF) int {
	t.Helper()
	h, err := pcap.OpenOffline(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n := 0
	for {
		data, ci, err := h.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Matches(ci, data) {
			n++
		}
	}
}
