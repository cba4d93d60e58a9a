// Package filter turns tcpdump filter expressions into code the kernel runs.
//
// The pipeline has three steps:
//
//   - Compile runs libpcap (through gopacket/pcap, cgo) on a dead handle of
//     the wanted link type and returns classic BPF (cBPF), the program
//     tcpdump itself would install.
//   - Translate converts that cBPF into an eBPF fragment (cilium/ebpf asm)
//     with one front end and two packet-access back ends: Direct, for
//     programs that hold packet pointers (XDP, tc), and Scratch, for programs
//     that copied the packet into a map value (tracing hooks). The fragment
//     returns the cBPF verdict in R0: non-zero means the packet matches.
//   - Splice puts the fragment into the body of a static __noinline stub
//     subprogram of a bpf2go-built program, keeping the stub's BTF metadata.
//     SpliceInline instead puts an Options.Inline fragment at every call
//     of the stub, which saves a call and return per packet.
//
// When the kernel refuses a translated filter, or the translator cannot
// express a construct (ErrUnsupported), callers capture unfiltered and use
// Matcher, a userspace cBPF interpreter with libpcap's semantics, instead.
//
// TestBed loads a translated filter into a small XDP test program (a
// KernelFilter) and runs it on packets with BPF_PROG_TEST_RUN: this is how
// `bpfcap filter -r` checks a filter against a capture file, and how the
// tests prove the translator against libpcap.
package filter
