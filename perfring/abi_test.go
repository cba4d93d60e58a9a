package perfring

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestEventABI checks the generated declaration of struct bpfcap_event
// and the decoded EventHeader against the BTF clang emitted for the
// struct: the same size, and each field at the C member's offset with
// its size.
func TestEventABI(t *testing.T) {
	spec, err := loadAbi()
	if err != nil {
		t.Fatal(err)
	}
	testutils.CheckStructLayout(t, spec.Types, "bpfcap_event", reflect.TypeFor[abiBpfcapEvent]())
	testutils.CheckStructLayout(t, spec.Types, "bpfcap_event", reflect.TypeFor[EventHeader]())
	if EventHeaderSize != binary.Size(abiBpfcapEvent{}) {
		t.Errorf("EventHeaderSize %d, binary.Size of the generated struct %d", EventHeaderSize, binary.Size(abiBpfcapEvent{}))
	}
}

// TestDecodeGeneratedEvent decodes a record whose header binary.Write
// wrote from the generated struct, with a distinct value in every field,
// and compares the result field by field.
func TestDecodeGeneratedEvent(t *testing.T) {
	want := abiBpfcapEvent{
		Ts:       0x0102030405060708,
		PacketId: 0xffff888000001234,
		Hook:     3,
		WireLen:  1500,
		CapLen:   5,
		Ifindex:  7,
		Netns:    4026531840,
		Mark:     0x2a,
		Pid:      4242,
		Reason:   77,
		Verdict:  -2,
		Queue:    9,
		Linktype: 276,
		Dir:      uint8(abiBpfcapDirBPFCAP_DIR_IN),
		Flags:    uint8(abiBpfcapEventFlagBPFCAP_EV_HAS_VERDICT | abiBpfcapEventFlagBPFCAP_EV_UNDECIDED),
		Pad:      0xa5a5a5a5,
	}
	for i, c := range "bpfcap-decoder" {
		want.Comm[i] = int8(c)
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, &want); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("hello")
	raw := buf.Bytes()

	var ev Event
	if err := Decode(raw, &ev); err != nil {
		t.Fatal(err)
	}
	h := ev.EventHeader
	fields := []struct {
		name      string
		got, want uint64
	}{
		{"ts", h.Timestamp, want.Ts},
		{"packet_id", h.PacketID, want.PacketId},
		{"hook", uint64(h.Hook), uint64(want.Hook)},
		{"wire_len", uint64(h.WireLen), uint64(want.WireLen)},
		{"cap_len", uint64(h.CapLen), uint64(want.CapLen)},
		{"ifindex", uint64(h.Ifindex), uint64(want.Ifindex)},
		{"netns", uint64(h.Netns), uint64(want.Netns)},
		{"mark", uint64(h.Mark), uint64(want.Mark)},
		{"pid", uint64(h.PID), uint64(want.Pid)},
		{"reason", uint64(h.Reason), uint64(want.Reason)},
		{"verdict", uint64(h.Verdict), uint64(want.Verdict)},
		{"queue", uint64(h.Queue), uint64(want.Queue)},
		{"linktype", uint64(h.LinkType), uint64(want.Linktype)},
		{"dir", uint64(h.Dir), uint64(want.Dir)},
		{"flags", uint64(h.Flags), uint64(want.Flags)},
		{"_pad", uint64(h.Pad), uint64(want.Pad)},
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("%s: decoded %#x, written %#x", f.name, f.got, f.want)
		}
	}
	for i := range h.Comm {
		if int8(h.Comm[i]) != want.Comm[i] {
			t.Errorf("comm[%d]: decoded %#x, written %#x", i, h.Comm[i], want.Comm[i])
		}
	}
	if h.CommString() != "bpfcap-decoder" {
		t.Errorf("comm %q, want bpfcap-decoder", h.CommString())
	}
	if h.Dir != DirIn || h.Flags != FlagHasVerdict|FlagUndecided {
		t.Errorf("dir %d flags %#x: the exported constants differ from the generated ones", h.Dir, h.Flags)
	}
	if string(ev.Data) != "hello" {
		t.Errorf("data %q, want hello", ev.Data)
	}
}
