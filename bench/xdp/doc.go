// Package xdpbench is the benchmark harness of `bpfcap xdp` (make
// bench-xdp): it floods a veth (with BPF_PROG_TEST_RUN in live-frames
// mode, or an AF_PACKET TX ring where live frames are refused or missing:
// see Flooder and ProbeLiveFrames) and compares, in one run, the packets
// per second `bpfcap xdp` captures without loss against `tcpdump -w` on the
// same veth; and the cost of bpfcap's hook (filled, with a filter that does
// not match) on an instrumented program against the same program without a
// hook, both when it forwards frames (XDP_TX out of a veth, live frames
// only) and per program run. Results are ratios against the peer measured
// in the same run.
package xdpbench
