// Package tccap captures packets at tc ingress and egress of a network
// interface: it attaches bpfcap's tc capture program (bpf/tc_capture.c) with
// TCX links (Linux 6.6) or, where the kernel has no TCX or when asked, as a
// direct-action cls_bpf filter on a clsact qdisc (Linux 4.5), and detaches
// everything on Close, removing a clsact qdisc it created.
//
// The program runs the filter on the packet's linear part, copies a match
// (paged data included) up to the snap length and always returns -1
// (TCX_NEXT, TC_ACT_UNSPEC), so the packet's fate never changes. Packets
// carry their direction (pcapng epb_flags).
//
// Interfaces are looked up in the network namespace of the calling thread.
package tccap
