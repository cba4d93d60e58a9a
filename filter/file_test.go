package filter

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// writeCorpusPcapng writes pkts to a pcapng file with one Ethernet
// interface.
func writeCorpusPcapng(t *testing.T, path string, pkts []testPacket) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "eth", LinkType: layers.LinkTypeEthernet, SnapLength: maxSnaplen}, pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)), CaptureLength: len(p.data), Length: max(p.wireLen, len(p.data))}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// fileMatches runs a FileRunner over path and returns the matching
// packets' bytes and the statistics.
func fileMatches(t *testing.T, path, expr string) ([][]byte, FileStats) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := NewFileReader(f, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	fr, err := NewFileRunner(expr, FileRunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	var out [][]byte
	for {
		p, err := fr.Next(context.Background(), rd)
		if errors.Is(err, io.EOF) {
			return out, fr.Stats()
		}
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		out = append(out, append([]byte(nil), p.Data...))
	}
}

// TestFileRunner: on the same 3000 packets in a pcap file (libpcap's
// filter in the reading loop) and in a pcapng file (Matcher), FileRunner
// keeps exactly the packets Matcher matches, counts them all, and runs the
// picked ones in the kernel with the same answer; protochain (a backward
// jump: Matcher in both) too.
func TestFileRunner(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	dir := t.TempDir()
	const n = 3000
	pkts := ethernetCorpus(n)
	pcapPath, ngPath := filepath.Join(dir, "c.pcap"), filepath.Join(dir, "c.pcapng")
	writeBenchPcap(t, pcapPath, n)
	writeCorpusPcapng(t, ngPath, pkts)
	// Packets 1..256, then every 1024th.
	picked := KernelCheckFirst + (n-KernelCheckFirst)/KernelCheckEvery
	for _, expr := range []string{"tcp port 80", "udp and len > 100", "ip6 protochain 6", "vlan and host 10.0.0.1", "not ip"} {
		prog, err := Compile(expr, LinkEthernet, maxSnaplen)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMatcher(prog)
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for _, p := range pkts {
			if m.Match(p.data, p.wireLen) {
				want = append(want, p.data)
			}
		}
		for _, path := range []string{pcapPath, ngPath} {
			got, st := fileMatches(t, path, expr)
			same := len(got) == len(want)
			for i := 0; same && i < len(got); i++ {
				same = bytes.Equal(got[i], want[i])
			}
			if !same {
				t.Errorf("%s %q: %d packets kept, Matcher matches %d (or their bytes differ)", filepath.Base(path), expr, len(got), len(want))
			}
			if st.Packets != n || st.Matched != len(want) || st.KernelChecked+st.KernelSkipped != picked || st.KernelChecked == 0 {
				t.Errorf("%s %q: stats %+v, want %d packets, %d matched, %d run in the kernel", filepath.Base(path), expr, st, n, len(want), picked)
			}
		}
	}
}

// TestFileRunnerKernelMismatch: a kernel program that answers otherwise
// than libpcap ends the run with a *KernelMismatchError naming the first
// packet it got wrong: the check is a real one.
func TestFileRunnerKernelMismatch(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "c.pcap")
	writeBenchPcap(t, path, 500)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := NewFileReader(f, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	fr, err := NewFileRunner("tcp", FileRunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	format, _ := rd.First()
	if err := fr.Prepare(format); err != nil {
		t.Fatal(err)
	}
	// The kernel runs "udp" where libpcap runs "tcp".
	wrong, err := Compile("udp", LinkEthernet, maxSnaplen)
	if err != nil {
		t.Fatal(err)
	}
	r, err := fr.tb.NewRunner(wrong)
	if err != nil {
		t.Fatal(err)
	}
	ff := fr.filters[format]
	ff.kernel.Close()
	ff.kernel = r

	tcp, err := Compile("tcp", LinkEthernet, maxSnaplen)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewMatcher(tcp)
	mu, _ := NewMatcher(wrong)
	first := 0
	for i, p := range ethernetCorpus(500) {
		if (m.Run(p.data, p.wireLen) != 0) != (mu.Run(p.data, p.wireLen) != 0) {
			first = i + 1
			break
		}
	}
	var mismatch *KernelMismatchError
	for {
		_, err = fr.Next(context.Background(), rd)
		if err != nil {
			break
		}
	}
	if !errors.As(err, &mismatch) || mismatch.Packet != first || first == 0 {
		t.Fatalf("Next: %v; want a *KernelMismatchError at packet %d", err, first)
	}
}
