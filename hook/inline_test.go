package hook

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// functionCalls counts the bpf-to-bpf calls in the instructions the
// kernel runs for prog.
func functionCalls(t *testing.T, prog *ebpf.Program) int {
	t.Helper()
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	insns, err := info.Instructions()
	if err != nil {
		t.Fatalf("read the loaded program's instructions: %v", err)
	}
	n := 0
	for _, ins := range insns {
		if ins.IsFunctionCall() {
			n++
		}
	}
	return n
}

// TestInlineFilter loads the filter inlined at the stub's call sites for
// both back ends: the loaded program must make no bpf-to-bpf call (the
// same program with the filter in its stub makes one) and capture exactly
// what the filter matches.
func TestInlineFilter(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, tc := range []struct {
		prog    string
		backend Backend
	}{{"capture_direct", Direct}, {"capture_scratch", Scratch}} {
		t.Run(tc.backend.String(), func(t *testing.T) {
			o := Options{Program: tc.prog, Backend: tc.backend, Hook: 3, Filter: "udp port 53"}
			_, stub := session(t, RingOptions{}, o)
			if !stub.KernelFilter || stub.Inlined {
				t.Fatalf("without InlineFilter: KernelFilter %v, Inlined %v (%s)", stub.KernelFilter, stub.Inlined, stub.Fallback)
			}
			if n := functionCalls(t, stub.Program); n == 0 {
				t.Fatal("the program with the filter in its stub makes no function call: the check below proves nothing")
			}

			var notices strings.Builder
			o.InlineFilter = true
			src, prog := session(t, RingOptions{Notices: &notices}, o)
			if !prog.KernelFilter || !prog.Inlined || prog.InlineErr != nil {
				t.Fatalf("KernelFilter %v, Inlined %v, InlineErr %v, fallback %q: want the filter inlined",
					prog.KernelFilter, prog.Inlined, prog.InlineErr, prog.Fallback)
			}
			if n := functionCalls(t, prog.Program); n != 0 {
				t.Errorf("inlined filter: the loaded program makes %d function calls, want 0", n)
			}
			runPackets(t, prog.Program, 5, frame(17, 53, 100), frame(6, 53, 100), frame(17, 54, 100), frame(17, 53, 1500))
			got := capture(t, src, 10)
			if len(got) != 10 {
				t.Fatalf("captured %d, want 10", len(got))
			}
			for _, p := range got {
				if p.Data[23] != 17 || binary.BigEndian.Uint16(p.Data[36:]) != 53 {
					t.Fatalf("captured a packet the filter rejects")
				}
			}
			st := src.Stats()[0]
			if st.Seen != 20 || st.Matched != 10 || st.Captured != 10 || st.UserFiltered != 0 {
				t.Errorf("stats %+v: want seen 20, matched 10, captured 10", st)
			}
			if notices.Len() != 0 {
				t.Errorf("unexpected notice %q", notices.String())
			}
		})
	}
}

// TestInlineFilterRefused: when the verifier refuses the program with the
// filter inlined, Load tries the filter in its stub and, refused again,
// filters in userspace, with one notice.
func TestInlineFilterRefused(t *testing.T) {
	testutils.RunsInGuests(t)
	var notices strings.Builder
	src, prog := session(t, RingOptions{Notices: &notices}, Options{Program: "capture_refused", Hook: 5, Filter: "udp port 53", InlineFilter: true})
	if prog.Inlined || prog.InlineErr == nil || !strings.Contains(prog.InlineErr.Error(), "filter inlined") {
		t.Errorf("Inlined %v, InlineErr %v: want the verifier's refusal of the inlined filter", prog.Inlined, prog.InlineErr)
	}
	if prog.KernelFilter || !strings.Contains(prog.Fallback, "verifier refused") {
		t.Fatalf("KernelFilter %v, fallback %q: want the verifier's refusal of the stub", prog.KernelFilter, prog.Fallback)
	}
	if n := strings.Count(notices.String(), "filtering in userspace"); n != 1 {
		t.Errorf("notice printed %d times: %q", n, notices.String())
	}
	runPackets(t, prog.Program, 3, frame(17, 53, 100), frame(6, 53, 100))
	got := capture(t, src, 3)
	if len(got) != 3 {
		t.Fatalf("captured %d, want 3", len(got))
	}
	if st := src.Stats()[0]; st.UserFiltered != 3 || st.Captured != 3 {
		t.Errorf("stats %+v: want 3 captured, 3 filtered in userspace", st)
	}
}
