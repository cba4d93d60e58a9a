package pcapng

import "fmt"

// InterfaceAdder is implemented by the PacketWriter a source writes to
// when the source may add capture points while it runs (bpfcap prog
// learns the link types of a program's records as they arrive). The
// source adds each one with AddInterface before the first packet for it;
// the writer writes it at once (an Interface Description Block between
// packets) and AddInterface returns the source's own index for it, the
// next index of the source's interfaces.
type InterfaceAdder interface {
	AddInterface(ifc Interface) (int, error)
}

// RenumberPackets moves the first n Enhanced Packet Blocks of b, laid
// back to back as a RawPacketWriter takes them, from a source's interface
// numbering to a writer's: the block of source interface i gets ids[i].
// It returns how many bytes those n blocks take. A block that does not
// fit b, or whose interface has no entry in ids, is ErrBadBlock; the
// blocks before it are then already renumbered.
func RenumberPackets(b []byte, n int, ids []int) (int, error) {
	end := 0
	for i := range n {
		blk, _, err := SplitBlock(b[end:])
		if err != nil {
			return 0, fmt.Errorf("raw packet block %d of %d: %w", i+1, n, err)
		}
		if len(blk) < 16 {
			return 0, fmt.Errorf("raw packet block %d of %d: %d bytes, no interface ID: %w", i+1, n, len(blk), ErrBadBlock)
		}
		id := le.Uint32(blk[8:])
		if int(id) >= len(ids) {
			return 0, fmt.Errorf("raw packet block %d of %d: source interface %d not added (have %d): %w", i+1, n, id, len(ids), ErrBadBlock)
		}
		if ids[id] != int(id) {
			le.PutUint32(blk[8:], uint32(ids[id]))
		}
		end += len(blk)
	}
	return end, nil
}
