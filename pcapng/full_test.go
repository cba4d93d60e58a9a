package pcapng

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

// fullFile is an output that takes at most limit bytes, failing the write
// that crosses it with ENOSPC after taking what fits (as a full disk
// does), and can be truncated and seeked like a file.
type fullFile struct {
	b     []byte
	pos   int
	limit int
}

func (f *fullFile) Write(p []byte) (int, error) {
	n := len(p)
	if f.pos+n > f.limit {
		n = max(f.limit-f.pos, 0)
	}
	if need := f.pos + n; need > len(f.b) {
		f.b = append(f.b, make([]byte, need-len(f.b))...)
	}
	copy(f.b[f.pos:], p[:n])
	f.pos += n
	if n < len(p) {
		return n, &writeErr{syscall.ENOSPC}
	}
	return n, nil
}

type writeErr struct{ errno syscall.Errno }

func (e *writeErr) Error() string { return "write: " + e.errno.Error() }
func (e *writeErr) Unwrap() error { return e.errno }

func (f *fullFile) Truncate(size int64) error {
	if int(size) < len(f.b) {
		f.b = f.b[:size]
	}
	return nil
}

func (f *fullFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		f.pos = int(off)
	case io.SeekCurrent:
		f.pos += int(off)
	}
	return int64(f.pos), nil
}

// TestFullDisk: a write that fails part-way leaves the output at a whole
// block (the partial one is cut off), room is kept for the statistics,
// and Unwritten plus the packets the file holds add up to every packet
// accepted. The statistics' captured count is what the file holds.
func TestFullDisk(t *testing.T) {
	for _, limit := range []int{3000, 20000, 70001, 200003} {
		f := &fullFile{limit: limit}
		w, err := NewWriter(f, WriterOptions{Application: "test", BufferSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if _, err := w.AddInterface(Interface{Name: "if", LinkType: LinkTypeEthernet, SnapLen: 65536}); err != nil {
				t.Fatal(err)
			}
		}
		var accepted uint64
		var werr error
		data := make([]byte, 333)
		for i := 0; i < 2000; i++ {
			werr = w.WritePacket(&Packet{Interface: i % 2, Timestamp: time.Unix(1, 0), Data: data, WireLen: 333})
			if werr != nil {
				break
			}
			accepted++
		}
		if werr == nil {
			werr = w.Flush()
		}
		if !errors.Is(werr, syscall.ENOSPC) {
			t.Fatalf("limit %d: write error %v, want ENOSPC", limit, werr)
		}
		if err := w.Resume(); err != nil {
			t.Fatalf("limit %d: resume: %v", limit, err)
		}
		for i := 0; i < 2; i++ {
			if err := w.WriteStats(i, time.Unix(1, 0), time.Unix(2, 0), InterfaceStats{Captured: accepted / 2, Matched: accepted / 2}); err != nil {
				t.Fatalf("limit %d: stats: %v", limit, err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatalf("limit %d: the statistics did not fit in the room kept: %v", limit, err)
		}
		rd, err := NewReader(&readerOf{b: f.b})
		if err != nil {
			t.Fatal(err)
		}
		var got uint64
		for {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("limit %d: file unreadable after %d packets: %v", limit, got, err)
			}
			got++
		}
		if got+w.Unwritten() != accepted {
			t.Errorf("limit %d: file holds %d, unwritten %d, accepted %d", limit, got, w.Unwritten(), accepted)
		}
		st := rd.Stats()
		if len(st) != 2 {
			t.Fatalf("limit %d: %d statistics blocks, want 2", limit, len(st))
		}
		if held := st[0].Stats.Captured + st[1].Stats.Captured; held != got {
			t.Errorf("limit %d: statistics say %d captured, the file holds %d", limit, held, got)
		}
	}
}

type readerOf struct{ b []byte }

func (r *readerOf) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
