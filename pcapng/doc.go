// Package pcapng writes and reads pcapng files (the format tcpdump and
// Wireshark read) with the per-packet metadata bpfcap records: one
// interface per capture hook, Enhanced Packet Blocks carrying the packet
// id, queue, direction, verdict and a readable comment, and Interface
// Statistics Blocks at the end.
//
// The Writer allocates nothing per packet: options are encoded into a
// reused buffer. The Reader exists for tests and tools; it understands the
// blocks and options the Writer emits (and skips others).
package pcapng
