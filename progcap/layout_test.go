package progcap

import (
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
	testutils.CheckStructOffsets(t, spec.Types, "bpfcap_record", recordHeaderSize, map[string]int{
		"magic": 0, "version": 4, "link_type": 6, "wire_len": 8, "cap_len": 12, "id": 16, "ts": 24,
	})
	testutils.CheckStructOffsets(t, spec.Types, "bpfcap_output_config", configSize, map[string]int{
		"enabled": cfgEnabled, "snaplen": cfgSnaplen, "lost": cfgLost, "owner": cfgOwner,
	})
}
