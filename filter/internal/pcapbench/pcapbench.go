// Package pcapbench times libpcap's userspace filter, pcap_offline_filter,
// over a set of packets for filter/'s benchmarks. The loop runs in C, so
// the cgo call overhead is paid once per measurement, not per packet: the
// figure is what tcpdump pays per packet when it filters in userspace.
package pcapbench

/*
#cgo LDFLAGS: -lpcap
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long pcapbench_run(struct bpf_insn *insns, unsigned n, const unsigned char *data,
			       const unsigned *offsets, const unsigned *caplens, const unsigned *wirelens,
			       unsigned npkts, unsigned rounds, unsigned long long *matches)
{
	struct bpf_program prog = { n, insns };
	struct pcap_pkthdr h;
	struct timespec a, b;
	unsigned long long m = 0;

	memset(&h, 0, sizeof(h));
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < npkts; i++) {
			h.caplen = caplens[i];
			h.len = wirelens[i];
			m += pcap_offline_filter(&prog, &h, data + offsets[i]) != 0;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	*matches = m;
	return (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
}
*/
import "C"

import (
	"errors"
	"unsafe"

	"golang.org/x/net/bpf"
)

// Packet is one packet to filter: captured bytes and wire length.
type Packet struct {
	Data    []byte
	WireLen int
}

// Bench holds a cBPF program and packets in C memory.
type Bench struct {
	insns    *C.struct_bpf_insn
	n        C.uint
	data     *C.uchar
	offsets  *C.uint
	caplens  *C.uint
	wirelens *C.uint
	npkts    C.uint
}

// New copies prog and pkts into C memory. Close frees them.
func New(prog []bpf.RawInstruction, pkts []Packet) (*Bench, error) {
	if len(prog) == 0 || len(pkts) == 0 {
		return nil, errors.New("pcapbench: need a program and packets")
	}
	b := &Bench{n: C.uint(len(prog)), npkts: C.uint(len(pkts))}
	b.insns = (*C.struct_bpf_insn)(C.calloc(C.size_t(len(prog)), C.size_t(unsafe.Sizeof(C.struct_bpf_insn{}))))
	insns := unsafe.Slice(b.insns, len(prog))
	for i, ri := range prog {
		insns[i] = C.struct_bpf_insn{code: C.u_short(ri.Op), jt: C.u_char(ri.Jt), jf: C.u_char(ri.Jf), k: C.bpf_u_int32(ri.K)}
	}
	total := 1
	for _, p := range pkts {
		total += len(p.Data)
	}
	b.data = (*C.uchar)(C.malloc(C.size_t(total)))
	data := unsafe.Slice((*byte)(unsafe.Pointer(b.data)), total)
	u32s := func() (*C.uint, []C.uint) {
		p := (*C.uint)(C.calloc(C.size_t(len(pkts)), 4))
		return p, unsafe.Slice(p, len(pkts))
	}
	var offs, caps, wires []C.uint
	b.offsets, offs = u32s()
	b.caplens, caps = u32s()
	b.wirelens, wires = u32s()
	off := 0
	for i, p := range pkts {
		copy(data[off:], p.Data)
		offs[i], caps[i], wires[i] = C.uint(off), C.uint(len(p.Data)), C.uint(max(p.WireLen, len(p.Data)))
		off += len(p.Data)
	}
	return b, nil
}

// Run filters every packet rounds times and returns the number of matches
// and the mean time per packet in nanoseconds.
func (b *Bench) Run(rounds int) (matches uint64, nsPerPacket float64) {
	var m C.ulonglong
	ns := C.pcapbench_run(b.insns, b.n, b.data, b.offsets, b.caplens, b.wirelens, b.npkts, C.uint(rounds), &m)
	return uint64(m), float64(ns) / float64(rounds*int(b.npkts))
}

// Close frees the C memory.
func (b *Bench) Close() {
	C.free(unsafe.Pointer(b.insns))
	C.free(unsafe.Pointer(b.data))
	C.free(unsafe.Pointer(b.offsets))
	C.free(unsafe.Pointer(b.caplens))
	C.free(unsafe.Pointer(b.wirelens))
}
