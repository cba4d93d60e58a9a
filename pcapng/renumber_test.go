package pcapng

import (
	"errors"
	"slices"
	"testing"
)

// TestRenumberPackets: each block's interface moves to ids[its ID], only
// the first n blocks are touched, and a block of an interface with no
// entry, or one that does not fit, is ErrBadBlock.
func TestRenumberPackets(t *testing.T) {
	var b []byte
	for _, ifc := range []uint32{0, 1, 0, 1} {
		b = append(b, dpdkEPB(ifc, 1, []byte{1, 2, 3, 4, 5}, 60, 1, 0, nil)...)
	}
	end, err := RenumberPackets(b, 3, []int{4, 7})
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	var got []int
	for rest, off := b, 0; len(rest) > 0; {
		blk, r, err := SplitBlock(rest)
		if err != nil {
			t.Fatal(err)
		}
		if err := DecodeEPB(blk, &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Interface)
		off += len(blk)
		if len(got) == 3 && off != end {
			t.Errorf("RenumberPackets says the first 3 blocks take %d bytes, they take %d", end, off)
		}
		rest = r
	}
	if want := []int{4, 7, 4, 1}; !slices.Equal(got, want) {
		t.Errorf("interfaces %v, want %v", got, want)
	}
	if _, err := RenumberPackets(dpdkEPB(2, 1, nil, 60, 1, 0, nil), 1, []int{0, 1}); !errors.Is(err, ErrBadBlock) {
		t.Errorf("interface 2 of 2: %v, want ErrBadBlock", err)
	}
	if _, err := RenumberPackets(b[:40], 1, []int{0, 1}); !errors.Is(err, ErrBadBlock) {
		t.Errorf("a cut-off block: %v, want ErrBadBlock", err)
	}
	if _, err := RenumberPackets(b, 5, []int{0, 1}); !errors.Is(err, ErrBadBlock) {
		t.Errorf("5 blocks of 4: %v, want ErrBadBlock", err)
	}
}
