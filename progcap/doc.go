// Package progcap captures the packets a BPF program emits with
// bpfcap_output() from bpf/bpfcap.h: the engine of `bpfcap prog (id ID |
// pinned PATH | name NAME)`.
//
// A program that includes bpf/bpfcap.h uses two maps with fixed names:
// bpfcap_events, the ring buffer of records, and ".data.bpfcap", the
// one-entry array that loaders make of the data section holding the
// global variable bpfcap_config, which says whether capture is on and
// with which snap length, and counts the records lost to a full ring.
// (A global variable rather than a map of its own: the program reads it
// with one load, no lookup, which keeps the cost of a disabled
// bpfcap_output() to a load and a branch.) Open finds the program
// (FindProgram), finds those maps among the maps it uses (by their kernel
// names), turns capture on, and returns a Capture, a bpfcap.Source: its
// Run writes every record as a pcapng packet with the program's id in
// epb_packetid, one interface per link
// type (the first declared when opening, the others added as records of
// new link types arrive), the lost count in the interface statistics.
// Capture is turned off again by Close and on every failure path of Open;
// a capture left on by a bpfcap that was killed is noticed and taken over.
// The userspace side is the kernel hooks' (hook/): records come through
// perfring's reader, timestamps through hook.Clock, the lost count
// through hook.LossCounter (each new loss on the next packet's
// epb_dropcount).
//
// The optional filter runs in userspace: the kernel side is the author's
// program, into which bpfcap splices nothing. Filters are compiled with
// libpcap per link type (filter.Compile, on first use of each link type)
// and run by filter.Matcher, whose `len` is the packet's wire length as
// in tcpdump.
//
// Everything needs root (CAP_SYS_ADMIN to open programs and maps by id).
// Once open, turning capture on and off goes through the config map's
// memory mapping and records through the ring buffer's, so a Capture
// keeps working after the process dropped its privileges.
package progcap
