// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `bpfcap xdp dev IFNAME` on an interface that already runs an XDP program
 * not instrumented for bpfcap: an fexit program attached to that XDP
 * program (xdpdump-style) sees each packet as the program leaves it, with
 * the verdict it returned. It copies the packet's first buffer up to the
 * snap length (bpf_probe_read_kernel), filters the copy (scratch back end)
 * and submits matches. Needs BPF trampolines for BPF programs (fexit on a
 * BPF program: Linux 5.5, x86-64 and arm64) and kernel BTF for the CO-RE
 * reads below; some kernels refuse tracing programs, and then bpfcap says
 * how to instrument the program instead.
 */
#include "capture.h"

char __license[] SEC("license") = "GPL";

/*
 * The kernel's view of an XDP program's context (fexit sees the target's
 * struct xdp_md argument as the struct xdp_buff behind it). Only the fields
 * read here; CO-RE finds their offsets in the running kernel's BTF.
 */
struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

struct xdp_rxq_info {
	struct net_device *dev;
	__u32 queue_index;
} __attribute__((preserve_access_index));

struct xdp_buff {
	void *data;
	void *data_end;
	struct xdp_rxq_info *rxq;
} __attribute__((preserve_access_index));

SEC("fexit")
int bpfcap_xdp_fexit(__u64 *ctx)
{
	struct xdp_buff *xdp = (struct xdp_buff *)ctx[0];
	int verdict = (int)ctx[1];
	struct bpfcap_scratch_record *rec;
	int match;
	void *data = xdp->data;
	__u32 wire_len = (__u32)((long)xdp->data_end - (long)data);
	struct xdp_rxq_info *rxq = xdp->rxq;
	__u32 ifindex = rxq->dev->ifindex;
	__u64 cap_len;

	if (!bpfcap_want_dev(ifindex, 0))
		return 0;
	bpfcap_count_seen();
	rec = bpfcap_scratch_get();
	if (!rec)
		return 0;
	cap_len = wire_len;
	if (cap_len > bpfcap_snaplen())
		cap_len = bpfcap_snaplen();
	if (cap_len == 0 ||
	    bpf_probe_read_kernel(rec->data, bpfcap_clamp_len(cap_len, BPFCAP_MAX_DATA), data) < 0) {
		bpfcap_stat_inc(BPFCAP_STAT_ERROR);
		goto out;
	}
	match = bpfcap_match_scratch(rec->data, cap_len, wire_len);
	if (!match)
		goto out;
	bpfcap_stat_inc(BPFCAP_STAT_MATCHED);
	if (!bpfcap_rate_admit())
		goto out;
	bpfcap_event_init(&rec->ev, wire_len, cap_len);
	rec->ev.flags |= bpfcap_match_flags(match);
	rec->ev.ifindex = ifindex;
	rec->ev.queue = rxq->queue_index;
	rec->ev.dir = BPFCAP_DIR_IN;
	rec->ev.verdict = verdict;
	rec->ev.flags |= BPFCAP_EV_HAS_VERDICT;
	bpfcap_submit(ctx, rec, cap_len);
out:
	bpfcap_scratch_put();
	return 0;
}
