/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An XDP program that emits packets for `bpfcap prog` with bpfcap_output()
 * (bpf/bpfcap.h): a rule table keyed by UDP destination port says, per
 * port, a rule id and whether to drop. Every IPv4 or IPv6 UDP packet with a
 * rule is emitted as an Ethernet frame with the rule id as its id, before
 * the verdict, so the capture shows which rule saw which packet. Packets
 * without a rule pass and are not emitted.
 *
 * Built twice (see gen.go): as is, and with -DPROGCAP_NO_OUTPUT without the
 * header (bpfcap_output() compiled out), the baseline of the cost test.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifdef PROGCAP_NO_OUTPUT
#define bpfcap_output(ctx, data, len, proto, id) ((void)(id), 0)
#include "linktype.h"
#else
#include "bpfcap.h"
#endif

char __license[] SEC("license") = "Dual BSD/GPL";

/* A rule: its id (emitted with each packet it matches) and its verdict. */
struct rule {
	__u32 id;
	__u32 drop; /* non-zero: XDP_DROP, else XDP_PASS */
};

/* progcap_rules: UDP destination port (host byte order) -> rule. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, struct rule);
} progcap_rules SEC(".maps");

/* progcap_hits: per-CPU count of packets that matched a rule. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} progcap_hits SEC(".maps");

SEC("xdp")
int progcap_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;
	struct rule *r;
	__u32 zero = 0;
	__u64 *hits;
	__u16 port;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_UDP)
			return XDP_PASS;
		udp = (void *)(ip6 + 1);
	} else {
		return XDP_PASS;
	}
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	port = bpf_ntohs(udp->dest);
	r = bpf_map_lookup_elem(&progcap_rules, &port);
	if (!r)
		return XDP_PASS;
	hits = bpf_map_lookup_elem(&progcap_hits, &zero);
	if (hits)
		*hits += 1;
	bpfcap_output(ctx, data, data_end - data, BPFCAP_LINKTYPE_ETHERNET, r->id);
	return r->drop ? XDP_DROP : XDP_PASS;
}
