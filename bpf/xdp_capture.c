// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP capture program of `bpfcap xdp`.
 *
 * Hook mode: one copy is loaded per XDP action with bpfcap_xdp_action set to
 * it and put into that action's slot of an xdpcap hook (bpf/xdpcap.h). The
 * instrumented program tail-calls it on exit; it copies a matching packet
 * to userspace with the action as its verdict and returns the action, so the
 * instrumented program's behaviour never changes.
 *
 * Entry mode (`bpfcap xdp dev IFNAME`): attached to an interface that has
 * no XDP program, it captures at XDP entry and passes every packet.
 *
 * The non-matching path is the filter and nothing else: no map update, no
 * helper call (the wire length of a multi-buffer packet needs one, so
 * programs for frags owners make it). Matching packets are copied up to the
 * snap length with bpf_xdp_load_bytes, which also reads the fragments of
 * multi-buffer (BPF_F_XDP_HAS_FRAGS) packets. The filter sees the linear
 * part: a load past it does not match. Kernels before 5.18 have neither
 * bpf_xdp_load_bytes nor frags: there Go sets BPFCAP_XDP_READ_KERNEL and
 * the linear packet is copied with bpf_probe_read_kernel (the verifier
 * drops the branch of the helper it lacks: the flags are a constant).
 * Needs Linux 5.8 for the ring buffer.
 */
#include "capture.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* The action this copy returns and records (hook mode). */
volatile const __u32 bpfcap_xdp_action = XDP_PASS;

/* enum bpfcap_xdp_flag */
volatile const __u32 bpfcap_xdp_flags = 0;

enum bpfcap_xdp_flag {
	BPFCAP_XDP_FRAGS = 1 << 0, /* loaded for a frags owner: packets may have fragments */
	BPFCAP_XDP_ENTRY = 1 << 1, /* entry mode: no verdict is recorded */
	BPFCAP_XDP_READ_KERNEL = 1 << 2, /* no bpf_xdp_load_bytes (before 5.18): copy with bpf_probe_read_kernel */
};

/*
 * Copies a packet the filter matched (or every packet, unfiltered) to
 * userspace. Everything is read again from ctx so that nothing but ctx has
 * to stay live across the filter, and the non-matching path needs no stack
 * spills.
 */
static __always_inline void bpfcap_xdp_capture(struct xdp_md *ctx, __u32 action, __u8 evflags)
{
	__u32 flags = bpfcap_xdp_flags;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpfcap_scratch_record *rec;
	__u32 wire_len;
	__u64 cap_len;

	if (flags & BPFCAP_XDP_FRAGS)
		wire_len = bpf_xdp_get_buff_len(ctx);
	else
		wire_len = data_end - data;
	bpfcap_stat_inc(BPFCAP_STAT_MATCHED);
	if (!bpfcap_rate_admit())
		return;

	rec = bpfcap_scratch_get();
	if (!rec)
		return;
	cap_len = wire_len;
	if (cap_len > bpfcap_snaplen())
		cap_len = bpfcap_snaplen();
	if (cap_len == 0) {
		bpfcap_stat_inc(BPFCAP_STAT_ERROR);
		goto out;
	}
	if (flags & BPFCAP_XDP_READ_KERNEL) {
		/* No frags on such kernels: cap_len <= data_end - data. */
		data = (void *)(long)ctx->data;
		if (bpf_probe_read_kernel(rec->data, bpfcap_clamp_len(cap_len, BPFCAP_MAX_DATA), data) < 0) {
			bpfcap_stat_inc(BPFCAP_STAT_ERROR);
			goto out;
		}
	} else if (bpf_xdp_load_bytes(ctx, 0, rec->data, bpfcap_clamp_len(cap_len, BPFCAP_MAX_DATA)) < 0) {
		bpfcap_stat_inc(BPFCAP_STAT_ERROR);
		goto out;
	}
	bpfcap_event_init(&rec->ev, wire_len, cap_len);
	rec->ev.ifindex = ctx->ingress_ifindex;
	rec->ev.queue = ctx->rx_queue_index;
	rec->ev.dir = BPFCAP_DIR_IN;
	rec->ev.flags |= evflags;
	if (!(flags & BPFCAP_XDP_ENTRY)) {
		rec->ev.verdict = action;
		rec->ev.flags |= BPFCAP_EV_HAS_VERDICT;
	}
	bpfcap_submit(ctx, rec, cap_len);
out:
	bpfcap_scratch_put();
}

SEC("xdp")
int bpfcap_xdp(struct xdp_md *ctx)
{
	/*
	 * The constants (frozen .rodata) are known to the verifier, which
	 * drops the branches they rule out but not the loads: read each once.
	 */
	__u32 flags = bpfcap_xdp_flags;
	__u8 evflags = 0;

	/* Test the constant first: reading ingress_ifindex costs three loads. */
	if (bpfcap_cfg.ifindex && !bpfcap_want_dev(ctx->ingress_ifindex, 0))
		return bpfcap_xdp_action;
	bpfcap_count_seen();
	if (!(bpfcap_cfg.flags & BPFCAP_CFG_UNFILTERED)) {
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		__u32 wire_len, ret;

		if (flags & BPFCAP_XDP_FRAGS)
			wire_len = bpf_xdp_get_buff_len(ctx);
		else
			wire_len = data_end - data;
		ret = bpfcap_filter_direct(data, data_end, wire_len);
		if (!ret)
			return bpfcap_xdp_action;
		if (ret == BPFCAP_FILTER_UNDECIDED)
			evflags = BPFCAP_EV_UNDECIDED;
	}
	bpfcap_xdp_capture(ctx, bpfcap_xdp_action, evflags);
	return bpfcap_xdp_action;
}
