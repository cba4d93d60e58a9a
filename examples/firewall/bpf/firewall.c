/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A tiny XDP firewall instrumented for bpfcap: the complete example of
 * bpf/xdpcap.h.
 *
 * Every UDP or TCP packet over IPv4 or IPv6 is looked up in firewall_rules
 * by destination port, then by source port; the rule's value is the XDP
 * action to take. XDP_TX bounces the packet back where it came from (MAC,
 * IP addresses and ports swapped; the sums over swapped fields do not
 * change, but a sender with checksum offload leaves the L4 checksum
 * partial, which XDP cannot know: so IPv4 UDP bounces go out without a
 * checksum, 0, which IPv4 allows). Packets without a rule, and everything
 * that is not UDP or TCP over IP, pass.
 *
 * Every exit goes through xdpcap_exit (firewall_exit below), so `bpfcap xdp
 * PIN` sees each packet with the verdict. Built three times (see gen.go):
 * with the hook in bpfcap's layout, with -DFIREWALL_CLOUDFLARE_LAYOUT
 * in Cloudflare xdpcap's pre-2019 layout (4 slots), and with
 * -DFIREWALL_NO_HOOK without a hook, as the benchmarks' baseline.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdpcap.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#ifdef FIREWALL_CLOUDFLARE_LAYOUT
struct xdpcap_map_def xdpcap_hook SEC("maps") = XDPCAP_HOOK_LEGACY();
#elif !defined(FIREWALL_NO_HOOK)
XDPCAP_HOOK(xdpcap_hook);
#endif

/*
 * Every exit of the program. The benchmarks build the firewall a third way,
 * with -DFIREWALL_NO_HOOK, to compare against a program without the hook.
 */
#ifdef FIREWALL_NO_HOOK
#define firewall_exit(ctx, action) (action)
#else
#define firewall_exit(ctx, action) xdpcap_exit(ctx, &xdpcap_hook, action)
#endif

/* firewall_rules: port (host byte order) -> XDP action. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u32);
} firewall_rules SEC(".maps");

static __always_inline void swap_bytes(void *a, void *b, int n)
{
	__u8 *x = a, *y = b;
	for (int i = 0; i < n; i++) {
		__u8 t = x[i];
		x[i] = y[i];
		y[i] = t;
	}
}

/* ports points at the source and destination ports of a UDP or TCP header
 * (they start both headers). */
static __always_inline __u32 verdict(__u16 *ports)
{
	__u16 port = bpf_ntohs(ports[1]);
	__u32 *action = bpf_map_lookup_elem(&firewall_rules, &port);
	if (!action) {
		port = bpf_ntohs(ports[0]);
		action = bpf_map_lookup_elem(&firewall_rules, &port);
	}
	if (!action || *action >= XDP_REDIRECT)
		return XDP_PASS;
	return *action;
}

SEC("xdp")
int firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l4;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return firewall_exit(ctx, XDP_PASS);

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return firewall_exit(ctx, XDP_PASS);
		l4 = (void *)ip + ip->ihl * 4;
		proto = ip->protocol;
		if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
			return firewall_exit(ctx, XDP_PASS);
		if (l4 + 4 > data_end)
			return firewall_exit(ctx, XDP_PASS);
		__u32 action = verdict(l4);
		if (action == XDP_TX) {
			swap_bytes(eth->h_source, eth->h_dest, ETH_ALEN);
			swap_bytes(&ip->saddr, &ip->daddr, 4);
			swap_bytes(l4, l4 + 2, 2);
			if (proto == IPPROTO_UDP) {
				struct udphdr *udp = l4;
				if ((void *)(udp + 1) <= data_end)
					udp->check = 0;
			}
		}
		return firewall_exit(ctx, action);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return firewall_exit(ctx, XDP_PASS);
		proto = ip6->nexthdr;
		l4 = ip6 + 1;
		if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
			return firewall_exit(ctx, XDP_PASS);
		if (l4 + 4 > data_end)
			return firewall_exit(ctx, XDP_PASS);
		__u32 action = verdict(l4);
		if (action == XDP_TX) {
			swap_bytes(eth->h_source, eth->h_dest, ETH_ALEN);
			swap_bytes(&ip6->saddr, &ip6->daddr, 16);
			swap_bytes(l4, l4 + 2, 2);
		}
		return firewall_exit(ctx, action);
	}
	return firewall_exit(ctx, XDP_PASS);
}
