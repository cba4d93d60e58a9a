package filter

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// fileBenchPackets is the size of BenchmarkFileRunner's capture file.
const fileBenchPackets = 60000

// fileBenchFilters are the expressions BenchmarkFileRunner times (no
// protochain: libpcap loops forever on some packets of the corpus).
var fileBenchFilters = []string{
	"tcp port 80",
	"host 10.0.0.1 and not port 22",
	"ip6 and tcp port 443",
	"vlan and udp",
}

// writeBenchPcap writes n varied Ethernet frames of the differential
// corpus to a pcap file.
func writeBenchPcap(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(maxSnaplen, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	t0 := time.Unix(1700000000, 0)
	for i, p := range ethernetCorpus(n) {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(p.data), Length: p.wireLen}
		if err := w.WritePacket(ci, p.data); err != nil {
			tb.Fatal(err)
		}
	}
}

// runFile decides every packet of path with a FileRunner, as `bpfcap
// filter -r` does, and returns how many matched.
func runFile(path, expr string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rd, err := NewFileReader(f, false)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	fr, err := NewFileRunner(expr, FileRunnerOptions{})
	if err != nil {
		return 0, err
	}
	defer fr.Close()
	for {
		_, err := fr.Next(context.Background(), rd)
		if errors.Is(err, io.EOF) {
			return fr.Stats().Matched, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// BenchmarkFileRunner compares, per packet, `bpfcap filter -r`'s engine
// (FileReader and FileRunner: read, decide, check in the kernel, from
// opening the file to closing the test bed) with `tcpdump -r FILE -w
// /dev/null EXPR` (a process: exec, compile, read, filter) on the same
// 60,000-packet pcap file, in the same run. Each iteration times both; the
// fastest of each is kept (the least noisy estimate on a shared machine).
// Metrics: bpfcap-ns/pkt, tcpdump-ns/pkt and bpfcap/tcpdump (the target is
// at most 1.0). Each iteration takes a few tenths of a second: run it with
// -benchtime=5x.
func BenchmarkFileRunner(b *testing.B) {
	testutils.RequireRoot(b)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		b.Fatalf("tcpdump is a dependency of the benchmarks: %v", err)
	}
	path := filepath.Join(b.TempDir(), "bench.pcap")
	writeBenchPcap(b, path, fileBenchPackets)
	for _, expr := range fileBenchFilters {
		b.Run(expr, func(b *testing.B) {
			ours, theirs := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
			for b.Loop() {
				start := time.Now()
				out, err := exec.Command("tcpdump", "-r", path, "-w", "/dev/null", "--", expr).CombinedOutput()
				if err != nil {
					b.Fatalf("tcpdump: %v\n%s", err, out)
				}
				theirs = min(theirs, time.Since(start))
				start = time.Now()
				if _, err := runFile(path, expr); err != nil {
					b.Fatal(err)
				}
				ours = min(ours, time.Since(start))
			}
			b.ReportMetric(float64(ours.Nanoseconds())/fileBenchPackets, "bpfcap-ns/pkt")
			b.ReportMetric(float64(theirs.Nanoseconds())/fileBenchPackets, "tcpdump-ns/pkt")
			b.ReportMetric(float64(ours)/float64(theirs), "bpfcap/tcpdump")
		})
	}
}
