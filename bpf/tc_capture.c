// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tc capture program of `bpfcap tc`: attached with TCX (Linux 6.6) or
 * as a direct-action cls_bpf filter on a clsact qdisc, at ingress or egress.
 *
 * It runs the filter on the packet's linear part, copies a matching packet
 * (paged data included) up to the snap length with bpf_skb_load_bytes into
 * the scratch record, and always returns -1 (TCX_NEXT / TC_ACT_UNSPEC): the
 * next program or the default action decides the packet's fate, as if this
 * program were not there. The non-matching path makes no map update.
 */
#include "capture.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* enum bpfcap_dir of this copy: BPFCAP_DIR_IN (ingress) or BPFCAP_DIR_OUT. */
volatile const __u32 bpfcap_tc_dir = BPFCAP_DIR_IN;

/* TCX_NEXT and TC_ACT_UNSPEC: let the packet continue unchanged. */
#define BPFCAP_TC_CONTINUE (-1)

SEC("tc")
int bpfcap_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 wire_len = skb->len;
	struct bpfcap_scratch_record *rec;
	__u64 cap_len;
	int match;

	if (bpfcap_has_meta_filter() &&
	    !bpfcap_want_meta(bpf_get_socket_cookie(skb), bpfcap_cfg.netns, skb->mark))
		return BPFCAP_TC_CONTINUE;
	bpfcap_count_seen();
	match = bpfcap_match_direct(data, data_end, wire_len);
	if (!match)
		return BPFCAP_TC_CONTINUE;
	bpfcap_stat_inc(BPFCAP_STAT_MATCHED);
	if (!bpfcap_rate_admit())
		return BPFCAP_TC_CONTINUE;

	rec = bpfcap_scratch_get();
	if (!rec)
		return BPFCAP_TC_CONTINUE;
	cap_len = wire_len;
	if (cap_len > bpfcap_snaplen())
		cap_len = bpfcap_snaplen();
	if (cap_len == 0 ||
	    bpf_skb_load_bytes(skb, 0, rec->data, bpfcap_clamp_len(cap_len, BPFCAP_MAX_DATA)) < 0) {
		bpfcap_stat_inc(BPFCAP_STAT_ERROR);
		goto out;
	}
	bpfcap_event_init(&rec->ev, wire_len, cap_len);
	bpfcap_event_owner(&rec->ev, bpf_get_socket_cookie(skb));
	rec->ev.packet_id = (__u64)(long)skb;
	rec->ev.ifindex = skb->ifindex;
	rec->ev.netns = bpfcap_cfg.netns;
	rec->ev.mark = skb->mark;
	rec->ev.queue = skb->queue_mapping;
	rec->ev.dir = bpfcap_tc_dir;
	rec->ev.flags |= bpfcap_match_flags(match);
	bpfcap_submit(skb, rec, cap_len);
out:
	bpfcap_scratch_put();
	return BPFCAP_TC_CONTINUE;
}
