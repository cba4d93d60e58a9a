/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bpfcap.h: emit packets for capture from any BPF program (XDP, tc,
 * tracing), for `bpfcap prog (id ID | pinned PATH | name NAME)`. The
 * bpf_pcap() helper proposed in 2019, without a kernel change.
 *
 * Usage:
 *
 *	#include <linux/bpf.h>          (or a bpftool vmlinux.h)
 *	#include <bpf/bpf_helpers.h>
 *	#define BPFCAP_OUTPUT_MAX 2048  (optional: largest bytes per record)
 *	#include "bpfcap.h"
 *
 *	SEC("xdp") int prog(struct xdp_md *ctx)
 *	{
 *		void *data = (void *)(long)ctx->data;
 *		void *data_end = (void *)(long)ctx->data_end;
 *
 *		bpfcap_output(ctx, data, data_end - data,
 *			      BPFCAP_LINKTYPE_ETHERNET, rule_id);
 *		...
 *	}
 *
 * bpfcap_output(ctx_or_skb, data, max_len, protocol, id_flags) records
 * max_len bytes starting at data, which is any pointer the program may
 * read with bpf_probe_read_kernel: a packet pointer in XDP or tc, skb->head +
 * skb->network_header in a tracing program, a buffer on the stack.
 *
 *   ctx_or_skb  the program's context; unused today (kept so that a
 *               perf-buffer or skb-copy variant keeps the signature).
 *   max_len     the packet's length: written as the wire length; the
 *               record holds min(max_len, snap length, BPFCAP_OUTPUT_MAX)
 *               bytes of it.
 *   protocol    the pcap LINKTYPE_ of the first byte (BPFCAP_LINKTYPE_*
 *               below or any value from tcpdump.org/linktypes.html):
 *               bpfcap writes one pcapng interface per link type it sees.
 *   id_flags    64 bits of your choosing (a rule id, a drop reason, an skb
 *               hash, a counter): bpfcap writes it as the packet's
 *               epb_packetid and "id=0x..." in its comment, to correlate
 *               with your other tracing data.
 *
 * It returns 0 when the packet was recorded or capture is off, and a
 * negative error when it was not (the ring was full, the read failed).
 *
 * Cost: while no bpfcap captures, one load from the config map's value
 * (a global variable: no lookup call) and a branch; check with `bpftool
 * prog dump xlated`. While capturing: two per-CPU lookups,
 * bpf_ktime_get_ns, a copy into a per-CPU scratch record and
 * bpf_ringbuf_output.
 *
 * Maps. The header defines, in every object that includes it:
 *   bpfcap_events   BPF_MAP_TYPE_RINGBUF, BPFCAP_OUTPUT_RING_SIZE bytes: the
 *                   records (struct bpfcap_record + the bytes).
 *   .data.bpfcap    the global variable bpfcap_config (struct
 *                   bpfcap_output_config) in its own data section, which
 *                   loaders create as a one-entry BPF_MAP_TYPE_ARRAY named
 *                   ".data.bpfcap" with BPF_F_MMAPABLE (libbpf and cilium/ebpf
 *                   both name a ".data.*" section's map after the section):
 *                   enabled and the snap length, which bpfcap writes through
 *                   its memory mapping (no bpf() call is needed to turn
 *                   capture off, even after -Z); the count of records lost
 *                   because the ring was full (a ring buffer has no loss
 *                   signal of its own) or the read failed.
 *   bpfcap_out_buf  per-CPU scratch records, one per nesting level.
 *   bpfcap_out_nest per-CPU nesting depth.
 * bpfcap finds the first two by name among the maps the program uses, so
 * keep the names (a program that never calls bpfcap_output() does not use
 * them). Each object that includes the header gets its own maps;
 * the programs of one object share them, so capturing one program
 * captures what every program of its object emits (the id tells them
 * apart). `bpfcap prog` turns capture on while it runs and off when it
 * exits; one bpfcap at a time per object.
 *
 * Why a per-CPU scratch record and bpf_ringbuf_output: bpf_ringbuf_reserve
 * needs a constant size, which would make every record BPFCAP_OUTPUT_MAX
 * bytes long; bpf_ringbuf_output takes a variable size on every kernel
 * with ring buffers (5.8). The per-CPU scratch value may be at most 32 KiB
 * (the per-CPU allocator's unit), so BPFCAP_OUTPUT_MAX is at most 32736.
 *
 * Kernel: BPF ring buffers (5.8); bpf_probe_read_kernel for XDP and tc
 * programs, which the kernel offers to every program type when the
 * loader has CAP_PERFMON (or is root). Tested on 6.1, 6.12 and 6.18.
 *
 * Needs only <linux/bpf.h> (or a vmlinux.h that defines __VMLINUX_H__),
 * <bpf/bpf_helpers.h> and linktype.h (next to this file: copy both).
 */
#ifndef __BPFCAP_OUTPUT_H__
#define __BPFCAP_OUTPUT_H__

#ifndef __VMLINUX_H__
#include <linux/types.h>
#include <linux/bpf.h>
#endif
#include <bpf/bpf_helpers.h>

/* Largest number of packet bytes one record carries (override before including). */
#ifndef BPFCAP_OUTPUT_MAX
#define BPFCAP_OUTPUT_MAX 16384
#endif

/* Size of the bpfcap_events ring buffer in bytes (a power of 2, >= the page size). */
#ifndef BPFCAP_OUTPUT_RING_SIZE
#define BPFCAP_OUTPUT_RING_SIZE (1 << 22)
#endif

/*
 * Scratch records per CPU: one per context that can interrupt another on the
 * same CPU (task, softirq, hardirq, NMI). Deeper calls are counted as lost.
 */
#define BPFCAP_OUTPUT_NEST 4

/* Record magic ("BPCR" in memory on little-endian hosts) and layout version. */
#define BPFCAP_RECORD_MAGIC 0x52435042
#define BPFCAP_RECORD_VERSION 1

/* pcap link types (BPFCAP_LINKTYPE_*) for the protocol argument. */
#include "linktype.h"

/* The header of every record in bpfcap_events; cap_len bytes follow. */
struct bpfcap_record {
	__u32 magic;		/* BPFCAP_RECORD_MAGIC */
	__u16 version;		/* BPFCAP_RECORD_VERSION */
	__u16 link_type;	/* pcap LINKTYPE_ of the first byte */
	__u32 wire_len;		/* the packet's length (max_len) */
	__u32 cap_len;		/* bytes that follow */
	__u64 id;		/* id_flags */
	__u64 ts;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

/* The one value of bpfcap_config. */
struct bpfcap_output_config {
	__u32 enabled;		/* non-zero while a bpfcap captures (set by bpfcap) */
	__u32 snaplen;		/* bytes per record; 0: BPFCAP_OUTPUT_MAX (set by bpfcap) */
	__u64 lost;		/* records lost: ring full, read failed, nested too deep */
	__u32 owner;		/* pid of the capturing bpfcap (set by bpfcap) */
	__u32 reserved[3];
};

_Static_assert(BPFCAP_OUTPUT_MAX > 0 &&
		       BPFCAP_OUTPUT_MAX + sizeof(struct bpfcap_record) <= 32768,
	       "BPFCAP_OUTPUT_MAX must be 1..32736 (per-CPU values are at most 32 KiB)");

struct bpfcap_out_buf {
	struct bpfcap_record rec;
	__u8 data[BPFCAP_OUTPUT_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BPFCAP_OUTPUT_RING_SIZE);
} bpfcap_events SEC(".maps");

/*
 * The configuration is a global variable in a section of its own: loaders
 * (libbpf, cilium/ebpf) turn the section into a one-entry array map named
 * ".data.bpfcap", memory-mappable, and the program reads it with a direct
 * load, without a map lookup. Put nothing else in this section.
 */
struct bpfcap_output_config bpfcap_config SEC(".data.bpfcap") = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFCAP_OUTPUT_NEST);
	__type(key, __u32);
	__type(value, struct bpfcap_out_buf);
} bpfcap_out_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bpfcap_out_nest SEC(".maps");

/*
 * n bounded to [0, max] in a form every verifier since 5.x follows: the
 * compare and the clamp happen on the same 64-bit register.
 */
#define bpfcap__bound(n, max)                                             \
	({                                                                \
		__u64 __n = (n);                                          \
		asm volatile("if %[v] <= %[m] goto +1\n\t"                \
			     "%[v] = %[m]\n\t"                            \
			     : [v] "+r"(__n)                              \
			     : [m] "i"(max));                             \
		__n;                                                      \
	})

/* The capturing path of bpfcap_output: only runs while capture is on. */
static __always_inline long bpfcap__record(const void *data, __u64 max_len, __u16 protocol,
					   __u64 id_flags)
{
	struct bpfcap_output_config *cfg = &bpfcap_config;
	struct bpfcap_out_buf *buf;
	__u32 zero = 0, level;
	__u32 *nest;
	__u64 cap;
	long err;

	nest = bpf_map_lookup_elem(&bpfcap_out_nest, &zero);
	if (!nest)
		return -1;
	level = *nest;
	if (level >= BPFCAP_OUTPUT_NEST) {
		__sync_fetch_and_add(&cfg->lost, 1);
		return -16; /* -EBUSY */
	}
	buf = bpf_map_lookup_elem(&bpfcap_out_buf, &level);
	if (!buf)
		return -1;
	*nest = level + 1;

	cap = max_len;
	if (cfg->snaplen && cap > cfg->snaplen)
		cap = cfg->snaplen;
	cap = bpfcap__bound(cap, BPFCAP_OUTPUT_MAX);

	buf->rec.magic = BPFCAP_RECORD_MAGIC;
	buf->rec.version = BPFCAP_RECORD_VERSION;
	buf->rec.link_type = protocol;
	buf->rec.wire_len = max_len;
	buf->rec.cap_len = cap;
	buf->rec.id = id_flags;
	buf->rec.ts = bpf_ktime_get_ns();
	err = bpf_probe_read_kernel(buf->data, cap, data);
	if (!err)
		err = bpf_ringbuf_output(&bpfcap_events, buf,
					 bpfcap__bound(cap + sizeof(buf->rec), sizeof(*buf)), 0);
	if (err)
		__sync_fetch_and_add(&cfg->lost, 1);
	*nest = level;
	return err;
}

/*
 * Records max_len bytes at data for bpfcap, with link type protocol and the
 * id id_flags, when a bpfcap captures this program; see the top of this file.
 */
static __always_inline long bpfcap_output(void *ctx_or_skb, const void *data, __u64 max_len,
					  __u16 protocol, __u64 id_flags)
{
	(void)ctx_or_skb;
	/* volatile: bpfcap writes it from outside the program */
	if (__builtin_expect(!*(volatile __u32 *)&bpfcap_config.enabled, 1))
		return 0;
	return bpfcap__record(data, max_len, protocol, id_flags);
}

#endif /* __BPFCAP_OUTPUT_H__ */
