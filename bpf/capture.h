/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * capture.h: the capture core every bpfcap kernel program includes (the
 * tracing probe, the XDP and tc capture programs, the test object).
 *
 * It provides:
 *   - the two filter stubs that hook/ replaces with the translated tcpdump
 *     filter (filter.Splice, by symbol name);
 *   - bpfcap_cfg, the per-program configuration written from Go before load;
 *   - the maps shared by every hook of one capture session: the ring buffer
 *     (or perf event array), per-CPU statistics, and the scratch records;
 *   - helpers to take a scratch record, count statistics and submit a record.
 *
 * A program typically does (see bpf/capturetest.c for a complete one):
 *
 *	if (!bpfcap_want_dev(ifindex, netns)) return ...;
 *	bpfcap_count_seen();
 *	struct bpfcap_scratch_record *rec = bpfcap_scratch_get();
 *	if (!rec) return ...;
 *	cap_len = min(wire_len, bpfcap_snaplen());
 *	... copy cap_len bytes into rec->data: for helpers that refuse a zero
 *	    size, skip cap_len == 0 and pass bpfcap_clamp_len(cap_len,
 *	    BPFCAP_MAX_DATA) ...
 *	if (bpfcap_match_scratch(rec->data, cap_len, wire_len)) {
 *		bpfcap_stat_inc(BPFCAP_STAT_MATCHED);
 *		bpfcap_event_init(&rec->ev, wire_len, cap_len);
 *		... set packet_id, ifindex, verdict, dir, ... ...
 *		bpfcap_submit(ctx, rec, cap_len);
 *	}
 *	bpfcap_scratch_put();
 *
 * Programs holding packet pointers (XDP, tc) filter first with
 * bpfcap_match_direct(data, data_end, wire_len) and copy only matches.
 *
 * Include it after the kernel type definitions: with a bpftool-generated
 * vmlinux.h (which defines __VMLINUX_H__) the uapi <linux/bpf.h> is not
 * included again; a hand-written vmlinux.h must not define __VMLINUX_H__
 * unless it also provides the uapi BPF definitions.
 */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#include <linux/bpf.h>
#endif
#include <bpf/bpf_helpers.h>

#include "event.h"
#include "linktype.h"

/* Largest number of packet bytes one record can carry. */
#define BPFCAP_MAX_DATA 65536

/*
 * Scratch records per CPU: one per context that can interrupt another on the
 * same CPU (task, softirq, hardirq, NMI). A program that would nest deeper
 * counts BPFCAP_STAT_NESTED and skips the packet.
 */
#define BPFCAP_NEST_LEVELS 4

/* Default number of hooks per session in bpfcap_stats (Go may raise it). */
#define BPFCAP_MAX_HOOKS 64

/* Statistics counted per hook and CPU (see bpfcap_stats). */
enum bpfcap_stat {
	BPFCAP_STAT_SEEN = 0,     /* packets that reached the hook (after the dev restriction) */
	BPFCAP_STAT_MATCHED = 1,  /* packets the kernel filter accepted (all, when unfiltered) */
	BPFCAP_STAT_CAPTURED = 2, /* records written to the ring */
	BPFCAP_STAT_LOST = 3,     /* records the ring had no room for */
	BPFCAP_STAT_NOHDR = 4,    /* packets without the requested header (skipped) */
	BPFCAP_STAT_NESTED = 5,   /* packets skipped: scratch nesting too deep */
	BPFCAP_STAT_ERROR = 6,    /* packets skipped: reading the packet failed */
	BPFCAP_STAT_SHED = 7,     /* matched packets the rate bound shed on purpose (see bpfcap_rate_admit) */
	BPFCAP_NSTATS = 8,
};

/* bpfcap_cfg.flags */
enum bpfcap_cfg_flag {
	BPFCAP_CFG_PERF = 1 << 0,       /* submit to bpfcap_perf instead of bpfcap_ring */
	BPFCAP_CFG_UNFILTERED = 1 << 1, /* skip the filter stub: userspace filters */
	BPFCAP_CFG_TASK = 1 << 2,       /* the hook runs in process context: the current
					 * task owns packets whose socket has no known owner */
	BPFCAP_CFG_COUNT_SEEN = 1 << 3, /* count BPFCAP_STAT_SEEN (one map update per packet) */
	BPFCAP_CFG_META = 1 << 4,       /* a metadata filter (want_*) is set: bpfcap_want_meta */
};

/*
 * Configuration of one loaded program, written from Go (hook/) into .rodata
 * before load. The verifier sees the values as constants, so branches on
 * them cost nothing at run time.
 */
struct bpfcap_config {
	__u32 hook;         /* hook index, stored in every event and used for stats */
	__u32 snaplen;      /* bytes of packet data to capture, 1..BPFCAP_MAX_DATA */
	__u32 ifindex;      /* capture only this device (0: any) */
	__u32 netns;        /* ... in this netns (inode, 0: any) */
	__u32 flags;        /* enum bpfcap_cfg_flag */
	__u32 wakeup_bytes; /* ringbuf: wake userspace when pending data crosses this (0: kernel default) */
	__u32 linktype;     /* pcap LINKTYPE_* the program captures (informational) */
	__u32 max_hooks;    /* hooks per CPU row in bpfcap_stats (0: BPFCAP_MAX_HOOKS) */
	/* Packet metadata filters (bpfcap_want_meta), checked before any copy. */
	__u32 want_pid;       /* owner's tgid (0: any) */
	__u32 want_netns;     /* netns inode (0: any) */
	__u32 want_mark;      /* skb->mark & want_mark_mask must equal this */
	__u32 want_mark_mask; /* 0: any mark */
	__u64 want_cgroup;    /* owner's cgroup v2 id (0: any) */
	char want_comm[16];   /* owner's comm, NUL-padded ("": any) */
	/* Filter before copy and the rate bound (see their block below). */
	__u32 filter_reads;  /* bytes from the record start the filter can read, at most
			      * snaplen (BPFCAP_MAX_DATA: any; 0: unfiltered) */
	__u32 rate_interval; /* rate bound: ns per packet and CPU (0: unbounded) */
	__u32 rate_burst;    /* rate bound: packets let through back to back (>= 1) */
};

volatile const struct bpfcap_config bpfcap_cfg = {
	.snaplen = BPFCAP_MAX_DATA,
	.filter_reads = BPFCAP_MAX_DATA,
};

/*
 * One scratch record: the event header followed by the packet bytes, as
 * bpfcap_submit sends them. (bpfcap.h's struct bpfcap_record is the header
 * of bpfcap_output()'s records, a different layout.)
 */
struct bpfcap_scratch_record {
	struct bpfcap_event ev;
	__u8 data[BPFCAP_MAX_DATA];
};

/* The BPF ring buffer; its size is set from Go (a power of two of pages). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} bpfcap_ring SEC(".maps");

/* The perf event array used with BPFCAP_CFG_PERF; one entry per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} bpfcap_perf SEC(".maps");

/*
 * Counters, one row per CPU: key = (cpu * max_hooks + hook) * BPFCAP_NSTATS
 * + enum bpfcap_stat, with max_hooks from bpfcap_cfg. A plain array rather
 * than a per-CPU one so that Go reads it through mmap (BPF_F_MMAPABLE):
 * no bpf() call per read, and nothing for the kernel to refuse after -Z
 * dropped privileges (older kernels refuse every bpf() command to
 * unprivileged users when unprivileged BPF is disabled; 6.1 and later
 * only refuse creating maps and programs). Each CPU writes only its row.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 64 * BPFCAP_MAX_HOOKS * BPFCAP_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} bpfcap_stats SEC(".maps");

/*
 * Scratch records: BPFCAP_NEST_LEVELS per CPU, key = cpu * levels + level.
 * A plain array (per-CPU values are limited to 32 KiB); Go sizes it to the
 * number of possible CPUs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64 * BPFCAP_NEST_LEVELS);
	__type(key, __u32);
	__type(value, struct bpfcap_scratch_record);
} bpfcap_scratch SEC(".maps");

/* Current nesting level per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bpfcap_nest SEC(".maps");

/*
 * The filter stubs. hook/ replaces their bodies with the translated filter
 * (by symbol name); the return value is non-zero when the packet matches.
 * The bodies are opaque to clang (asm volatile) so that calls are kept with
 * all their arguments. Unspliced, they match every packet.
 *
 * Direct back end (XDP, tc): data and data_end are packet pointers.
 */
static __noinline __u32 bpfcap_filter_direct(void *data, void *data_end, __u32 wire_len)
{
	__u32 ret;

	asm volatile("%0 = 1" : "=r"(ret) : "r"(data), "r"(data_end), "r"(wire_len) : "memory");
	return ret;
}

/* Scratch back end (tracing hooks): buf points at rec->data in the scratch map. */
static __noinline __u32 bpfcap_filter_scratch(const void *buf, __u32 cap_len, __u32 wire_len)
{
	__u32 ret;

	asm volatile("%0 = 1" : "=r"(ret) : "r"(buf), "r"(cap_len), "r"(wire_len) : "memory");
	return ret;
}

/*
 * Adds one to stat for hook index hook. A program that serves one hook
 * counts with bpfcap_stat_inc; one that serves several (a kprobe-multi
 * program, whose attach cookie names the hook) passes the hook of the run.
 */
static __always_inline void bpfcap_hook_stat_inc(__u32 hook, __u32 stat)
{
	__u32 rows = bpfcap_cfg.max_hooks; /* one load: the packet path counts */
	__u32 key;
	__u64 *v;

	if (!rows)
		rows = BPFCAP_MAX_HOOKS;
	key = (bpf_get_smp_processor_id() * rows + hook) * BPFCAP_NSTATS + stat;
	v = bpf_map_lookup_elem(&bpfcap_stats, &key);

	if (v)
		*v += 1;
}

/* Adds one to stat for this program's hook. */
static __always_inline void bpfcap_stat_inc(__u32 stat)
{
	bpfcap_hook_stat_inc(bpfcap_cfg.hook, stat);
}

/*
 * Counts a packet that reached the hook (BPFCAP_STAT_SEEN) when Go asked
 * for it with BPFCAP_CFG_COUNT_SEEN; otherwise the non-matching path makes
 * no map update. The flag is a constant the verifier prunes on.
 */
static __always_inline void bpfcap_count_seen(void)
{
	if (bpfcap_cfg.flags & BPFCAP_CFG_COUNT_SEEN)
		bpfcap_stat_inc(BPFCAP_STAT_SEEN);
}

/*
 * Returns n clamped to max in a form every verifier since 5.x can follow:
 * the compare and the clamp happen on the same 64-bit register.
 */
#define bpfcap_clamp(n, max)                                              \
	({                                                                \
		__u64 __n = (n);                                          \
		asm volatile("if %[v] <= %[m] goto +1\n\t"                \
			     "%[v] = %[m]\n\t"                            \
			     : [v] "+r"(__n)                              \
			     : [m] "i"(max));                             \
		__n;                                                      \
	})

/*
 * Returns n bounded to [1, max] for helpers whose size argument must not be
 * zero (bpf_xdp_load_bytes, bpf_skb_load_bytes): 6.1's verifier refuses a
 * size whose minimum is 0 even after a separate `n == 0` check, because
 * clang tests and passes different register copies. Call it after
 * handling n == 0 (a 0 becomes 1 here).
 */
#define bpfcap_clamp_len(n, max)                                          \
	({                                                                \
		__u64 __n = (n);                                          \
		asm volatile("if %[v] > 0 goto +1\n\t"                    \
			     "%[v] = 1\n\t"                               \
			     "if %[v] <= %[m] goto +1\n\t"                \
			     "%[v] = %[m]\n\t"                            \
			     : [v] "+r"(__n)                              \
			     : [m] "i"(max));                             \
		__n;                                                      \
	})

/* The snap length of this program, 1..BPFCAP_MAX_DATA. */
static __always_inline __u32 bpfcap_snaplen(void)
{
	__u32 s = bpfcap_cfg.snaplen;

	if (s == 0 || s > BPFCAP_MAX_DATA)
		s = BPFCAP_MAX_DATA;
	return s;
}

/* Whether a packet on (ifindex, netns) passes the dev restriction. */
static __always_inline int bpfcap_want_dev(__u32 ifindex, __u32 netns)
{
	if (bpfcap_cfg.ifindex == 0)
		return 1;
	if (ifindex != bpfcap_cfg.ifindex)
		return 0;
	return bpfcap_cfg.netns == 0 || netns == 0 || netns == bpfcap_cfg.netns;
}

/*
 * Takes this CPU's scratch record for the current nesting level, or returns
 * NULL with the counter to count in *failed (BPFCAP_STAT_NESTED when all
 * levels are in use, BPFCAP_STAT_ERROR; BPFCAP_NSTATS: none). For callers
 * that work out their hook index only when they need it (see probe.c).
 * Every non-NULL return must be paired with bpfcap_scratch_put().
 */
static __always_inline struct bpfcap_scratch_record *bpfcap_scratch_take(__u32 *failed)
{
	__u32 zero = 0, level, key;
	__u32 *nest = bpf_map_lookup_elem(&bpfcap_nest, &zero);
	struct bpfcap_scratch_record *rec;

	*failed = BPFCAP_NSTATS;
	if (!nest)
		return NULL;
	level = *nest;
	if (level >= BPFCAP_NEST_LEVELS) {
		*failed = BPFCAP_STAT_NESTED;
		return NULL;
	}
	*nest = level + 1;
	key = bpf_get_smp_processor_id() * BPFCAP_NEST_LEVELS + level;
	rec = bpf_map_lookup_elem(&bpfcap_scratch, &key);
	if (!rec) {
		*nest = level;
		*failed = BPFCAP_STAT_ERROR;
		return NULL;
	}
	return rec;
}

/*
 * Takes this CPU's scratch record for the current nesting level, or returns
 * NULL (and counts BPFCAP_STAT_NESTED for hook) when all levels are in use.
 * Every non-NULL return must be paired with bpfcap_scratch_put().
 */
static __always_inline struct bpfcap_scratch_record *bpfcap_hook_scratch_get(__u32 hook)
{
	__u32 failed;
	struct bpfcap_scratch_record *rec = bpfcap_scratch_take(&failed);

	if (!rec && failed < BPFCAP_NSTATS)
		bpfcap_hook_stat_inc(hook, failed);
	return rec;
}

/* bpfcap_hook_scratch_get for this program's hook. */
static __always_inline struct bpfcap_scratch_record *bpfcap_scratch_get(void)
{
	return bpfcap_hook_scratch_get(bpfcap_cfg.hook);
}

/*
 * Returns the record the last bpfcap_scratch_get() of this CPU took, or
 * NULL when none is taken. For global functions: before Linux 5.12 their
 * arguments may only be scalars or the context, so they cannot be passed
 * the record and look it up again.
 */
static __always_inline struct bpfcap_scratch_record *bpfcap_scratch_cur(void)
{
	__u32 zero = 0, level, key;
	__u32 *nest = bpf_map_lookup_elem(&bpfcap_nest, &zero);

	if (!nest)
		return NULL;
	level = *nest;
	if (level == 0 || level > BPFCAP_NEST_LEVELS)
		return NULL;
	key = bpf_get_smp_processor_id() * BPFCAP_NEST_LEVELS + level - 1;
	return bpf_map_lookup_elem(&bpfcap_scratch, &key);
}

/* Releases the record taken by the last bpfcap_scratch_get(). */
static __always_inline void bpfcap_scratch_put(void)
{
	__u32 zero = 0;
	__u32 *nest = bpf_map_lookup_elem(&bpfcap_nest, &zero);

	if (nest && *nest > 0)
		*nest -= 1;
}

/*
 * Fills the parts of rec->ev every program sets the same way: time, hook,
 * lengths, and (with BPFCAP_CFG_TASK: hooks that run in process context)
 * the current task. The caller sets the rest (packet_id, ifindex, netns,
 * mark, reason, verdict, queue, linktype, dir, flags) before or after, and
 * bpfcap_event_owner names the socket's owner where it is known.
 */
static __always_inline void bpfcap_event_init(struct bpfcap_event *ev, __u32 wire_len, __u32 cap_len)
{
	ev->ts = bpf_ktime_get_ns();
	ev->hook = bpfcap_cfg.hook;
	ev->wire_len = wire_len;
	ev->cap_len = cap_len;
	ev->packet_id = 0;
	ev->ifindex = 0;
	ev->netns = 0;
	ev->mark = 0;
	ev->reason = 0;
	ev->verdict = 0;
	ev->queue = 0;
	ev->linktype = bpfcap_cfg.linktype;
	ev->dir = BPFCAP_DIR_UNKNOWN;
	ev->flags = 0;
	ev->_pad = 0;
	ev->pid = 0;
	__builtin_memset(ev->comm, 0, sizeof(ev->comm));
	ev->parent_id = 0;
	ev->location = 0;
	ev->stack_id = 0;
	ev->_pad2 = 0;
	if (bpfcap_cfg.flags & BPFCAP_CFG_TASK) {
		ev->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(ev->comm, sizeof(ev->comm));
		ev->flags |= BPFCAP_EV_HAS_TASK;
	}
	if (bpfcap_cfg.flags & BPFCAP_CFG_UNFILTERED)
		ev->flags |= BPFCAP_EV_UNFILTERED;
}

/*
 * What a translated filter returns when it cannot decide (filter.Undecided:
 * a protochain loop longer than the translation unrolls). The packet is
 * captured with BPFCAP_EV_UNDECIDED and userspace filters it.
 */
#define BPFCAP_FILTER_UNDECIDED 0xffffffffU

/* bpfcap_match_*: 0 no match, 1 match, BPFCAP_MATCH_UNDECIDED capture and let userspace decide. */
#define BPFCAP_MATCH_UNDECIDED 2

/* The event flag for a bpfcap_match_* result. */
#define bpfcap_match_flags(m) ((m) == BPFCAP_MATCH_UNDECIDED ? BPFCAP_EV_UNDECIDED : 0)

/* Runs the direct-packet filter unless the program runs unfiltered. */
static __always_inline int bpfcap_match_direct(void *data, void *data_end, __u32 wire_len)
{
	__u32 ret;

	if (bpfcap_cfg.flags & BPFCAP_CFG_UNFILTERED)
		return 1;
	ret = bpfcap_filter_direct(data, data_end, wire_len);
	if (ret == BPFCAP_FILTER_UNDECIDED)
		return BPFCAP_MATCH_UNDECIDED;
	return ret != 0;
}

/* Runs the scratch filter on rec->data unless the program runs unfiltered. */
static __always_inline int bpfcap_match_scratch(const void *buf, __u32 cap_len, __u32 wire_len)
{
	__u32 ret;

	if (bpfcap_cfg.flags & BPFCAP_CFG_UNFILTERED)
		return 1;
	ret = bpfcap_filter_scratch(buf, cap_len, wire_len);
	if (ret == BPFCAP_FILTER_UNDECIDED)
		return BPFCAP_MATCH_UNDECIDED;
	return ret != 0;
}

/*
 * The bpf_ringbuf_output/submit flags for a record of size bytes. Wake
 * once per crossing of bpfcap_cfg.wakeup_bytes, never per record: a reader
 * behind by more than the threshold is awake already, and each wake-up
 * costs microseconds (irq_work) on the packet path.
 */
static __always_inline __u64 bpfcap_ring_wakeup(__u64 size)
{
	__u64 avail;

	if (!bpfcap_cfg.wakeup_bytes)
		return 0; /* the kernel's own: wake a reader that caught up */
	avail = bpf_ringbuf_query(&bpfcap_ring, BPF_RB_AVAIL_DATA);
	if (avail < bpfcap_cfg.wakeup_bytes && avail + size + 8 >= bpfcap_cfg.wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/*
 * Sends rec->ev and the first cap_len bytes of rec->data to userspace and
 * counts BPFCAP_STAT_CAPTURED or BPFCAP_STAT_LOST for rec->ev.hook.
 * rec->ev.cap_len must already equal cap_len. ctx is the program's context (perf needs it).
 *
 * Ringbuf wake-ups are batched: only the record that takes the pending
 * data past bpfcap_cfg.wakeup_bytes wakes the reader, which also polls
 * with a short deadline for the rest (wakeup_bytes 0: the kernel's default,
 * waking a reader that has caught up). Returns 0 or the helper's negative
 * error.
 */
static __always_inline long bpfcap_submit(void *ctx, struct bpfcap_scratch_record *rec, __u32 cap_len)
{
	__u64 size = bpfcap_clamp(cap_len, BPFCAP_MAX_DATA) + sizeof(struct bpfcap_event);
	long err;

	if (bpfcap_cfg.flags & BPFCAP_CFG_PERF) {
		err = bpf_perf_event_output(ctx, &bpfcap_perf, BPF_F_CURRENT_CPU, rec, size);
	} else {
		err = bpf_ringbuf_output(&bpfcap_ring, rec, size, bpfcap_ring_wakeup(size));
	}
	bpfcap_hook_stat_inc(rec->ev.hook, err ? BPFCAP_STAT_LOST : BPFCAP_STAT_CAPTURED);
	return err;
}

/*
 * Socket owners: the process that created or used a socket, keyed by the
 * socket's cookie and learned where the kernel runs in that process's
 * context (bpf/owner.c, on socket creation, connect and sendmsg). Capture
 * programs look up the cookie of skb->sk, so a packet is attributed to its
 * socket's owner even where it is seen in softirq or on another CPU.
 */
struct bpfcap_owner {
	__u32 pid;    /* tgid */
	__u32 _pad;
	__u64 cgroup; /* cgroup v2 id */
	char comm[BPFCAP_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 14); /* least recently used owners go first */
	__type(key, __u64);
	__type(value, struct bpfcap_owner);
} bpfcap_owners SEC(".maps");

/*
 * Fills *o with the owner of the socket with this cookie (0: no socket),
 * or, on hooks that run in process context (BPFCAP_CFG_TASK), with the
 * current task. Returns 0 when the owner is not known.
 */
static __always_inline int bpfcap_owner_get(__u64 cookie, struct bpfcap_owner *o)
{
	struct bpfcap_owner *known = NULL;

	if (cookie)
		known = bpf_map_lookup_elem(&bpfcap_owners, &cookie);
	if (known) {
		*o = *known;
		return 1;
	}
	if (bpfcap_cfg.flags & BPFCAP_CFG_TASK) {
		o->pid = bpf_get_current_pid_tgid() >> 32;
		o->_pad = 0;
		o->cgroup = bpf_get_current_cgroup_id();
		bpf_get_current_comm(o->comm, sizeof(o->comm));
		return 1;
	}
	return 0;
}

/*
 * Whether any of the metadata filters of bpfcap_want_meta is set: one
 * flag, so that a program without them reads one word, not five fields.
 */
static __always_inline int bpfcap_has_meta_filter(void)
{
	return bpfcap_cfg.flags & BPFCAP_CFG_META;
}

/*
 * Whether a packet passes the metadata filters (--pid, --comm, --cgroup
 * of its socket's owner, --netns, --mark). Call it before copying the
 * packet; cookie is skb->sk's socket cookie (0: none), netns the inode of
 * the packet's network namespace. A packet whose owner is unknown fails
 * an owner filter.
 */
static __always_inline int bpfcap_want_meta(__u64 cookie, __u32 netns, __u32 mark)
{
	struct bpfcap_owner o;
	int i;

	if (bpfcap_cfg.want_mark_mask && (mark & bpfcap_cfg.want_mark_mask) != bpfcap_cfg.want_mark)
		return 0;
	if (bpfcap_cfg.want_netns && netns != bpfcap_cfg.want_netns)
		return 0;
	if (!bpfcap_cfg.want_pid && !bpfcap_cfg.want_cgroup && !bpfcap_cfg.want_comm[0])
		return 1;
	if (!bpfcap_owner_get(cookie, &o))
		return 0;
	if (bpfcap_cfg.want_pid && o.pid != bpfcap_cfg.want_pid)
		return 0;
	if (bpfcap_cfg.want_cgroup && o.cgroup != bpfcap_cfg.want_cgroup)
		return 0;
	if (bpfcap_cfg.want_comm[0]) {
#pragma clang loop unroll(full)
		for (i = 0; i < BPFCAP_COMM_LEN; i++) {
			if (o.comm[i] != bpfcap_cfg.want_comm[i])
				return 0;
			if (!o.comm[i])
				break;
		}
	}
	return 1;
}

/*
 * ---- Filter before copy ----
 *
 * Programs that copy the packet before filtering (tracing hooks) copy
 * only bpfcap_filter_head(want) bytes first: what the filter can read
 * (filter.ReadExtent, from Go, at most the snap length; 0 when the program
 * runs unfiltered), at most the want they would capture. The
 * filter decides on that head exactly as on the whole copy (its loads past
 * the head are loads past the packet's end in both), and only a match is
 * copied in full.
 */
static __always_inline __u32 bpfcap_filter_head(__u32 want)
{
	__u32 n = bpfcap_cfg.filter_reads;

	return n < want ? n : want;
}

/*
 * ---- Rate bound ----
 *
 * A cap on the packets one hook captures per CPU: a token bucket per
 * CPU (GCRA), rate_interval ns per packet with rate_burst packets back to
 * back, kept in this program's own bpfcap_rate: one bucket per CPU for
 * a program that serves one hook, and for one that serves several (by
 * attach cookie) one per hook, Go sizing the map to their number. A shed
 * packet counts BPFCAP_STAT_SHED and costs a clock read; losses
 * (BPFCAP_STAT_LOST) stay the ring's alone.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64); /* theoretical arrival time of the next packet */
} bpfcap_rate SEC(".maps");

/*
 * Whether the rate bound lets one more packet through bucket slot of
 * bpfcap_rate (0 for a program that serves one hook, the hook index for
 * one that serves several); counts a shed one for hook.
 */
static __always_inline int bpfcap_hook_rate_admit(__u32 hook, __u32 slot)
{
	__u64 interval = bpfcap_cfg.rate_interval, burst = bpfcap_cfg.rate_burst;
	__u64 now, *tat;

	if (interval == 0)
		return 1;
	tat = bpf_map_lookup_elem(&bpfcap_rate, &slot);
	if (!tat)
		return 1;
	now = bpf_ktime_get_ns();
	if (burst == 0)
		burst = 1;
	if (*tat > now + (burst - 1) * interval) {
		bpfcap_hook_stat_inc(hook, BPFCAP_STAT_SHED);
		return 0;
	}
	*tat = (*tat > now ? *tat : now) + interval;
	return 1;
}

/* bpfcap_hook_rate_admit for this program's hook. */
static __always_inline int bpfcap_rate_admit(void)
{
	return bpfcap_hook_rate_admit(bpfcap_cfg.hook, 0);
}

/*
 * Records in ev the owner of the socket with this cookie (see
 * bpfcap_owner_get), replacing what bpfcap_event_init set.
 */
static __always_inline void bpfcap_event_owner(struct bpfcap_event *ev, __u64 cookie)
{
	struct bpfcap_owner o;

	if (!bpfcap_owner_get(cookie, &o))
		return;
	ev->pid = o.pid;
	__builtin_memcpy(ev->comm, o.comm, sizeof(ev->comm));
	ev->flags |= BPFCAP_EV_HAS_TASK;
}

#ifdef BPFCAP_PACKET_TRACKING
/*
 * Packet tracking, drop location and kernel stacks (tracing programs only:
 * an object defines BPFCAP_PACKET_TRACKING before including capture.h to
 * get these maps, which Go creates once per session and shares between
 * the session's programs).
 *
 * A tracked packet is an skb the filter matched at some hook. Its entry in
 * bpfcap_tracked (keyed by the skb address) holds an id made on its first
 * capture that is never given to another packet: CPU, scratch nesting
 * level and a per-(CPU, level) sequence number. Later hooks capture the
 * skb whether or not the filter still matches it (after NAT, say), until
 * it is freed (probe/ attaches the hooks that forget it: the free
 * tracepoints, and the functions every free ends in where fentry works).
 * A clone or copy gets an entry of its own with a new id and its parent's
 * id. The map is an LRU hash: skbs freed where nothing forgets them
 * cannot fill it.
 */

/* What a program of the session does about tracking, written from Go. */
struct bpfcap_track_config {
	__u32 track; /* follow packets the filter matched at any hook */
	__u32 frees; /* the hook frees the skb: forget it after capturing */
	__u32 stack; /* record the kernel stack of each captured packet */
	__u32 _pad;
};

volatile const struct bpfcap_track_config bpfcap_track_cfg;

/* A tracked packet: its id and its parent's (0: not a clone). */
struct bpfcap_track_entry {
	__u64 id;
	__u64 parent;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, __u64); /* skb address */
	__type(value, struct bpfcap_track_entry);
} bpfcap_tracked SEC(".maps");

/*
 * How many entries bpfcap_tracked may hold: one added before each insert,
 * one taken after each delete that found its entry. LRU evictions and
 * inserts that replace an entry only leave it too high, so 0 means the map
 * is empty: then the packet path skips its lookup and every freed skb its
 * delete (a non-matching flood tracks nothing).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} bpfcap_track_count SEC(".maps");

/* Whether bpfcap_tracked may hold an entry (see bpfcap_track_count). */
static __always_inline int bpfcap_track_any(void)
{
	__u32 zero = 0;
	__s64 *n = bpf_map_lookup_elem(&bpfcap_track_count, &zero);

	return !n || *n > 0;
}

/* Adds d to bpfcap_track_count. */
static __always_inline void bpfcap_track_count_add(__s64 d)
{
	__u32 zero = 0;
	__s64 *n = bpf_map_lookup_elem(&bpfcap_track_count, &zero);

	if (n)
		__sync_fetch_and_add(n, d);
}

/* Tracks skb with entry e (counted first: see bpfcap_track_count). */
static __always_inline void bpfcap_track_insert(__u64 skb, const struct bpfcap_track_entry *e)
{
	bpfcap_track_count_add(1);
	bpf_map_update_elem(&bpfcap_tracked, &skb, e, BPF_ANY);
}

/* Forgets skb, when anything is tracked. */
static __always_inline void bpfcap_track_forget(__u64 skb)
{
	if (bpfcap_track_any() && bpf_map_delete_elem(&bpfcap_tracked, &skb) == 0)
		bpfcap_track_count_add(-1);
}

/* Id sequence numbers, key = cpu * BPFCAP_NEST_LEVELS + level. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64 * BPFCAP_NEST_LEVELS);
	__type(key, __u32);
	__type(value, __u64);
} bpfcap_track_seq SEC(".maps");

/* Frames kept per kernel stack. */
#define BPFCAP_STACK_DEPTH 32

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1 << 12);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, BPFCAP_STACK_DEPTH * sizeof(__u64));
} bpfcap_stacks SEC(".maps");

/* Bits of an id: CPU from bit 48, nesting level at 46-47, sequence below. */
#define BPFCAP_ID_CPU_SHIFT 48
#define BPFCAP_ID_LEVEL_SHIFT 46
#define BPFCAP_ID_SEQ_MASK ((1ULL << BPFCAP_ID_LEVEL_SHIFT) - 1)

/*
 * Returns a new packet id, or 0. The caller holds a scratch record, so
 * its (CPU, level) is its own until bpfcap_scratch_put: a program that
 * interrupts it runs at another level and counts on another sequence.
 */
static __always_inline __u64 bpfcap_track_new_id(void)
{
	__u32 zero = 0, cpu = bpf_get_smp_processor_id(), level, key;
	__u32 *nest = bpf_map_lookup_elem(&bpfcap_nest, &zero);
	__u64 *seq;

	if (!nest || *nest == 0 || *nest > BPFCAP_NEST_LEVELS)
		return 0;
	level = *nest - 1;
	key = cpu * BPFCAP_NEST_LEVELS + level;
	seq = bpf_map_lookup_elem(&bpfcap_track_seq, &key);
	if (!seq)
		return 0;
	*seq += 1;
	return ((__u64)cpu << BPFCAP_ID_CPU_SHIFT) | ((__u64)level << BPFCAP_ID_LEVEL_SHIFT) |
	       (*seq & BPFCAP_ID_SEQ_MASK);
}

/*
 * At the filter's decision: with tracking on, a packet the filter rejects
 * is still captured (1, a plain match: no new value for the verifier to
 * follow down the copy path) when it is tracked.
 */
static __always_inline int bpfcap_track_match(__u64 skb, int match)
{
	if (!bpfcap_track_cfg.track || match || !bpfcap_track_any())
		return match;
	return bpf_map_lookup_elem(&bpfcap_tracked, &skb) != NULL;
}

/*
 * What tracking adds to the event of a captured packet, worked out once
 * per packet (bpfcap_track_info) and copied into the event where it is
 * filled (bpfcap_track_apply), so that the map updates stay out of the
 * event code the verifier walks.
 */
struct bpfcap_track_info {
	__u64 id;       /* tracking id, with BPFCAP_EV_TRACKED in flags */
	__u64 parent;   /* parent's tracking id (0: not a clone) */
	__u64 location; /* code that freed the skb (0: unknown) */
	__s32 stack_id; /* with BPFCAP_EV_HAS_STACK in flags; negative: none */
	__u32 flags;    /* BPFCAP_EV_TRACKED, BPFCAP_EV_HAS_STACK */
};

/*
 * Fills ti for a captured skb: with tracking on, its entry's id and parent
 * (the entry made now when skb was not tracked yet); with stacks on, the
 * kernel stack. The caller holds a scratch record.
 */
static __always_inline void bpfcap_track_info(void *ctx, __u64 skb, __u64 location, struct bpfcap_track_info *ti)
{
	struct bpfcap_track_entry *e, fresh = {};

	/*
	 * No branch on what is stored in ti (only on the configuration):
	 * the verifier then need not follow each outcome separately down
	 * the rest of the program. An id of 0 (none could be made) and a
	 * negative stack id (none recorded) are told apart in userspace.
	 */
	ti->location = location;
	if (bpfcap_track_cfg.track) {
		e = bpf_map_lookup_elem(&bpfcap_tracked, &skb);
		if (e) {
			ti->id = e->id;
			ti->parent = e->parent;
		} else {
			fresh.id = bpfcap_track_new_id();
			bpfcap_track_insert(skb, &fresh);
			ti->id = fresh.id;
		}
		ti->flags |= BPFCAP_EV_TRACKED;
	}
	if (bpfcap_track_cfg.stack) {
		ti->stack_id = bpf_get_stackid(ctx, &bpfcap_stacks, 0);
		ti->flags |= BPFCAP_EV_HAS_STACK;
	}
}

/* Copies ti into ev (after packet_id was set to the skb address). */
static __always_inline void bpfcap_track_apply(struct bpfcap_event *ev, const struct bpfcap_track_info *ti)
{
	if (bpfcap_track_cfg.track) {
		ev->packet_id = ti->id;
		ev->parent_id = ti->parent;
	}
	ev->location = ti->location;
	ev->stack_id = ti->stack_id;
	ev->flags |= ti->flags;
}

/* Forgets skb at a hook that frees it, after it was captured there. */
static __always_inline void bpfcap_track_end(__u64 skb)
{
	if (bpfcap_track_cfg.track && bpfcap_track_cfg.frees)
		bpfcap_track_forget(skb);
}

/* Forgets skb: it is being freed (the session's own free hooks). */
static __always_inline void bpfcap_track_free(__u64 skb)
{
	bpfcap_track_forget(skb);
}

/*
 * Tracks child, a clone or copy of parent, when parent is tracked: a new
 * id, parent's id as its parent.
 */
static __always_inline void bpfcap_track_clone(__u64 parent, __u64 child)
{
	struct bpfcap_track_entry *pe, ce = {};

	if (!child || !bpfcap_track_any())
		return;
	pe = bpf_map_lookup_elem(&bpfcap_tracked, &parent);
	if (!pe)
		return;
	ce.parent = pe->id;
	if (!bpfcap_scratch_get())
		return;
	ce.id = bpfcap_track_new_id();
	bpfcap_scratch_put();
	if (ce.id)
		bpfcap_track_insert(child, &ce);
}

#endif /* BPFCAP_PACKET_TRACKING */
