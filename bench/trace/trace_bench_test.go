package tracebench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/probe"
)

// packetsPerPhase is how many datagrams each phase sends.
const packetsPerPhase = 100_000

// progRun is a BPF program's run-time statistics over one phase: its
// average run time and how many times it ran.
type progRun struct {
	avg  time.Duration
	runs uint64
}

// capture runs a tracing source into a pcapng writer on io.Discard while
// send runs, and returns the source's counters after it drained and the
// probe program's run-time statistics in the kernel (BPF run-time
// statistics are on for the duration).
func capture(b *testing.B, opts probe.Options, send func()) (pcapng.InterfaceStats, progRun) {
	b.Helper()
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	src, err := probe.Open(opts)
	if err != nil {
		b.Fatalf("open %v: %v", opts.Hooks, err)
	}
	defer src.Close()
	prog := findProbeProgram(b)
	defer prog.Close()
	w, err := pcapng.NewWriter(io.Discard, pcapng.WriterOptions{Application: "bpfcap bench"})
	if err != nil {
		b.Fatal(err)
	}
	for _, ifc := range src.Interfaces() {
		if _, err := w.AddInterface(ifc); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, w) }()
	send()
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("run: %v", err)
	}
	var total pcapng.InterfaceStats
	for _, st := range src.Stats() {
		total.Seen += st.Seen
		total.Matched += st.Matched
		total.Captured += st.Captured
		total.Lost += st.Lost
	}
	ps, err := prog.Stats()
	if err != nil || ps.RunCount == 0 {
		b.Fatalf("probe program statistics: %+v, %v", ps, err)
	}
	return total, progRun{avg: ps.Runtime / time.Duration(ps.RunCount), runs: ps.RunCount}
}

// pairRun is one phase with the probe and an empty program attached
// together.
type pairRun struct{ probe, empty progRun }

// ratio is the probe's average run time over the empty program's.
func (p pairRun) ratio() float64 { return float64(p.probe.avg) / float64(p.empty.avg) }

// emptyProgramRun attaches a program that does nothing to the hook of
// spec (a tp_btf program for tp_btf:net_dev_xmit, a tracepoint program
// for tracepoint:net:net_dev_xmit) while send runs and returns its
// run-time statistics: the floor any program on that hook pays
// (statistics, entry). Called within capture's send, it runs on exactly
// the packets the probe program runs on.
func emptyProgramRun(b *testing.B, spec string, send func()) progRun {
	b.Helper()
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	ps := &ebpf.ProgramSpec{
		Type:         ebpf.TracePoint,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	}
	btf := strings.HasPrefix(spec, "tp_btf:")
	if btf {
		ps.Type, ps.AttachType, ps.AttachTo = ebpf.Tracing, ebpf.AttachTraceRawTp, "net_dev_xmit"
	}
	prog, err := ebpf.NewProgram(ps)
	if err != nil {
		b.Fatalf("load empty program: %v", err)
	}
	defer prog.Close()
	var l link.Link
	if btf {
		l, err = link.AttachTracing(link.TracingOptions{Program: prog})
	} else {
		l, err = link.Tracepoint("net", "net_dev_xmit", prog, nil)
	}
	if err != nil {
		b.Fatalf("attach empty program: %v", err)
	}
	send()
	l.Close()
	st, err := prog.Stats()
	if err != nil || st.RunCount == 0 {
		b.Fatalf("empty program statistics: %+v, %v", st, err)
	}
	return progRun{avg: st.Runtime / time.Duration(st.RunCount), runs: st.RunCount}
}

// findProbeProgram returns the loaded program of bpf/probe.c this
// process holds (other processes on the machine may run their own).
func findProbeProgram(b *testing.B) *ebpf.Program {
	b.Helper()
	progs := ownPrograms(b, func(name string) bool { return strings.HasPrefix(name, "probe_") })
	if len(progs) == 0 {
		b.Fatalf("this process holds no probe program")
	}
	for _, p := range progs[1:] {
		p.Close()
	}
	return progs[0]
}

// ownPrograms opens the BPF programs this process has file descriptors
// of whose names (as the kernel keeps them: 15 bytes) keep says to; the
// caller closes them.
func ownPrograms(b *testing.B, keep func(name string) bool) []*ebpf.Program {
	b.Helper()
	var progs []*ebpf.Program
	for _, id := range ownProgramIDs(b) {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if info, err := p.Info(); err == nil && keep(info.Name) {
			progs = append(progs, p)
			continue
		}
		p.Close()
	}
	return progs
}

// ownProgramIDs lists the ids of the BPF programs this process has file
// descriptors of (prog_id in /proc/self/fdinfo).
func ownProgramIDs(b *testing.B) []ebpf.ProgramID {
	b.Helper()
	fds, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		b.Fatalf("list own file descriptors: %v", err)
	}
	var ids []ebpf.ProgramID
	for _, fd := range fds {
		info, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
					ids = append(ids, ebpf.ProgramID(id))
				}
			}
		}
	}
	return ids
}

// tcpdumpCapture runs tcpdump on the host end of the pair while send runs
// and returns the packets it captured and the kernel dropped.
func tcpdumpCapture(b *testing.B, f *flooder, filter string, send func()) (captured, dropped uint64) {
	b.Helper()
	cmd := exec.Command("ip", "netns", "exec", f.pair.HostNSName, "tcpdump", "-n", "-i", f.pair.HostName, "-w", "/dev/null", filter)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("tcpdump: %v", err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out []string
	ready := false
	for !ready {
		select {
		case l, ok := <-lines:
			if !ok {
				b.Fatalf("tcpdump ended before listening: %v", out)
			}
			out = append(out, l)
			ready = strings.Contains(l, "listening on")
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			b.Fatalf("tcpdump not listening after 10 s: %v", out)
		}
	}
	send()
	cmd.Process.Signal(syscall.SIGINT)
	for l := range lines {
		out = append(out, l)
	}
	cmd.Wait()
	num := func(re string) uint64 {
		for _, l := range out {
			if m := regexp.MustCompile(re).FindStringSubmatch(l); m != nil {
				n, _ := strconv.ParseUint(m[1], 10, 64)
				return n
			}
		}
		b.Fatalf("tcpdump printed no %q: %v", re, out)
		return 0
	}
	return num(`^(\d+) packets? captured`), num(`^(\d+) packets? dropped by kernel`)
}

// BenchmarkTraceVethFlood floods UDP over a veth pair and, in one run,
// measures: the sender's time per packet with no hook and with
// tracepoint:net:net_dev_xmit attached with a filter that matches nothing
// (the cost the hook adds to the traced path), the probe program's run
// time against an empty program attached with it (the same packets),
// without and with packet tracking (nothing tracked), what bpfcap captures of
// the flood with a matching filter, and what tcpdump captures of the same
// flood on the same veth (the peer). Everything is reported as ratios.
//
//	go test -run '^$' -bench TraceVethFlood -benchtime 1x ./bench/trace/
func BenchmarkTraceVethFlood(b *testing.B) {
	testutils.RequireRoot(b)
	for _, spec := range []string{"tracepoint:net:net_dev_xmit", "tp_btf:net_dev_xmit"} {
		for _, size := range []int{64, 1000} {
			b.Run(fmt.Sprintf("%s/payload%d", strings.SplitN(spec, ":", 2)[0], size), func(b *testing.B) {
				floodBench(b, spec, size)
			})
		}
	}
}

// floodBench is one BenchmarkTraceVethFlood case: hook spec, payload size.
func floodBench(b *testing.B, spec string, size int) {
	f := newFlooder(b, size)
	f.send(b, 10_000) // warm up ARP, caches
	hook := []string{spec}
	match := fmt.Sprintf("udp dst port %d", floodPort)
	for range b.N {
		// Each measurement is the fastest of three rounds, with
		// the rounds interleaved, so that other load on the
		// machine inflates neither side of a ratio alone.
		best := func(d *time.Duration, v time.Duration) {
			if *d == 0 || v < *d {
				*d = v
			}
		}
		var noHook, hooked, flood, peerFlood time.Duration
		var got pcapng.InterfaceStats
		var tdCaptured, tdDropped uint64
		var progNoMatch, progCapture, progEmpty time.Duration
		var pairs, trackedPairs []pairRun
		for range 3 {
			best(&progEmpty, emptyProgramRun(b, spec, func() { f.send(b, packetsPerPhase/4) }).avg)
			best(&noHook, f.send(b, packetsPerPhase))

			noMatch := probe.Options{Hooks: hook, Proto: "eth"}
			noMatch.Filter = "udp dst port 1"
			none, run := capture(b, noMatch,
				func() { best(&hooked, f.send(b, packetsPerPhase)) })
			best(&progNoMatch, run.avg)
			if none.Captured != 0 {
				b.Fatalf("non-matching filter captured %d packets", none.Captured)
			}
			// The probe and an empty program attached together: both
			// run on the same packets, on the same CPUs, at the same
			// time, so other load on the machine weighs on both alike.
			var empty progRun
			none, run = capture(b, noMatch, func() {
				empty = emptyProgramRun(b, spec, func() { f.send(b, packetsPerPhase) })
			})
			if none.Captured != 0 {
				b.Fatalf("non-matching filter captured %d packets", none.Captured)
			}
			pairs = append(pairs, pairRun{probe: run, empty: empty})
			// The same with packet tracking on, as `trace all` and
			// hook patterns run by default: nothing gets tracked.
			tracked := noMatch
			tracked.Track = true
			none, run = capture(b, tracked, func() {
				empty = emptyProgramRun(b, spec, func() { f.send(b, packetsPerPhase) })
			})
			if none.Captured != 0 {
				b.Fatalf("non-matching filter captured %d packets with tracking", none.Captured)
			}
			trackedPairs = append(trackedPairs, pairRun{probe: run, empty: empty})

			var d time.Duration
			matching := probe.Options{Hooks: hook, Proto: "eth"}
			matching.Filter, matching.Snaplen = match, 128
			st, run := capture(b, matching,
				func() { d = f.send(b, packetsPerPhase) })
			best(&progCapture, run.avg)
			if flood == 0 || d < flood {
				flood, got = d, st
			}

			c, dr := tcpdumpCapture(b, f, match+" and ip", func() { d = f.send(b, packetsPerPhase) })
			if peerFlood == 0 || d < peerFlood {
				peerFlood, tdCaptured, tdDropped = d, c, dr
			}
		}

		perPkt := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / packetsPerPhase }
		bpfcapRate := float64(got.Captured) / flood.Seconds()
		peerRate := float64(tdCaptured) / peerFlood.Seconds()
		b.ReportMetric(perPkt(noHook), "ns/pkt-nohook")
		b.ReportMetric(perPkt(hooked), "ns/pkt-hooked-nomatch")
		b.ReportMetric(perPkt(hooked)/perPkt(noHook), "hook-cost-ratio")
		// The program's own time per packet, from the kernel's
		// BPF statistics: what the hook adds to the path, free of
		// the sender's noise.
		b.ReportMetric(float64(progNoMatch.Nanoseconds()), "prog-ns/pkt-nomatch")
		b.ReportMetric(float64(progCapture.Nanoseconds()), "prog-ns/pkt-capture")
		b.ReportMetric(float64(progNoMatch.Nanoseconds())/perPkt(noHook), "prog-nomatch/path")
		// The target's ratio: probe and empty program attached
		// together, the median of three rounds and the highest, with
		// how many times the probe ran per run of the empty program
		// (1: the same packets).
		slices.SortFunc(pairs, func(x, y pairRun) int { return cmp.Compare(x.ratio(), y.ratio()) })
		mid := pairs[len(pairs)/2]
		b.ReportMetric(mid.ratio(), "prog-nomatch/empty-prog")
		b.ReportMetric(pairs[len(pairs)-1].ratio(), "prog-nomatch/empty-prog-max")
		b.ReportMetric(float64(mid.empty.avg.Nanoseconds()), "prog-ns/pkt-empty")
		b.ReportMetric(float64(mid.probe.runs)/float64(mid.empty.runs), "prog-runs/empty-runs")
		slices.SortFunc(trackedPairs, func(x, y pairRun) int { return cmp.Compare(x.ratio(), y.ratio()) })
		b.ReportMetric(trackedPairs[len(trackedPairs)/2].ratio(), "prog-nomatch-tracking/empty-prog")
		// The same from separate phases (the empty program alone on a
		// quarter of the packets): other load weighs differently.
		b.ReportMetric(float64(progNoMatch.Nanoseconds())/float64(progEmpty.Nanoseconds()), "prog-nomatch/empty-prog-apart")
		b.ReportMetric(float64(got.Captured)/packetsPerPhase, "bpfcap-captured/sent")
		b.ReportMetric(float64(got.Lost)/packetsPerPhase, "bpfcap-lost/sent")
		b.ReportMetric(perPkt(flood)/perPkt(noHook), "sender-slowdown-capturing")
		b.ReportMetric(float64(tdCaptured)/packetsPerPhase, "tcpdump-captured/sent")
		b.ReportMetric(float64(tdDropped)/packetsPerPhase, "tcpdump-dropped/sent")
		b.ReportMetric(perPkt(peerFlood)/perPkt(noHook), "sender-slowdown-tcpdump")
		b.ReportMetric(bpfcapRate/peerRate, "bpfcap/tcpdump-captured-pps")
	}
}
