package tracebench

import (
	"context"
	"io"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/probe"
)

// BenchmarkTraceAllFlood floods UDP over a veth pair with no hook and with
// `all` attached (every hook point this kernel lets bpfcap attach to) with
// a filter that matches nothing, and reports the flood's rate with `all`
// as a fraction of its rate without (traced/untraced-rate), from the same
// run; and against the peer of the same hooks with a program that does
// nothing attached to each (traced/empty-rate): what the hooks cost by
// themselves is the kernel's, the rest bpfcap's. BPF run-time statistics stay off: they would add their own cost to
// every hook. The attach figures of `all` are reported too.
//
//	go test -run '^$' -bench TraceAllFlood -benchtime 1x ./bench/trace/
func BenchmarkTraceAllFlood(b *testing.B) {
	testutils.RequireRoot(b)
	f := newFlooder(b, 64)
	f.send(b, 10_000) // warm up ARP, caches
	for range b.N {
		// `all` is attached once (hundreds of programs in a guest):
		// the fastest of three floods with it, against the fastest of
		// three without, before and after, so that other load on the
		// machine inflates neither side alone.
		var untraced, traced, emptied time.Duration
		best := func(d *time.Duration, v time.Duration) {
			if *d == 0 || v < *d {
				*d = v
			}
		}
		for range 2 {
			best(&untraced, f.send(b, packetsPerPhase))
		}
		var targets []*probe.Target
		report := traceAll(b, func() {
			for range 3 {
				best(&traced, f.send(b, packetsPerPhase))
			}
		}, func() { f.send(b, onPathCheck) }, &targets)
		best(&untraced, f.send(b, packetsPerPhase))
		detach := emptyHooks(b, targets)
		for range 3 {
			best(&emptied, f.send(b, packetsPerPhase))
		}
		detach()
		best(&untraced, f.send(b, packetsPerPhase))
		rate := func(d time.Duration) float64 { return packetsPerPhase / d.Seconds() }
		b.ReportMetric(rate(untraced), "pps-untraced")
		b.ReportMetric(rate(traced), "pps-traced-all")
		b.ReportMetric(rate(traced)/rate(untraced), "traced/untraced-rate")
		b.ReportMetric(rate(emptied), "pps-empty-all")
		b.ReportMetric(rate(emptied)/rate(untraced), "empty/untraced-rate")
		b.ReportMetric(rate(traced)/rate(emptied), "traced/empty-rate")
		b.ReportMetric(float64(report.Attached), "hooks")
		b.ReportMetric(float64(report.Programs), "programs")
		b.ReportMetric(report.Total.Seconds(), "attach-s")
	}
}

// benchAsTestEnv, set to 1, makes TestTraceAllFlood run the benchmark:
// the qemu guests run tests only (vmtest -env BPFCAP_BENCH_ALL=1).
const benchAsTestEnv = "BPFCAP_BENCH_ALL"

// TestTraceAllFlood runs BenchmarkTraceAllFlood once as a test, where
// benchmarks cannot be run, and logs its figures.
func TestTraceAllFlood(t *testing.T) {
	if os.Getenv(benchAsTestEnv) != "1" {
		t.Skipf("a benchmark: run it with -bench, or as a test with %s=1", benchAsTestEnv)
	}
	r := testing.Benchmark(BenchmarkTraceAllFlood)
	if r.N == 0 {
		t.Fatal("the benchmark failed")
	}
	var names []string
	for k := range r.Extra {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t.Logf("%s: %.4g", k, r.Extra[k])
	}
}

// onPathCheck is how many packets traceAll's check sends.
const onPathCheck = 10_000

// traceAll runs `all` as `bpfcap trace all` does by default (proto ip,
// packet tracking, the pattern-mode rate bound, the packets each hook sees
// not counted) with a filter that matches no packet of the flood, writing
// to io.Discard, while send runs; it fails if anything was captured, or if
// the capture programs did not run onPathCheck times while check sent as
// many packets (BPF run-time statistics on for that part only), and
// returns what was attached, and its targets in *targets.
func traceAll(b *testing.B, send, check func(), targets *[]*probe.Target) probe.AttachReport {
	b.Helper()
	opts := probe.Options{Hooks: []string{probe.All}, Proto: "ip", Track: true}
	opts.Filter = "udp dst port 1"
	opts.MaxRate = 10000
	src, err := probe.Open(opts)
	if err != nil {
		b.Fatalf("open all: %v", err)
	}
	defer src.Close()
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
	runs := captureRuns(b, check)
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("run: %v", err)
	}
	var captured uint64
	for _, st := range src.Stats() {
		captured += st.Captured
	}
	if captured != 0 {
		b.Fatalf("a filter that matches nothing captured %d packets", captured)
	}
	if runs < onPathCheck {
		b.Fatalf("the capture programs ran %d times for a flood of %d: `all` is not on its path", runs, onPathCheck)
	}
	*targets = src.Targets()
	return src.AttachReport()
}

// captureRuns returns how many times this process's capture programs
// (bpf/probe.c's, not tracking's own) ran while send ran, from BPF
// run-time statistics enabled for that time.
func captureRuns(b *testing.B, send func()) uint64 {
	b.Helper()
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	progs := ownPrograms(b, captureProgram)
	defer func() {
		for _, p := range progs {
			p.Close()
		}
	}()
	before := make([]uint64, len(progs))
	for i, p := range progs {
		st, err := p.Stats()
		if err != nil {
			b.Fatalf("program statistics: %v", err)
		}
		before[i] = st.RunCount
	}
	send()
	var runs uint64
	for i, p := range progs {
		st, err := p.Stats()
		if err != nil {
			b.Fatalf("program statistics: %v", err)
		}
		runs += st.RunCount - before[i]
	}
	return runs
}

// captureProgram says whether a program name (as the kernel keeps it: 15
// bytes) is one of bpf/probe.c's capture programs, not tracking's own.
func captureProgram(name string) bool {
	switch name {
	case "probe_kprobe", "probe_fentry", "probe_fexit", "probe_tp_btf", "probe_raw_tp", "probe_tracepoin":
		return true
	}
	return false
}
