// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * filtertest: XDP programs that run a spliced filter stub on a packet given
 * to BPF_PROG_TEST_RUN. filter/ uses them to check translated filters in
 * the real kernel (`bpfcap filter -r`, the differential tests, the fuzz
 * target and the benchmarks).
 *
 * Test input layout: a FILTERTEST_PREFIX-byte header whose first four bytes
 * are the packet's wire length (host order), then the captured bytes. The
 * program's return value is the filter's return value (non-zero: match).
 */
#include "capture.h"

#define FILTERTEST_PREFIX 16
/* Per-CPU array values are limited to 32 KiB. */
#define FILTERTEST_SCRATCH 32768

struct filtertest_buf {
	__u8 data[FILTERTEST_SCRATCH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct filtertest_buf);
} filtertest_scratch SEC(".maps");

/* Direct back end: the filter reads the packet through packet pointers. */
SEC("xdp")
int filtertest_direct(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 wire_len;

	if (data + FILTERTEST_PREFIX > data_end)
		return 0;
	wire_len = *(__u32 *)data;
	return bpfcap_filter_direct(data + FILTERTEST_PREFIX, data_end, wire_len);
}

/*
 * Direct back end at tc, for the benchmarks: BPF_PROG_TEST_RUN of an XDP
 * program with repeat > 1 re-registers it with the XDP dispatcher on every
 * call (~20 ms here), the skb test run does not.
 */
SEC("tc")
int filtertest_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 wire_len;

	if (data + FILTERTEST_PREFIX > data_end)
		return 0;
	wire_len = *(__u32 *)data;
	return bpfcap_filter_direct(data + FILTERTEST_PREFIX, data_end, wire_len);
}

/*
 * The tc program running the filter FILTERTEST_BENCH_CALLS times per run:
 * the benchmarks divide by that, so the filter's few nanoseconds stand out
 * from the test-run loop's noise.
 */
#define FILTERTEST_BENCH_CALLS 16

SEC("tc")
int filtertest_tc_bench(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 wire_len, ret = 0;

	if (data + FILTERTEST_PREFIX > data_end)
		return 0;
	wire_len = *(__u32 *)data;
#pragma unroll
	for (int i = 0; i < FILTERTEST_BENCH_CALLS; i++)
		ret |= bpfcap_filter_direct(data + FILTERTEST_PREFIX, data_end, wire_len);
	return ret;
}

/*
 * Scratch back end: the packet is first copied into a per-CPU map value, as
 * the tracing hooks copy an skb, then the filter reads the copy. xdp.frags
 * lets the test run pass packets larger than one page.
 */
SEC("xdp.frags")
int filtertest_scratch_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct filtertest_buf *buf;
	__u32 zero = 0, wire_len;
	__u64 cap_len;

	if (data + FILTERTEST_PREFIX > data_end)
		return 0;
	wire_len = *(__u32 *)data;
	buf = bpf_map_lookup_elem(&filtertest_scratch, &zero);
	if (!buf)
		return 0;
	/*
	 * The 6.1 verifier needs the size passed to bpf_xdp_load_bytes
	 * clamped to 1..FILTERTEST_SCRATCH in one register (bpfcap_clamp_len),
	 * after the zero case is out of the way.
	 */
	cap_len = bpf_xdp_get_buff_len(ctx) - FILTERTEST_PREFIX;
	if (cap_len > 0) {
		cap_len = bpfcap_clamp_len(cap_len, FILTERTEST_SCRATCH);
		if (bpf_xdp_load_bytes(ctx, FILTERTEST_PREFIX, buf->data, cap_len) < 0)
			return 0;
	}
	return bpfcap_filter_scratch(buf->data, cap_len, wire_len);
}

/*
 * The scratch back end for kernels without bpf_xdp_load_bytes and frags
 * (before Linux 5.18): the packet is linear (at most a page) and copied
 * with bpf_probe_read_kernel. Go picks it by probing the helper.
 */
SEC("xdp")
int filtertest_scratch_linear(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct filtertest_buf *buf;
	__u32 zero = 0, wire_len;
	__u64 cap_len;

	if (data + FILTERTEST_PREFIX > data_end)
		return 0;
	wire_len = *(__u32 *)data;
	buf = bpf_map_lookup_elem(&filtertest_scratch, &zero);
	if (!buf)
		return 0;
	cap_len = data_end - data - FILTERTEST_PREFIX;
	if (cap_len > 0) {
		cap_len = bpfcap_clamp_len(cap_len, FILTERTEST_SCRATCH);
		if (bpf_probe_read_kernel(buf->data, cap_len, data + FILTERTEST_PREFIX) < 0)
			return 0;
	}
	return bpfcap_filter_scratch(buf->data, cap_len, wire_len);
}

char __license[] SEC("license") = "Dual BSD/GPL";
