// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test object for the capture core (hook/ tests): two XDP programs that
 * capture every packet they see through capture.h, one filtering with the
 * direct back end, one with the scratch back end. Both return XDP_PASS.
 * The test packets are linear (no frags), copied with
 * bpf_probe_read_kernel, which every kernel the tests run on has (unlike
 * bpf_xdp_load_bytes and bpf_xdp_get_buff_len, Linux 5.18).
 */
#include "capture.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/*
 * When set, IPv4/UDP frames are captured from the IP header on, with link
 * type LINKTYPE_RAW: one hook emitting two link types, as the tracing
 * probe does for skbs with and without a MAC header.
 */
volatile const __u32 capturetest_udp_as_raw = 0;

static __always_inline int capture(struct xdp_md *ctx, int scratch_filter)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 wire_len = data_end - data;
	struct bpfcap_scratch_record *rec;
	__u64 cap_len;
	__u32 off = 0;
	int match = 1;

	if (!bpfcap_want_dev(ctx->ingress_ifindex, 0))
		return XDP_PASS;
	bpfcap_stat_inc(BPFCAP_STAT_SEEN);
	if (!scratch_filter) {
		match = bpfcap_match_direct(data, data_end, wire_len);
		if (!match)
			return XDP_PASS;
	}

	rec = bpfcap_scratch_get();
	if (!rec)
		return XDP_PASS;
	if (capturetest_udp_as_raw && data + 34 <= data_end &&
	    ((__u8 *)data)[12] == 0x08 && ((__u8 *)data)[13] == 0 && ((__u8 *)data)[23] == 17)
		off = 14;
	cap_len = wire_len - off;
	if (cap_len > bpfcap_snaplen())
		cap_len = bpfcap_snaplen();
	if (cap_len == 0) {
		bpfcap_stat_inc(BPFCAP_STAT_ERROR);
		goto out;
	}
	cap_len = bpfcap_clamp_len(cap_len, BPFCAP_MAX_DATA);
	if (bpf_probe_read_kernel(rec->data, cap_len, data + off) < 0) {
		bpfcap_stat_inc(BPFCAP_STAT_ERROR);
		goto out;
	}
	if (scratch_filter) {
		match = bpfcap_match_scratch(rec->data, cap_len, wire_len);
		if (!match)
			goto out;
	}
	bpfcap_stat_inc(BPFCAP_STAT_MATCHED);

	bpfcap_event_init(&rec->ev, wire_len - off, cap_len);
	if (off)
		rec->ev.linktype = BPFCAP_LINKTYPE_RAW;
	rec->ev.flags |= bpfcap_match_flags(match);
	rec->ev.packet_id = (__u64)(long)ctx; /* per run; enough for tests */
	rec->ev.ifindex = ctx->ingress_ifindex;
	rec->ev.queue = ctx->rx_queue_index;
	rec->ev.dir = BPFCAP_DIR_IN;
	rec->ev.verdict = XDP_PASS;
	rec->ev.flags |= BPFCAP_EV_HAS_VERDICT;
	bpfcap_submit(ctx, rec, cap_len);
out:
	bpfcap_scratch_put();
	return XDP_PASS;
}

SEC("xdp")
int capture_direct(struct xdp_md *ctx)
{
	return capture(ctx, 0);
}

SEC("xdp")
int capture_scratch(struct xdp_md *ctx)
{
	return capture(ctx, 1);
}

/*
 * Calls the direct stub with data and data_end swapped: unfiltered it
 * loads (the stub only returns 1), but every translated filter does
 * arithmetic on what it takes for the packet start, which the verifier
 * refuses on a packet-end pointer. hook/ tests use it to prove the
 * fallback to userspace filtering when the verifier refuses a filter.
 */
SEC("xdp")
int capture_refused(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (!bpfcap_match_direct(data_end, data, 0))
		return XDP_PASS;
	return capture(ctx, 1);
}
