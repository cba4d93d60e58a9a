// Package progcap holds the example programs of bpf/bpfcap.h, the header
// BPF authors include to emit packets for `bpfcap prog` with
// bpfcap_output():
//
//   - an XDP program (bpf/xdp_rules.c) with a rule table keyed by UDP
//     destination port: every packet a rule matches is emitted as an
//     Ethernet frame with the rule's id, then passed or dropped;
//   - the same XDP program built without the helper (-DPROGCAP_NO_OUTPUT),
//     the baseline that shows what the helper costs while nobody captures;
//   - a tp_btf program on kfree_skb (bpf/drops.c) that emits every dropped
//     IPv4 or IPv6 packet as raw IP with the kernel's drop reason as its id.
//
// The loaders here load the objects as any loader would: bpfcap finds the
// capture maps through the program, by their names, with no help from the
// loader. Loading needs CAP_BPF and CAP_PERFMON (or root): the helper
// reads packets with bpf_probe_read_kernel.
package progcap
