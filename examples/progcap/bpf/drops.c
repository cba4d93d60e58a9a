/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A tp_btf program on kfree_skb that emits every dropped IPv4 or IPv6
 * packet for `bpfcap prog` with bpfcap_output() (bpf/bpfcap.h): the packet
 * from its network header as raw IP (LINKTYPE_RAW), with the kernel's drop
 * reason (enum skb_drop_reason) as its id, so the capture says why each
 * packet died.
 *
 * The skb is read through the minimal CO-RE struct sk_buff of
 * bpf/vmlinux.h. Only the linear part is emitted (head + network_header up
 * to tail): the wire length is that part's length too.
 *
 * Built twice (see gen.go): as is, and with -DPROGCAP_NO_OUTPUT without the
 * header (bpfcap_output() compiled out, its maps absent), the baseline of
 * the cost test.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#ifdef PROGCAP_NO_OUTPUT
/*
 * The call becomes an empty asm statement: no instruction, but clang keeps
 * the checks that lead to it (the program does nothing else, so clang
 * would delete them all with the call, and the baseline would lack the
 * program's own work).
 */
#define bpfcap_output(ctx, data, len, proto, id) \
	({ (void)(data), (void)(len), (void)(id); asm volatile(""); 0; })
#include "linktype.h"
#else
#include "bpfcap.h"
#endif

char __license[] SEC("license") = "Dual BSD/GPL";

#define PROGCAP_ETH_P_IP 0x0800
#define PROGCAP_ETH_P_IPV6 0x86DD

/*
 * kfree_skb(skb, location, reason[, rx_sk]): the drop reason argument
 * exists since 5.17; tp_btf arguments are read by position.
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(progcap_drops, struct sk_buff *skb, void *location, int reason)
{
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	__u16 nh = BPF_CORE_READ(skb, network_header);
	unsigned int tail = BPF_CORE_READ(skb, tail);
	unsigned char *head = BPF_CORE_READ(skb, head);

	if (proto != PROGCAP_ETH_P_IP && proto != PROGCAP_ETH_P_IPV6)
		return 0;
	if (nh == (__u16)~0U || tail <= nh)
		return 0;
	bpfcap_output(ctx, head + nh, tail - nh, BPFCAP_LINKTYPE_RAW, (__u64)(__u32)reason);
	return 0;
}
