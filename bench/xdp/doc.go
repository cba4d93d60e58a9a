// Package xdpbench is the benchmark harness of `bpfcap xdp` (make
// bench-xdp): it floods a veth with BPF_PROG_TEST_RUN in live-frames mode
// and compares, in one run, the packets per second `bpfcap xdp` captures
// without loss against `tcpdump -w` on the same veth, and the XDP
// forwarding cost of an instrumented program with bpfcap's hook filled
// (non-matching filter) against the same program with the hook empty.
// Results are ratios against the peer measured in the same run.
package xdpbench
