//go:build dpdk

package dpdk

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/pcapng"
)

// compileFilter compiles expr for Ethernet with libpcap, into libpcap's
// struct bpf_insn array for DPDK to convert (rte_bpf_convert) and into
// the Matcher that runs it in userspace when DPDK cannot.
func compileFilter(expr string, snapLen int) ([]byte, *filter.Matcher, error) {
	insns, err := filter.Compile(expr, filter.LinkEthernet, snapLen)
	if err != nil {
		return nil, nil, err
	}
	prog, err := rawProgram(insns)
	if err != nil {
		return nil, nil, fmt.Errorf("filter %q: %w", expr, err)
	}
	m, err := filter.NewMatcher(insns)
	if err != nil {
		return nil, nil, fmt.Errorf("filter %q: %w", expr, err)
	}
	return prog, m, nil
}

// rawProgram encodes insns as libpcap's struct bpf_insn array.
func rawProgram(insns []bpf.Instruction) ([]byte, error) {
	b := make([]byte, 0, 8*len(insns))
	for i, ins := range insns {
		r, err := ins.Assemble()
		if err != nil {
			return nil, fmt.Errorf("assemble instruction %d: %w", i, err)
		}
		b = binary.LittleEndian.AppendUint16(b, r.Op)
		b = append(b, r.Jt, r.Jf)
		b = binary.LittleEndian.AppendUint32(b, r.K)
	}
	return b, nil
}

// fallbackFilterOnly keeps the userspace filter only when it is needed.
func (cp *Capture) fallbackFilterOnly() {
	if cp.fallback == "" {
		cp.match = nil
	}
}

// userFilter runs the fallback filter over the blocks in b, keeps the
// matching ones at the front, and counts the others.
func (cp *Capture) userFilter(b []byte, n int) ([]byte, int) {
	var pkt pcapng.Packet
	keep, kept := 0, 0
	rest := b
	for len(rest) > 0 {
		blk, r, err := pcapng.SplitBlock(rest)
		if err != nil {
			break
		}
		rest = r
		if pcapng.DecodeEPB(blk, &pkt) != nil {
			continue
		}
		if cp.match.Match(pkt.Data, pkt.WireLen) {
			keep += copy(b[keep:], blk)
			kept++
		} else if pkt.Interface < len(cp.userFiltered) {
			cp.userFiltered[pkt.Interface].Add(1)
		}
	}
	return b[:keep], kept
}
