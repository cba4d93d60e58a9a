package pcapng

import (
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkWritePacket measures the writer's cost per 64-byte packet with
// every option set (packet id, verdict, direction and a comment naming the
// device and netns), and with the device and netns named once by the
// interface instead (a capture point on one device: no comment).
func BenchmarkWritePacket(b *testing.B) {
	for _, c := range []struct {
		name string
		ifc  Interface
	}{
		{"comment", Interface{Name: "xdp:/sys/fs/bpf/hook", LinkType: LinkTypeEthernet}},
		{"device-in-interface", Interface{Name: "xdp:/sys/fs/bpf/hook", LinkType: LinkTypeEthernet, Device: "veth0", Netns: 4026531840}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out countingDiscard
			w, err := NewWriter(&out, WriterOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := w.AddInterface(c.ifc); err != nil {
				b.Fatal(err)
			}
			p := Packet{Timestamp: time.Now(), Data: udpFrame(22), WireLen: 64, Flags: HasPacketID | HasQueue | HasNetns, PacketID: 1,
				Direction: DirectionInbound, VerdictType: VerdictXDP, Verdict: 2, Device: "veth0", Netns: 4026531840}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := w.WritePacket(&p); err != nil {
					b.Fatal(err)
				}
				n++
			}
			w.Flush()
			b.ReportMetric(float64(out)/float64(max(n, 1)), "B/pkt")
		})
	}
}

// countingDiscard counts the bytes written to it and keeps none.
type countingDiscard int64

func (c *countingDiscard) Write(p []byte) (int, error) {
	*c += countingDiscard(len(p))
	return len(p), nil
}

// BenchmarkOutputCopy compares the two ways of getting packets from the
// ring into a file: copying each block (header, packet, options) into a
// 64 KiB buffer and writing it (what Writer does), or writev with three
// pieces per packet (header, the packet where it lies, options), which
// saves the copy of the packet in userspace but costs iovec setup and
// keeps each ring record held until its writev returns. The file is on
// /dev/shm and rewritten in place every 32 MiB, so page allocation (which
// both pay alike) stays out of the figure.
func BenchmarkOutputCopy(b *testing.B) {
	for _, size := range []int{64, 1000} {
		pkt := make([]byte, size)
		hdr := make([]byte, 28)
		opts := make([]byte, 72) // comment, flags, packet id, end, trailer: as bpfcap writes
		block := len(hdr) + size + len(opts)
		run := func(b *testing.B, write func(f *os.File) int) {
			f, err := os.CreateTemp("/dev/shm", "bpfcap-copy-*")
			if err != nil {
				b.Fatal(err)
			}
			defer os.Remove(f.Name())
			defer f.Close()
			b.SetBytes(int64(block))
			written := 0
			for b.Loop() {
				written += write(f)
				if written >= 32<<20 {
					f.Seek(0, io.SeekStart)
					written = 0
				}
			}
		}
		b.Run(fmt.Sprintf("buffered/%dB", size), func(b *testing.B) {
			buf := make([]byte, 0, 64<<10)
			run(b, func(f *os.File) int {
				buf = append(append(append(buf, hdr...), pkt...), opts...)
				if len(buf) < cap(buf)-block {
					return 0
				}
				n, err := f.Write(buf)
				if err != nil {
					b.Fatal(err)
				}
				buf = buf[:0]
				return n
			})
		})
		b.Run(fmt.Sprintf("writev/%dB", size), func(b *testing.B) {
			const perCall = 1020 / 3 // IOV_MAX is 1024
			iov := make([][]byte, 0, 3*perCall)
			run(b, func(f *os.File) int {
				iov = append(iov, hdr, pkt, opts)
				if len(iov) < cap(iov) {
					return 0
				}
				n, err := unix.Writev(int(f.Fd()), iov)
				if err != nil {
					b.Fatal(err)
				}
				iov = iov[:0]
				return n
			})
		})
	}
}
