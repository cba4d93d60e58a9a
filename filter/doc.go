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
// Where the translation and libpcap part ways, libpcap's answer wins:
//
//   - `protochain` is a cBPF loop; the translation unrolls it
//     MaxBackwardJumps times and returns Undecided for a packet that needs
//     more. Runner then asks Matcher, which follows the loop as libpcap
//     does; capture programs keep such packets, flagged, for the same
//     userspace check. No packet gets a silent 0.
//   - Scratch cells M[] that a program may read before writing them read
//     as 0 (libpcap 1.10's bpf_filter leaves them uninitialised: its
//     answer there is whatever its stack held; the kernel's classic
//     checker refuses such programs).
//   - Packets longer than a kernel test program takes (TestScratchSize)
//     are decided by Matcher, on all their bytes.
//   - Compile uses netmask 0, as tcpdump -r does; CompileNetmask takes a
//     device's (DeviceNetmask), CompileFile compiles as tcpdump -r does on
//     a file's savefile handle. Every libpcap link type is accepted.
//
// When the kernel refuses a translated filter, or the translator cannot
// express a construct (ErrUnsupported), callers capture unfiltered and use
// Matcher, a userspace cBPF interpreter with libpcap's semantics, instead.
//
// TestBed loads a translated filter into a small XDP test program (a
// KernelFilter) and runs it on packets with BPF_PROG_TEST_RUN: this is how
// the tests prove the translator against libpcap. Runner puts the test
// programs and Matcher together to decide packets of any length.
//
// `bpfcap filter -r` is FileReader and FileRunner: FileReader reads a pcap
// or pcapng file as libpcap reads it (tcpdump -r), pcapng blocks kept byte
// for byte on request; FileRunner decides every packet with libpcap's
// answer (libpcap's own filter in the C loop that reads a pcap file, as
// fast as tcpdump -r; Matcher otherwise) and checks the kernel translation
// with a Runner on a sample of the packets (KernelCheckFirst, then one in
// KernelCheckEvery).
package filter
