package pcapng

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// udpFrame returns an Ethernet/IPv4/UDP frame from 10.0.0.1:1234 to
// 10.0.0.2:53 with n payload bytes.
func udpFrame(n int) []byte {
	f := []byte{
		0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // eth
		0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // ipv4
		0x04, 0xd2, 0, 53, 0, 0, 0, 0, // udp
	}
	f = append(f, make([]byte, n)...)
	ipLen := len(f) - 14
	f[16], f[17] = byte(ipLen>>8), byte(ipLen)
	udpLen := ipLen - 20
	f[38], f[39] = byte(udpLen>>8), byte(udpLen)
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(f[i])<<8 | uint32(f[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	cs := ^uint16(sum)
	f[24], f[25] = byte(cs>>8), byte(cs)
	return f
}

func testInterfaces() []Interface {
	return []Interface{
		{Name: "xdp:/sys/fs/bpf/hook", Description: "XDP hook, action pass", LinkType: LinkTypeEthernet, SnapLen: 96, Filter: "udp port 53", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Speed: 10e9},
		{Name: "tp_btf:kfree_skb", LinkType: LinkTypeRaw},
	}
}

func testPackets(t0 time.Time) []Packet {
	frame := udpFrame(100)
	return []Packet{
		{Interface: 0, Timestamp: t0, Data: frame, WireLen: len(frame), Flags: HasPacketID | HasQueue | HasNetns, PacketID: 0xffff888012345678, Queue: 3,
			Direction: DirectionInbound, VerdictType: VerdictXDP, Verdict: 1, Device: "veth0", Netns: 4026531840},
		{Interface: 1, Timestamp: t0.Add(1500 * time.Nanosecond), Data: frame[14:], WireLen: len(frame) - 14, Flags: HasPacketID | HasPID | HasNetns | HasMark | HasDropCount,
			PacketID: 0xffff888012345678, DropReason: "NETFILTER_DROP", PID: 42, Comm: "ping", Netns: 4026531840, Mark: 0x2a, DropCount: 7,
			VerdictType: VerdictNone, Comment: "extra"},
		{Interface: 0, Timestamp: t0.Add(time.Second), Data: frame[:60], WireLen: 60, Direction: DirectionOutbound, VerdictType: VerdictTC, Verdict: 2},
	}
}

func writeTestFile(t *testing.T, w io.Writer, t0 time.Time) {
	t.Helper()
	pw, err := NewWriter(w, WriterOptions{Application: "bpfcap-test"})
	if err != nil {
		t.Fatal(err)
	}
	for i, ifc := range testInterfaces() {
		idx, err := pw.AddInterface(ifc)
		if err != nil || idx != i {
			t.Fatalf("AddInterface = %d, %v", idx, err)
		}
	}
	pkts := testPackets(t0)
	for i := range pkts {
		if err := pw.WritePacket(&pkts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.WriteStats(0, t0, t0.Add(2*time.Second), InterfaceStats{Seen: 10, SeenCounted: true, Matched: 5, Captured: 4, Lost: 1, Skipped: 2, UserFiltered: 3}); err != nil {
		t.Fatal(err)
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	t0 := time.Unix(1700000000, 123456789)
	writeTestFile(t, &buf, t0)

	rd, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Application() != "bpfcap-test" {
		t.Errorf("application %q", rd.Application())
	}
	want := testPackets(t0)
	got := readPackets(t, rd)
	if len(got) != len(want) {
		t.Fatalf("read %d packets, wrote %d", len(got), len(want))
	}
	ifs := rd.Interfaces()
	wantIfs := testInterfaces()
	if len(ifs) != 2 || ifs[0].Name != wantIfs[0].Name || ifs[0].Description != wantIfs[0].Description ||
		ifs[0].Filter != "udp port 53" || ifs[0].SnapLen != 96 || ifs[0].Speed != 10e9 || ifs[0].MAC.String() != "02:00:00:00:00:02" ||
		ifs[1].LinkType != LinkTypeRaw {
		t.Errorf("interfaces read back: %+v", ifs)
	}
	// Packet 0: truncated to the snap length 96, wire length kept.
	p := got[0]
	if !p.Timestamp.Equal(t0) || len(p.Data) != 96 || !bytes.Equal(p.Data, want[0].Data[:96]) || p.WireLen != len(want[0].Data) {
		t.Errorf("packet 0: ts %v len %d wire %d", p.Timestamp, len(p.Data), p.WireLen)
	}
	if p.PacketID != want[0].PacketID || p.Flags&HasPacketID == 0 || p.Queue != 3 || p.Flags&HasQueue == 0 ||
		p.Direction != DirectionInbound || p.VerdictType != VerdictXDP || p.Verdict != 1 {
		t.Errorf("packet 0 options: %+v", p)
	}
	// The hook is the interface's name, the verdict epb_verdict and the
	// direction epb_flags (checked above): the comment does not repeat them.
	if p.Hook != "xdp:/sys/fs/bpf/hook" {
		t.Errorf("packet 0 hook %q, want the interface's name", p.Hook)
	}
	if want := "dev=veth0 netns=4026531840"; p.Comment != want {
		t.Errorf("packet 0 comment\n got %q\nwant %q", p.Comment, want)
	}
	p = got[1]
	if !p.Timestamp.Equal(t0.Add(1500)) || p.VerdictType != VerdictNone || p.DropCount != 7 || p.Direction != DirectionUnknown {
		t.Errorf("packet 1: %+v", p)
	}
	if want := "reason=NETFILTER_DROP pid=42 comm=ping netns=4026531840 mark=0x2a extra"; p.Comment != want {
		t.Errorf("packet 1 comment\n got %q\nwant %q", p.Comment, want)
	}
	p = got[2]
	if p.VerdictType != VerdictTC || p.Verdict != 2 || p.Direction != DirectionOutbound || len(p.Data) != 60 {
		t.Errorf("packet 2: %+v", p)
	}
	// Nothing for a comment: none is written.
	if p.Comment != "" || p.Hook != "xdp:/sys/fs/bpf/hook" {
		t.Errorf("packet 2: comment %q, hook %q; want none and the interface's name", p.Comment, p.Hook)
	}
	st := rd.Stats()
	if len(st) != 1 || st[0].Stats != (InterfaceStats{Seen: 10, SeenCounted: true, Matched: 5, Captured: 4, Lost: 1, Skipped: 2}) ||
		st[0].Comment != "filtered in userspace: 3" || !st[0].Timestamp.Equal(t0.Add(2*time.Second)) {
		t.Errorf("stats: %+v", st)
	}
}

// A hook that does not count the packets it sees must not claim a figure:
// the ISB then has no isb_ifrecv, and a reader sees SeenCounted false.
func TestStatsWithoutSeen(t *testing.T) {
	var buf bytes.Buffer
	pw, err := NewWriter(&buf, WriterOptions{Application: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.AddInterface(Interface{Name: "tc:eth0:ingress", LinkType: LinkTypeEthernet, SnapLen: 128}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 0)
	if err := pw.WriteStats(0, t0, t0, InterfaceStats{Seen: 7, Matched: 3, Captured: 3}); err != nil {
		t.Fatal(err)
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := rd.Next(); err != nil {
			break
		}
	}
	st := rd.Stats()
	if len(st) != 1 || st[0].Stats != (InterfaceStats{Matched: 3, Captured: 3}) {
		t.Errorf("stats without seen: %+v, want no isb_ifrecv", st)
	}
}

func TestWritePacketAllocatesNothing(t *testing.T) {
	pw, err := NewWriter(io.Discard, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range testInterfaces() {
		if _, err := pw.AddInterface(ifc); err != nil {
			t.Fatal(err)
		}
	}
	pkts := testPackets(time.Now())
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range pkts {
			if err := pw.WritePacket(&pkts[i]); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("WritePacket allocates %.1f times per 3 packets, want 0", allocs)
	}
}

func TestWriteErrors(t *testing.T) {
	pw, err := NewWriter(io.Discard, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.WritePacket(&Packet{Interface: 0}); err == nil || !strings.Contains(err.Error(), "interface 0 not added") {
		t.Errorf("packet before interface: %v", err)
	}
	if err := pw.WriteRawBlock([]byte{1, 2, 3}); !errors.Is(err, ErrBadBlock) {
		t.Errorf("short raw block: %v", err)
	}
	// A raw EPB for an interface that exists is written as is.
	var buf bytes.Buffer
	pw, _ = NewWriter(&buf, WriterOptions{})
	pw.AddInterface(Interface{Name: "dpdk:0", LinkType: LinkTypeEthernet})
	var bb blockBuf
	bb.start(blockEPB)
	for _, v := range []uint32{0, 0, 1000, 4, 4} {
		bb.u32(v)
	}
	bb.bytes([]byte{1, 2, 3, 4})
	raw := append([]byte(nil), bb.finish(false)...)
	if err := pw.WriteRawBlock(raw); err != nil {
		t.Fatal(err)
	}
	le.PutUint32(raw[8:], 5)
	if err := pw.WriteRawBlock(raw); err == nil {
		t.Error("raw block for interface 5 accepted")
	}
	pw.Flush()
	rd, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rd.Next()
	if err != nil || !bytes.Equal(p.Data, []byte{1, 2, 3, 4}) {
		t.Fatalf("raw block read back: %v %v", p, err)
	}
}

// TestTsharkReads writes a file and checks what tshark (the Wireshark
// dissector) shows for it: the comment, the verdict, the packet id, the
// direction, the queue and the interface statistics.
func TestTsharkReads(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (scripts/deps.sh installs it)")
	}
	path := filepath.Join(t.TempDir(), "x.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, f, time.Unix(1700000000, 123456789))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tshark, "-r", path, "-T", "fields", "-E", "separator=|",
		"-e", "frame.comment", "-e", "frame.verdict.ebpf_xdp", "-e", "frame.verdict.ebpf_tc",
		"-e", "frame.packet_id", "-e", "frame.packet_flags_direction", "-e", "frame.interface_queue",
		"-e", "frame.drop_count", "-e", "frame.interface_name", "-e", "udp.dstport", "-e", "frame.time_epoch").Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderrOf(err))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("tshark:\n%s", out)
	if len(lines) != 3 {
		t.Fatalf("tshark shows %d packets, want 3", len(lines))
	}
	want := []string{
		"dev=veth0 netns=4026531840|1||18446612682375452280|0x00000001|3||xdp:/sys/fs/bpf/hook|53|1700000000.123456789",
		"reason=NETFILTER_DROP pid=42 comm=ping netns=4026531840 mark=0x2a extra|||18446612682375452280|||7|tp_btf:kfree_skb|53|1700000000.123458289",
		"||2||0x00000002|||xdp:/sys/fs/bpf/hook|53|1700000001.123456789",
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("tshark line %d\n got %s\nwant %s", i, lines[i], want[i])
		}
	}
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// TestWriteRawPacketsChecksBlocks: the bulk path writes all blocks or none,
// and refuses an interface that was never added or a cut-off block.
func TestWriteRawPacketsChecksBlocks(t *testing.T) {
	block := func(ifc uint32) []byte {
		b := make([]byte, 32)
		le.PutUint32(b[0:], blockEPB)
		le.PutUint32(b[4:], 32)
		le.PutUint32(b[8:], ifc)
		le.PutUint32(b[28:], 32)
		return b
	}
	var buf bytes.Buffer
	pw, err := NewWriter(&buf, WriterOptions{Application: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.AddInterface(Interface{Name: "dpdk:0", LinkType: LinkTypeEthernet}); err != nil {
		t.Fatal(err)
	}
	pw.Flush()
	before := buf.Len()
	if n, err := pw.WriteRawPackets(append(block(0), block(1)...), 2); n != 0 || !errors.Is(err, ErrBadBlock) {
		t.Errorf("a block on interface 1 of 1: wrote %d, %v; want 0 and ErrBadBlock", n, err)
	}
	if n, err := pw.WriteRawPackets(block(0)[:28], 1); n != 0 || !errors.Is(err, ErrBadBlock) {
		t.Errorf("a cut-off block: wrote %d, %v; want 0 and ErrBadBlock", n, err)
	}
	if n, err := pw.WriteRawPackets(append(block(0), block(0)...), 2); n != 2 || err != nil {
		t.Errorf("two good blocks: wrote %d, %v", n, err)
	}
	pw.Flush()
	if got := buf.Len() - before; got != 64 {
		t.Errorf("%d bytes written, want only the two good blocks (64)", got)
	}
}
