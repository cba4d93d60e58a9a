package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/pcapng"
)

func TestParseKeywords(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want captureOptions
		err  string
	}{
		{args: []string{"proto", "ip", "len", "128", "dev", "eth0", "pages", "64", "data_out", "/tmp/x", "tcp", "port", "80"},
			want: captureOptions{Proto: "ip", Snaplen: 128, Device: "eth0", Pages: 64, WriteFile: "/tmp/x", Filter: "tcp port 80"}},
		{args: []string{"len", ">", "100"}, want: captureOptions{Filter: "len > 100"}},
		{args: []string{"ip", "proto", "6"}, want: captureOptions{Filter: "ip proto 6"}},
		{args: []string{"udp", "port", "53", "and", "len", "100"}, want: captureOptions{Filter: "udp port 53 and len 100"}},
		{args: nil, want: captureOptions{}},
		{args: []string{"proto"}, err: `keyword "proto" needs a value`},
		{args: []string{"pages", "x"}, err: `pages "x": want a positive number`},
		{args: []string{"len", "0"}, err: `len "0": want a positive number`},
		{args: []string{"len", "100000"}, err: "at most 65536 bytes"},
	} {
		var o captureOptions
		err := o.parseKeywords(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(o, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.args, o, tc.want)
		}
	}
}

func TestRingOptionsFromFlags(t *testing.T) {
	o := captureOptions{BufferSize: 2048, Perf: true}
	if ro := o.ringOptions(nil); ro.Size != 2<<20 || !ro.Perf {
		t.Errorf("--buffer-size 2048 --perf: %+v", ro)
	}
	o = captureOptions{Pages: 16}
	if ro := o.ringOptions(nil); ro.Size < 16*os.Getpagesize() {
		t.Errorf("pages 16: size %d", ro.Size)
	}
}

// tickSource emits a 60-byte packet every interval until ctx is done, and
// flushes after each one, as a kernel source does per batch.
type tickSource struct {
	interval time.Duration
	sent     atomic.Uint64
	running  atomic.Bool
	closed   atomic.Int32
}

func (s *tickSource) Interfaces() []pcapng.Interface {
	return []pcapng.Interface{{Name: "fake:tick", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536}}
}

func (s *tickSource) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	s.running.Store(true)
	defer s.running.Store(false)
	data := make([]byte, 60)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.interval):
		}
		p := pcapng.Packet{Timestamp: time.Now(), Data: data, WireLen: 60, VerdictType: pcapng.VerdictNone}
		if err := sink.WritePacket(&p); err != nil {
			return err
		}
		s.sent.Add(1)
		if err := sink.Flush(); err != nil {
			return err
		}
	}
}

func (s *tickSource) Stats() []pcapng.InterfaceStats {
	n := s.sent.Load()
	return []pcapng.InterfaceStats{{Seen: n, SeenCounted: true, Matched: n, Captured: n}}
}

func (s *tickSource) Close() error { s.closed.Add(1); return nil }

// TestLivePipe reads our pcapng stdout through a pipe while the capture
// runs: packets must arrive one by one, not when the capture ends.
func TestLivePipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := &tickSource{interval: 20 * time.Millisecond}
	var stderr bytes.Buffer
	env := &cliEnv{stdout: w, stderr: &stderr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runCapture(ctx, env, &captureOptions{}, func(context.Context) (bpfcap.Source, error) { return src, nil })
		w.Close()
	}()

	rd, err := pcapng.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := rd.Next(); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !src.running.Load() {
			t.Fatalf("packet %d arrived after the capture stopped: output is not live", i)
		}
	}
	if ifs := rd.Interfaces(); len(ifs) != 1 || ifs[0].Name != "fake:tick" {
		t.Errorf("interfaces %+v", ifs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runCapture: %v", err)
	}
	n := 3
	for {
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after the end: %v", err)
		}
		n++
	}
	if st := rd.Stats(); len(st) != 1 || st[0].Stats.Captured != uint64(n) {
		t.Errorf("statistics %+v, want one block with %d captured", st, n)
	}
	if !strings.HasPrefix(stderr.String(), "bpfcap: capturing at fake:tick, link-type EN10MB (Ethernet), snapshot length 65536 bytes\n") {
		t.Errorf("no readiness line first on stderr: %q", stderr.String())
	}
	if !strings.Contains(stderr.String(), "packets written (interrupted)") {
		t.Errorf("no packet total on stderr: %q", stderr.String())
	}
	if !strings.Contains(stderr.String(), "fake:tick: seen ") {
		t.Errorf("no statistics on stderr: %q", stderr.String())
	}
	if src.closed.Load() == 0 {
		t.Error("source not closed")
	}
}

// TestClosedPipe: the reader going away ends the capture cleanly.
func TestClosedPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	src := &tickSource{interval: 5 * time.Millisecond}
	env := &cliEnv{stdout: w, stderr: io.Discard}
	done := make(chan error, 1)
	go func() {
		done <- runCapture(context.Background(), env, &captureOptions{}, func(context.Context) (bpfcap.Source, error) { return src, nil })
	}()
	rd, err := pcapng.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("closed pipe ended with %v, want a clean end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("capture still running 10s after its reader went away")
	}
}

// TestWriteFileCountAndDuration: -w FILE with -c ends with a complete file;
// a source that fails to open leaves an existing file untouched.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.pcapng")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := &cliEnv{stdout: io.Discard, stderr: io.Discard}
	err := runCapture(context.Background(), env, &captureOptions{WriteFile: path}, func(context.Context) (bpfcap.Source, error) {
		return nil, errors.New("attach kprobe:nope: no such function")
	})
	if err == nil {
		t.Fatal("open failure not reported")
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("a failed capture changed the existing file to %q", b)
	}

	src := &tickSource{interval: time.Millisecond}
	var stderr bytes.Buffer
	env = &cliEnv{stdout: io.Discard, stderr: &stderr}
	if err := runCapture(context.Background(), env, &captureOptions{WriteFile: path, Count: 5}, func(context.Context) (bpfcap.Source, error) { return src, nil }); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapng.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 || len(rd.Stats()) != 1 {
		t.Errorf("file has %d packets and %d statistics blocks, want 5 and 1", n, len(rd.Stats()))
	}

	start := time.Now()
	src = &tickSource{interval: time.Millisecond}
	if err := runCapture(context.Background(), env, &captureOptions{WriteFile: path, Duration: 100 * time.Millisecond}, func(context.Context) (bpfcap.Source, error) { return src, nil }); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 5*time.Second {
		t.Errorf("--duration 100ms took %v", el)
	}
}

// TestSummaryOutput: the summary printer writes one line per packet.
func TestSummaryPrinter(t *testing.T) {
	var out bytes.Buffer
	sp := newSummaryPrinter(&out, time.UTC)
	if _, err := sp.AddInterface(pcapng.Interface{Name: "x", LinkType: pcapng.LinkTypeEthernet}); err != nil {
		t.Fatal(err)
	}
	p := pcapng.Packet{Hook: "x", Data: make([]byte, 14), WireLen: 14, VerdictType: pcapng.VerdictNone}
	for range 3 {
		if err := sp.WritePacket(&p); err != nil {
			t.Fatal(err)
		}
	}
	sp.Flush()
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("%d lines, want 3:\n%s", n, out.String())
	}
}

func TestPrintStats(t *testing.T) {
	var b strings.Builder
	printStats(&b,
		[]pcapng.Interface{{Name: "tp_btf:kfree_skb", LinkType: pcapng.LinkTypeEthernet}, {Name: "tp_btf:kfree_skb", LinkType: pcapng.LinkTypeRaw}, {Name: "tc:eth0:ingress"}},
		[]pcapng.InterfaceStats{{Seen: 10, SeenCounted: true, Matched: 8, Captured: 5, Lost: 1, Skipped: 2}, {Captured: 2}, {Seen: 4, SeenCounted: true, Matched: 4, Captured: 3, Lost: 0, UserFiltered: 1}}, true)
	want := "tp_btf:kfree_skb: seen 10, matched 8, captured 7, lost 1, skipped 2\n" +
		"tc:eth0:ingress: seen 4, matched 4, captured 3, lost 0, filtered in userspace 1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	// A hook that does not count what it sees shows no "seen" figure.
	b.Reset()
	printStats(&b, []pcapng.Interface{{Name: "tc:eth0:egress"}}, []pcapng.InterfaceStats{{Matched: 2, Captured: 2}}, true)
	want = "tc:eth0:egress: matched 2, captured 2, lost 0\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestSummaryPrinterPacketID: with one hook lines carry no packet id (each
// line is another packet); with two hooks, or with -v, they do, so that
// the lines of one packet seen at both can be matched.
func TestSummaryPrinterPacketID(t *testing.T) {
	p := pcapng.Packet{Data: make([]byte, 14), WireLen: 14, VerdictType: pcapng.VerdictNone, Flags: pcapng.HasPacketID, PacketID: 0xabc}
	for _, c := range []struct {
		hooks   []string
		verbose bool
		want    bool
	}{
		{[]string{"tp_btf:kfree_skb"}, false, false},
		{[]string{"tp_btf:kfree_skb"}, true, true},
		{[]string{"tp_btf:net_dev_queue", "tp_btf:kfree_skb"}, false, true},
	} {
		var out bytes.Buffer
		sp := newSummaryPrinter(&out, time.UTC)
		sp.opts.Verbose = c.verbose
		for _, h := range c.hooks {
			if _, err := sp.AddInterface(pcapng.Interface{Name: h, LinkType: pcapng.LinkTypeEthernet}); err != nil {
				t.Fatal(err)
			}
		}
		if err := sp.WritePacket(&p); err != nil {
			t.Fatal(err)
		}
		sp.Flush()
		if got := strings.Contains(out.String(), " id 0xabc"); got != c.want {
			t.Errorf("hooks %v, -v %v: line %q; id shown %v, want %v", c.hooks, c.verbose, out.String(), got, c.want)
		}
	}
}
