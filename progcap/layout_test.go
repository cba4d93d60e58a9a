package progcap

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestRecordLayout: the offsets DecodeRecord and the config accessors read
// are those of bpf/bpfcap.h's structs, as compiled into an example program
// that includes it.
func TestRecordLayout(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec("../examples/progcap/xdprules_x86_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	testutils.CheckStructOffsets(t, spec.Types, "bpfcap_record", int(recordHeaderSize), map[string]int{
		"magic": 0, "version": 4, "link_type": 6, "wire_len": 8, "cap_len": 12, "id": 16, "ts": 24,
	})
	testutils.CheckStructOffsets(t, spec.Types, "bpfcap_output_config", int(configSize), map[string]int{
		"enabled": cfgEnabled, "snaplen": cfgSnaplen, "lost": cfgLost, "owner": cfgOwner,
	})
	// The generated declarations match the example's BTF as well as
	// the types-only object they come from.
	own, err := loadAbi()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*ebpf.CollectionSpec{spec, own} {
		testutils.CheckStructLayout(t, s.Types, "bpfcap_record", reflect.TypeFor[abiBpfcapRecord]())
		testutils.CheckStructLayout(t, s.Types, "bpfcap_output_config", reflect.TypeFor[abiBpfcapOutputConfig]())
	}
}

// TestDecodeGeneratedRecord decodes a record whose header binary.Write
// wrote from the generated struct and compares the result field by field.
func TestDecodeGeneratedRecord(t *testing.T) {
	want := abiBpfcapRecord{
		Magic:    RecordMagic,
		Version:  RecordVersion,
		LinkType: 228,
		WireLen:  1514,
		CapLen:   4,
		Id:       0x1122334455667788,
		Ts:       0x0102030405060708,
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, &want); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("abcdXYZ") // bytes past cap_len are not data
	var r Record
	if err := DecodeRecord(buf.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.LinkType != want.LinkType {
		t.Errorf("link_type %d, written %d", r.LinkType, want.LinkType)
	}
	if r.WireLen != want.WireLen {
		t.Errorf("wire_len %d, written %d", r.WireLen, want.WireLen)
	}
	if r.ID != want.Id {
		t.Errorf("id %#x, written %#x", r.ID, want.Id)
	}
	if r.Timestamp != want.Ts {
		t.Errorf("ts %#x, written %#x", r.Timestamp, want.Ts)
	}
	if string(r.Data) != "abcd" {
		t.Errorf("data %q, want the cap_len (4) bytes abcd", r.Data)
	}
	if n := testing.AllocsPerRun(100, func() { DecodeRecord(buf.Bytes(), &r) }); n != 0 {
		t.Errorf("DecodeRecord allocates %.0f times", n)
	}
}
