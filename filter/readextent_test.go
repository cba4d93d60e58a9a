package filter

import (
	"testing"

	"golang.org/x/net/bpf"
)

// TestReadExtent checks the bytes libpcap's programs read, from their
// tcpdump -d listings: constant loads, IP-header-length indirect loads
// (X at most 60), and the cases that must copy everything.
func TestReadExtent(t *testing.T) {
	for _, c := range []struct {
		expr    string
		want    uint32
		bounded bool
	}{
		{"len > 100", 0, true},
		{"ip", 14, true},
		{"udp dst port 1", 14 + 60 + 2 + 2, true},                // ldh [x + 16]
		{"tcp[tcpflags] & tcp-syn != 0", 14 + 60 + 13 + 1, true}, // ldb [x + 27]
		{"ip6 and tcp", 55, true},                                // ldb [54]: the header after a fragment header
		{"ether[100:4] = 1", 104, true},
		{"ip6 protochain 6", 0, false}, // a backward jump
	} {
		prog, err := Compile(c.expr, LinkEthernet, 65535)
		if err != nil {
			t.Fatalf("compile %q: %v", c.expr, err)
		}
		n, ok := ReadExtent(prog)
		if ok != c.bounded || (ok && n != c.want) {
			t.Errorf("ReadExtent(%q) = %d, %v; want %d, %v", c.expr, n, ok, c.want, c.bounded)
		}
	}
}

// TestReadExtentIndirect checks X bounds through the registers and cells.
func TestReadExtentIndirect(t *testing.T) {
	for _, c := range []struct {
		name    string
		prog    []bpf.Instruction
		want    uint32
		bounded bool
	}{
		{"constant X", []bpf.Instruction{
			bpf.LoadConstant{Dst: bpf.RegX, Val: 40},
			bpf.LoadIndirect{Off: 2, Size: 4},
			bpf.RetA{},
		}, 46, true},
		{"X from a byte via a cell", []bpf.Instruction{
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.StoreScratch{Src: bpf.RegA, N: 3},
			bpf.LoadScratch{Dst: bpf.RegX, N: 3},
			bpf.LoadIndirect{Off: 10, Size: 2},
			bpf.RetA{},
		}, 255 + 10 + 2, true},
		{"X bound merged over both branches", []bpf.Instruction{
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 0, SkipFalse: 2},
			bpf.LoadConstant{Dst: bpf.RegX, Val: 100},
			bpf.Jump{Skip: 1},
			bpf.LoadConstant{Dst: bpf.RegX, Val: 8},
			bpf.LoadIndirect{Off: 0, Size: 1},
			bpf.RetA{},
		}, 101, true},
		{"X from the wire length", []bpf.Instruction{
			bpf.LoadExtension{Num: bpf.ExtLen},
			bpf.TAX{},
			bpf.LoadIndirect{Off: 0, Size: 1},
			bpf.RetA{},
		}, 0, false},
		{"X after subtraction", []bpf.Instruction{
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.ALUOpConstant{Op: bpf.ALUOpSub, Val: 1},
			bpf.TAX{},
			bpf.LoadIndirect{Off: 0, Size: 1},
			bpf.RetA{},
		}, 0, false},
	} {
		n, ok := ReadExtent(c.prog)
		if ok != c.bounded || (ok && n != c.want) {
			t.Errorf("%s: ReadExtent = %d, %v; want %d, %v", c.name, n, ok, c.want, c.bounded)
		}
	}
}
