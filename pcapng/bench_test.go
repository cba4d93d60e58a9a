package pcapng

import (
	"io"
	"testing"
	"time"
)

// BenchmarkWritePacket measures the writer's cost per 64-byte packet with
// every option set (packet id, verdict, direction and a comment).
func BenchmarkWritePacket(b *testing.B) {
	w, err := NewWriter(io.Discard, WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.AddInterface(Interface{Name: "xdp:/sys/fs/bpf/hook", LinkType: LinkTypeEthernet}); err != nil {
		b.Fatal(err)
	}
	p := Packet{Timestamp: time.Now(), Data: udpFrame(22), WireLen: 64, Flags: HasPacketID | HasQueue, PacketID: 1,
		Direction: DirectionInbound, VerdictType: VerdictXDP, Verdict: 2, Device: "veth0"}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WritePacket(&p); err != nil {
			b.Fatal(err)
		}
	}
}
