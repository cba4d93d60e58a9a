package bpfcap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// fakeSource emits one packet every interval until ctx is done, or until
// limit packets when limit > 0; fail makes Run return that error instead.
type fakeSource struct {
	name     string
	interval time.Duration
	limit    int
	fail     error
	sent     atomic.Uint64
	closed   atomic.Bool
	detached atomic.Bool
}

func (f *fakeSource) Interfaces() []pcapng.Interface {
	return []pcapng.Interface{{Name: f.name, LinkType: pcapng.LinkTypeEthernet}}
}

func (f *fakeSource) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	defer f.detached.Store(true)
	if f.fail != nil {
		return f.fail
	}
	data := make([]byte, 60)
	for i := 0; f.limit == 0 || i < f.limit; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.interval):
		}
		p := pcapng.Packet{Timestamp: time.Now(), Data: data, WireLen: 60, VerdictType: pcapng.VerdictNone}
		if err := sink.WritePacket(&p); err != nil {
			return fmt.Errorf("fake: %w", err)
		}
		f.sent.Add(1)
		if err := sink.Flush(); err != nil {
			return fmt.Errorf("fake: %w", err)
		}
	}
	return nil
}

func (f *fakeSource) Stats() []pcapng.InterfaceStats {
	n := f.sent.Load()
	return []pcapng.InterfaceStats{{Seen: n, SeenCounted: true, Matched: n, Captured: n}}
}

func (f *fakeSource) Close() error { f.closed.Store(true); return nil }

func newFileSink(t *testing.T, w io.Writer) *pcapng.Writer {
	t.Helper()
	pw, err := pcapng.NewWriter(w, pcapng.WriterOptions{Application: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

// readAll reads a whole pcapng stream and returns the packet count, the
// interfaces and the statistics blocks.
func readAll(t *testing.T, b []byte) (int, []pcapng.Interface, []pcapng.ReadStats) {
	t.Helper()
	rd, err := pcapng.NewReader(bytes.NewReader(b))
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
			t.Fatalf("read back: %v", err)
		}
		n++
	}
	return n, rd.Interfaces(), rd.Stats()
}

func TestRunCount(t *testing.T) {
	var buf bytes.Buffer
	a := &fakeSource{name: "a", interval: time.Millisecond}
	b := &fakeSource{name: "b", interval: time.Millisecond}
	res, err := Run(context.Background(), newFileSink(t, &buf), []Source{a, b}, Options{Count: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != StopCount || res.Written != 7 {
		t.Errorf("result %+v, want 7 packets and reason count", res)
	}
	n, ifs, st := readAll(t, buf.Bytes())
	if n != 7 || len(ifs) != 2 || ifs[1].Name != "b" || len(st) != 2 {
		t.Errorf("file: %d packets, %d interfaces, %d stats blocks; want 7, 2, 2", n, len(ifs), len(st))
	}
	if !a.detached.Load() || !b.detached.Load() {
		t.Error("a source was still running after Run returned")
	}
}

func TestRunDurationAndCancel(t *testing.T) {
	var buf bytes.Buffer
	start := time.Now()
	res, err := Run(context.Background(), newFileSink(t, &buf), []Source{&fakeSource{name: "a", interval: 5 * time.Millisecond}}, Options{Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); res.Reason != StopDuration || el < 200*time.Millisecond || el > 5*time.Second {
		t.Errorf("reason %s after %v, want duration after 200ms", res.Reason, el)
	}
	n, _, st := readAll(t, buf.Bytes())
	if n == 0 || uint64(n) != res.Written || len(st) != 1 || st[0].Stats.Captured != uint64(n) {
		t.Errorf("file has %d packets (written %d), stats %+v", n, res.Written, st)
	}

	buf.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	res, err = Run(ctx, newFileSink(t, &buf), []Source{&fakeSource{name: "a", interval: 5 * time.Millisecond}}, Options{})
	if err != nil || res.Reason != StopCancelled {
		t.Errorf("cancelled: %v, reason %s", err, res.Reason)
	}
	if _, _, st := readAll(t, buf.Bytes()); len(st) != 1 {
		t.Error("cancelled session wrote no statistics block")
	}
}

// epipeWriter accepts limit bytes, then fails like a pipe whose reader
// went away.
type epipeWriter struct {
	limit int
	n     int
}

func (w *epipeWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		return 0, &writeErr{syscall.EPIPE}
	}
	w.n += len(p)
	return len(p), nil
}

type writeErr struct{ errno syscall.Errno }

func (e *writeErr) Error() string { return "write |1: " + e.errno.Error() }
func (e *writeErr) Unwrap() error { return e.errno }

func TestRunClosedPipe(t *testing.T) {
	w := &epipeWriter{limit: 2000}
	res, err := Run(context.Background(), newFileSink(t, w), []Source{&fakeSource{name: "a", interval: time.Millisecond}}, Options{})
	if err != nil {
		t.Fatalf("closed pipe is an error: %v", err)
	}
	if res.Reason != StopSinkClose {
		t.Errorf("reason %s, want %s", res.Reason, StopSinkClose)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestRunErrors(t *testing.T) {
	_, err := Run(context.Background(), newFileSink(t, &failWriter{after: 2}), []Source{&fakeSource{name: "a", interval: time.Millisecond}}, Options{})
	if err == nil || !errors.Is(err, err) || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Errorf("sink error: %v, want disk full", err)
	}
	var buf bytes.Buffer
	boom := errors.New("boom")
	ok := &fakeSource{name: "ok", interval: time.Millisecond}
	res, err := Run(context.Background(), newFileSink(t, &buf), []Source{&fakeSource{name: "bad", fail: boom}, ok}, Options{Duration: 5 * time.Second})
	if !errors.Is(err, boom) || res.Reason != StopError {
		t.Errorf("source error: %v reason %s", err, res.Reason)
	}
	if _, _, st := readAll(t, buf.Bytes()); len(st) != 2 {
		t.Error("file not finished after a source error")
	}
}

// rawSource writes encoded Enhanced Packet Blocks in batches through the
// sink's bulk path, as the DPDK source does.
type rawSource struct {
	batch int
}

func (r *rawSource) Interfaces() []pcapng.Interface {
	return []pcapng.Interface{{Name: "raw", LinkType: pcapng.LinkTypeEthernet}}
}

// epb encodes one Enhanced Packet Block on interface 0 with 60 bytes of
// data whose first byte is seq.
func epb(seq byte) []byte {
	b := make([]byte, 92)
	binary.LittleEndian.PutUint32(b[0:], 6) // EPB
	binary.LittleEndian.PutUint32(b[4:], 92)
	binary.LittleEndian.PutUint32(b[20:], 60) // captured
	binary.LittleEndian.PutUint32(b[24:], 60) // original
	b[28] = seq
	binary.LittleEndian.PutUint32(b[88:], 92)
	return b
}

func (r *rawSource) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	rw, ok := sink.(pcapng.RawPacketWriter)
	if !ok {
		return errors.New("raw source: the session's sink has no bulk path")
	}
	for seq := 0; ctx.Err() == nil; {
		var b []byte
		for i := 0; i < r.batch; i++ {
			b = append(b, epb(byte(seq))...)
			seq++
		}
		if _, err := rw.WriteRawPackets(b, r.batch); err != nil {
			return fmt.Errorf("raw source: %w", err)
		}
		if err := sink.Flush(); err != nil {
			return fmt.Errorf("raw source: %w", err)
		}
	}
	return nil
}

func (r *rawSource) Stats() []pcapng.InterfaceStats { return make([]pcapng.InterfaceStats, 1) }
func (r *rawSource) Close() error                   { return nil }

// TestRunRawPackets: blocks written in bulk land on the source's own
// interface (its IDs moved by the interfaces before it), and -c cuts a
// batch in the middle.
func TestRunRawPackets(t *testing.T) {
	var buf bytes.Buffer
	idle := &fakeSource{name: "idle", interval: time.Hour}
	res, err := Run(context.Background(), newFileSink(t, &buf), []Source{idle, &rawSource{batch: 5}}, Options{Count: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != StopCount || res.Written != 7 {
		t.Errorf("result %+v, want 7 packets and reason count", res)
	}
	rd, err := pcapng.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			if i != 7 {
				t.Fatalf("%d packets in the file, want 7", i)
			}
			break
		}
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if p.Interface != 1 || len(p.Data) != 60 || p.Data[0] != byte(i) {
			t.Fatalf("packet %d: interface %d, %d bytes, first byte %d; want interface 1, 60 bytes, %d", i, p.Interface, len(p.Data), p.Data[0], i)
		}
	}
}
