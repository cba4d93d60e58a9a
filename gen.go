// Package bpfcap is the library behind the bpfcap command: it runs capture
// sessions over packet sources (kernel hooks, XDP and tc programs, DPDK
// ports) and writes what they see as pcapng or as one-line summaries.
//
// This file is also the one place that runs code generation: every BPF
// object in bpf/ is compiled by bpf2go from here (make generate).
package bpfcap

// BPF objects, one line per object. Each is written into the package that
// loads it. Targets are little-endian amd64 and arm64 so that bpf_tracing.h
// knows the register layout.
