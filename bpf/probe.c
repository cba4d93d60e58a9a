// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * probe.c: bpfcap's tracing probe. One program per hook kind (kprobe,
 * fentry, fexit, tp_btf, raw_tracepoint, tracepoint) reads the sk_buff
 * pointer (and the drop reason, for kfree_skb-family hooks) from where
 * probe/ found it, then all share one path: pick the requested header from
 * the skb's header offsets (not skb->data, which moves between layers),
 * run the spliced filter on the bytes it reads, and for a match copy the
 * record up to the snap length, fill the event and submit it. Where the
 * verifier lets BTF-typed programs load through skb->head (Linux 6.17 and
 * later, probe_config.head_loads) and those bytes are linear, the filter
 * reads the packet in place; otherwise they are first copied (linear, then
 * paged frags) into the capture core's scratch record. A packet the filter
 * rejects costs about one instruction's time per instruction on its path
 * (no helper call then): keep that path short.
 *
 * With packet tracking (capture.h's packet-tracking block, configured by
 * bpfcap_track_cfg) the filter's decision is widened to packets matched
 * at an earlier hook, the event carries the packet's tracking id, and a
 * hook that frees the skb forgets it after capturing; kfree_skb's
 * location and the kernel stack are recorded where asked.
 *
 * fentry, fexit and tp_btf programs read the skb with plain (fault-safe)
 * loads; kprobe, raw_tracepoint and tracepoint programs only have its
 * address and read it with bpf_probe_read_kernel, which costs more.
 *
 * Paged data (skb_shinfo frags) is copied after the linear part, up to the
 * snap length, where probe/ could tell where the kernel maps pages (x86-64:
 * page_offset_base and vmemmap_base, see probe_config). Elsewhere records
 * carry only the linear bytes. wire_len is always the true length, so the
 * filter's `len` and the pcapng original length are right either way.
 */
#include "vmlinux.h"
#define BPFCAP_PACKET_TRACKING
#include "capture.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual BSD/GPL";

/* Which header a record starts at (the `proto` keyword). */
enum probe_header {
	PROBE_HDR_AUTO = 0, /* MAC header when the skb has one, else network header */
	PROBE_HDR_ETH = 1,  /* MAC header, Ethernet */
	PROBE_HDR_IP = 2,   /* network header, IPv4 or IPv6 */
	PROBE_HDR_IP4 = 3,  /* network header, IPv4 only */
	PROBE_HDR_IP6 = 4,  /* network header, IPv6 only */
	PROBE_HDR_IEEE80211 = 5, /* MAC header, 802.11 */
};

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* Where the program finds its inputs, written by probe/ before load. */
struct probe_config {
	__u32 skb_arg;    /* 0-based argument index; tracepoint: record offset */
	__u32 reason_arg; /* same, for the drop reason */
	__u32 has_reason; /* whether reason_arg is valid */
	__u32 location_arg; /* same, for kfree_skb's location (the freeing code) */
	__u32 location_from; /* enum probe_location: where the location is */
	__u32 header;     /* enum probe_header */
	__u32 frags;      /* enum probe_frags: how to find paged data */
	__u32 head_loads; /* 1: BTF-typed programs may load packet bytes
			   * through skb->head (the verifier allows it: Linux
			   * 6.17 and later); see capture() */
	__u64 page_offset; /* page_offset_base: its value, or its address */
	__u64 vmemmap;     /* vmemmap_base: the same */
	__u32 cookie_hook; /* the hook index is the attach cookie: one program
			    * serves many hooks (a kprobe-multi link) */
	__u32 addr_hook;   /* the hook index is probe_hook_addrs' entry for the
			    * probed function's address: one program serves
			    * many perf kprobes where links carry no cookie
			    * (before Linux 5.15) */
	__u32 arg_regs;    /* fentry with PROBE_LOC_CALLER: the registers the
			    * function's arguments take (the trampoline saves
			    * them just below its frame; see fentry_caller) */
	__u32 func_ip;     /* 1: bpf_get_func_ip is there (Linux 5.15+) */
};

/* Whether and how paged frags are copied (probe_config.frags). */
enum probe_frags {
	PROBE_FRAGS_NONE = 0,     /* linear data only */
	PROBE_FRAGS_BASES = 1,    /* page_offset and vmemmap are the bases */
	PROBE_FRAGS_BASE_VARS = 2, /* they are the addresses of the kernel's
				    * page_offset_base and vmemmap_base */
};

/*
 * Where a hook finds the location of the code that freed the skb
 * (probe_config.location_from).
 */
enum probe_location {
	PROBE_LOC_NONE = 0,   /* not recorded */
	PROBE_LOC_ARG = 1,    /* location_arg: an argument or record field
			       * (the kfree_skb and consume_skb tracepoints) */
	PROBE_LOC_CALLER = 2, /* the hooked function's return address: the
			       * functions that free an skb, whose callers
			       * those tracepoints report as the location */
};

/* Frags walked per skb: MAX_SKB_FRAGS's default. */
#define PROBE_MAX_FRAGS 17
#define PROBE_PAGE_SHIFT 12
/* Page frame numbers fit in 40 bits: 4 PiB, the 5-level direct map. */
#define PROBE_MAX_PFN_BITS 40

volatile const struct probe_config probe_cfg;

/*
 * Hook indexes by the address of the function a kprobe probes (see
 * probe_config.addr_hook), written from Go; sized from Go.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u32);
} probe_hook_addrs SEC(".maps");

/*
 * What a kprobe's instruction pointer is past the probed address: x86
 * reports the address after the breakpoint (and ftrace-based kprobes do
 * the same), arm64 the probed address itself.
 */
#if defined(__TARGET_ARCH_x86)
#define PROBE_KPROBE_IP_ADJ 1
#define PROBE_REGS_IP(ctx) CTX_LOAD(ctx, 128) /* ip */
#define PROBE_REGS_SP(ctx) CTX_LOAD(ctx, 152) /* sp */
#else
#define PROBE_KPROBE_IP_ADJ 0
#define PROBE_REGS_IP(ctx) CTX_LOAD(ctx, 256) /* pc */
#define PROBE_REGS_LR(ctx) CTX_LOAD(ctx, 240) /* regs[30] */
#endif

/*
 * One 8-byte load from ctx at a constant offset, in asm so that clang cannot
 * turn a switch of such loads into ctx + index * 8, which the verifier
 * refuses ("dereference of modified ctx ptr").
 */
#define CTX_LOAD(ctx, off)                                                   \
	({                                                                   \
		__u64 __v;                                                   \
		asm volatile("%0 = *(u64 *)(%1 + " #off ")" : "=r"(__v) : "r"(ctx)); \
		__v;                                                         \
	})

/*
 * The hook index of this run: bpfcap_cfg.hook, or, where one program
 * serves many hooks, the attach cookie or the probed function's entry in
 * probe_hook_addrs (kprobes only). The flags are load-time constants, so
 * programs of other kinds never reach the helper (which 5.10 lacks) or
 * read their context as registers.
 */
static __always_inline __u32 probe_hook(void *ctx)
{
	if (probe_cfg.cookie_hook)
		return bpf_get_attach_cookie(ctx);
	if (probe_cfg.addr_hook) {
		__u64 ip = PROBE_REGS_IP(ctx) - PROBE_KPROBE_IP_ADJ;
		__u32 *hook = bpf_map_lookup_elem(&probe_hook_addrs, &ip);

		return hook ? *hook : bpfcap_cfg.hook;
	}
	return bpfcap_cfg.hook;
}

/* An argument of a BTF-typed program (fentry, fexit, tp_btf) or of a raw
 * tracepoint. The index is a load-time constant, so the verifier follows
 * only one branch and checks only that load. */
static __always_inline __u64 ctx_arg(void *ctx, __u32 i)
{
	switch (i) {
	case 0: return CTX_LOAD(ctx, 0);
	case 1: return CTX_LOAD(ctx, 8);
	case 2: return CTX_LOAD(ctx, 16);
	case 3: return CTX_LOAD(ctx, 24);
	case 4: return CTX_LOAD(ctx, 32);
	case 5: return CTX_LOAD(ctx, 40);
	case 6: return CTX_LOAD(ctx, 48);
	case 7: return CTX_LOAD(ctx, 56);
	case 8: return CTX_LOAD(ctx, 64);
	case 9: return CTX_LOAD(ctx, 72);
	case 10: return CTX_LOAD(ctx, 80);
	case 11: return CTX_LOAD(ctx, 88);
	}
	return 0;
}

/*
 * A register argument of a kprobe. The registers are the program's
 * context, so a plain load reads them, at the constant offsets of struct
 * pt_regs: the kernel's ABI (ptrace's user_regs_struct on x86-64,
 * user_pt_regs on arm64), as libbpf's bpf_tracing.h has them too. The
 * loads are in asm (CTX_LOAD): a CO-RE relocated field load came out as
 * ctx plus an offset, which the verifier refuses on the context.
 * bpf_probe_read_kernel would cost a helper call per hook and packet.
 */
static __always_inline __u64 regs_arg(struct pt_regs *regs, __u32 i)
{
#if defined(__TARGET_ARCH_x86)
	switch (i) {
	case 0: return CTX_LOAD(regs, 112); /* di */
	case 1: return CTX_LOAD(regs, 104); /* si */
	case 2: return CTX_LOAD(regs, 96);  /* dx */
	case 3: return CTX_LOAD(regs, 88);  /* cx */
	case 4: return CTX_LOAD(regs, 72);  /* r8 */
	}
#else
	switch (i) {
	case 0: return CTX_LOAD(regs, 0);
	case 1: return CTX_LOAD(regs, 8);
	case 2: return CTX_LOAD(regs, 16);
	case 3: return CTX_LOAD(regs, 24);
	case 4: return CTX_LOAD(regs, 32);
	}
#endif
	return 0;
}

/* A field of a classic tracepoint's record, at a load-time offset. */
static __always_inline __u64 record_u64(void *ctx, __u32 off)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (char *)ctx + off);
	return v;
}

static __always_inline __u32 record_u32(void *ctx, __u32 off)
{
	__u32 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (char *)ctx + off);
	return v;
}

/*
 * Reads a field of the sk_buff (or of what it points to). BTF-typed
 * programs (fentry, fexit, tp_btf) get the skb as a typed pointer and read
 * it with plain loads, which the verifier turns into fault-safe ones; the
 * others get an address and go through bpf_probe_read_kernel. direct is a
 * constant in every caller, so clang keeps only one of the two.
 */
#define RD(direct, p, field) ((direct) ? (p)->field : BPF_CORE_READ(p, field))

/* The sk_buff fields every packet needs. */
struct skb_fields {
	unsigned char *head, *data;
	__u32 len, data_len;
	__u16 proto, net, mac; /* protocol (host order), network_header, mac_header */
};

/*
 * Bytes of the sk_buff read in one go (see read_fields), from skb->len
 * rounded down to 8 bytes, so that every field keeps its alignment.
 */
#define PROBE_SKB_WINDOW 128
#define WIN_BASE (bpf_core_field_offset(struct sk_buff, len) & ~7U)

/* Offset of field in the window. */
#define WIN_OFF(field) (bpf_core_field_offset(struct sk_buff, field) - WIN_BASE)

/*
 * Loads field, of type t, from the window w. The offset goes through an
 * empty asm so that clang adds it to the stack pointer rather than OR it
 * in (the verifier refuses bitwise operations on pointers).
 */
#define WIN_LOAD(w, t, field)                                    \
	({                                                       \
		__u64 __o = WIN_OFF(field);                      \
		asm volatile("" : "+r"(__o));                    \
		*(t *)((__u8 *)(w) + __o);                       \
	})

/* Whether a field of size n lies in the window (a load-time constant). */
#define IN_WIN(field, n) (bpf_core_field_offset(struct sk_buff, field) >= WIN_BASE && \
			  WIN_OFF(field) + (n) <= PROBE_SKB_WINDOW)

/*
 * Reads the fields of f. BTF-typed programs load them directly; the
 * others pay a helper call per read, so where the running kernel keeps
 * them within PROBE_SKB_WINDOW bytes from skb->len on (5.x-6.x do) they are
 * read in one call. The offsets are load-time constants: the verifier
 * keeps one branch.
 */
static __always_inline void read_fields(struct sk_buff *skb, struct skb_fields *f, const int direct)
{
	if (!direct && IN_WIN(len, 4) && IN_WIN(data_len, 4) && IN_WIN(protocol, 2) && IN_WIN(network_header, 2) &&
	    IN_WIN(mac_header, 2) && IN_WIN(head, 8) && IN_WIN(data, 8)) {
		__u8 w[PROBE_SKB_WINDOW];

		bpf_probe_read_kernel(w, sizeof(w), (char *)skb + WIN_BASE);
		f->len = WIN_LOAD(w, __u32, len);
		f->data_len = WIN_LOAD(w, __u32, data_len);
		f->proto = bpf_ntohs(WIN_LOAD(w, __u16, protocol));
		f->net = WIN_LOAD(w, __u16, network_header);
		f->mac = WIN_LOAD(w, __u16, mac_header);
		f->head = WIN_LOAD(w, unsigned char *, head);
		f->data = WIN_LOAD(w, unsigned char *, data);
		return;
	}
	f->len = RD(direct, skb, len);
	f->data_len = RD(direct, skb, data_len);
	f->proto = bpf_ntohs(RD(direct, skb, protocol));
	f->net = RD(direct, skb, network_header);
	f->mac = RD(direct, skb, mac_header);
	f->head = RD(direct, skb, head);
	f->data = RD(direct, skb, data);
}

/*
 * Offset from skb->head of the header a record starts at, and its link
 * type; returns -1 when the skb lacks it.
 */
static __always_inline long start_of(const struct skb_fields *f, __u32 *linktype)
{
	__u16 mac = f->mac, net = f->net, proto = f->proto;

	/* mac_header is ~0 until set; network_header 0 until set. */
	int have_mac = mac != (__u16)~0U;
	int have_net = net != 0;

	switch (probe_cfg.header) {
	case PROBE_HDR_AUTO:
		if (have_mac) {
			*linktype = BPFCAP_LINKTYPE_ETHERNET;
			return mac;
		}
		if (have_net && (proto == ETH_P_IP || proto == ETH_P_IPV6)) {
			*linktype = BPFCAP_LINKTYPE_RAW;
			return net;
		}
		return -1;
	case PROBE_HDR_ETH:
	case PROBE_HDR_IEEE80211:
		*linktype = bpfcap_cfg.linktype;
		return have_mac ? mac : -1;
	case PROBE_HDR_IP:
		*linktype = bpfcap_cfg.linktype;
		return have_net && (proto == ETH_P_IP || proto == ETH_P_IPV6) ? net : -1;
	case PROBE_HDR_IP4:
		*linktype = bpfcap_cfg.linktype;
		return have_net && proto == ETH_P_IP ? net : -1;
	case PROBE_HDR_IP6:
		*linktype = bpfcap_cfg.linktype;
		return have_net && proto == ETH_P_IPV6 ? net : -1;
	}
	return -1;
}

/*
 * The device an skb is on (or came in on) and the netns inode of that
 * device, or of the skb's socket when the skb has no device (socket-layer
 * hooks: skb_iif is an ifindex of the socket's netns).
 */
static __always_inline void device_of(struct sk_buff *skb, __u32 *ifindex, __u32 *netns, const int direct)
{
	struct net_device *dev = RD(direct, skb, dev);
	struct sock *sk;
	struct net *net = NULL;

	if (dev) {
		*ifindex = RD(direct, dev, ifindex);
		net = RD(direct, dev, nd_net.net);
	} else {
		*ifindex = RD(direct, skb, skb_iif);
		sk = RD(direct, skb, sk);
		if (sk)
			net = RD(direct, sk, __sk_common.skc_net.net);
	}
	if (net)
		*netns = RD(direct, net, ns.inum);
}

/* The cookie of the skb's socket (0: no socket, or no cookie asked for yet). */
static __always_inline __u64 sock_cookie_of(struct sk_buff *skb, const int direct)
{
	struct sock *sk = RD(direct, skb, sk);

	if (!sk)
		return 0;
	return RD(direct, sk, __sk_common.skc_cookie.counter);
}

/*
 * One step of probe_copy_span: copies the P bit of n (0 or P bytes) to
 * rec->data + off. The destination offset is clamped to MAX - P, which
 * changes nothing at run time when the bit is set (off + the bits of n
 * still to copy <= MAX) and lets the verifier bound the access with a
 * constant size; when it is clear nothing is copied. No branch, so the
 * verifier walks each step once.
 */
#define SPAN_STEP(P)                                                         \
	do {                                                                 \
		__u64 __c = n & (P);                                         \
		__u64 __o = bpfcap_clamp(off, BPFCAP_MAX_DATA - (P));        \
		err |= bpf_probe_read_kernel(rec->data + __o, __c, (void *)src); \
		off += __c;                                                  \
		src += __c;                                                  \
	} while (0)

/*
 * Copies n bytes from the kernel address src to the current scratch
 * record's data + off, where off + n <= BPFCAP_MAX_DATA. Returns a negative
 * value when a read failed.
 *
 * A global function: the verifier checks it once, for any arguments,
 * instead of at every call with the caller's state (which made it track
 * every frag's offset precisely and walk each combination). It takes
 * scalars only (Linux 5.10's verifier refuses other pointers than the
 * context as a global function's arguments) and looks the record up.
 */
__noinline long probe_copy_span(__u64 off, __u64 n, __u64 src)
{
	struct bpfcap_scratch_record *rec = bpfcap_scratch_cur();
	long err = 0;

	if (!rec)
		return -1;

	SPAN_STEP(65536);
	SPAN_STEP(32768);
	SPAN_STEP(16384);
	SPAN_STEP(8192);
	SPAN_STEP(4096);
	SPAN_STEP(2048);
	SPAN_STEP(1024);
	SPAN_STEP(512);
	SPAN_STEP(256);
	SPAN_STEP(128);
	SPAN_STEP(64);
	SPAN_STEP(32);
	SPAN_STEP(16);
	SPAN_STEP(8);
	SPAN_STEP(4);
	SPAN_STEP(2);
	SPAN_STEP(1);
	return err;
}

/*
 * Appends the skb's paged frags (skb_shinfo at shinfo) to the current
 * scratch record's data from cap on, up to end bytes in all, after skipping skip bytes of them (when
 * the record starts past the linear part). Returns the new length. Stops
 * at a frag it cannot map: a net_iov (device memory), a page pointer
 * that is not one of vmemmap's, a failed read.
 *
 * Global, like probe_copy_span, so that the verifier walks the frag loop
 * once rather than once per path of the caller.
 */
__noinline __u64 probe_copy_frags(__u64 shinfo, __u64 cap, __u64 end, __u64 skip)
{
	struct bpfcap_scratch_record *rec = bpfcap_scratch_cur();
	__u64 page_offset = probe_cfg.page_offset, vmemmap = probe_cfg.vmemmap;
	__u32 fsize, f_page, f_len, f_off, i;
	__u64 psize = bpf_core_type_size(struct page);
	const unsigned char *frags;
	int netmem = 0;
	__u8 nr = 0;

	if (probe_cfg.frags == PROBE_FRAGS_BASE_VARS) {
		if (bpf_probe_read_kernel(&page_offset, sizeof(page_offset), (void *)probe_cfg.page_offset) < 0 ||
		    bpf_probe_read_kernel(&vmemmap, sizeof(vmemmap), (void *)probe_cfg.vmemmap) < 0)
			return cap;
	}
	if (bpf_core_field_exists(struct skb_frag___netmem, netmem)) {
		netmem = 1;
		fsize = bpf_core_type_size(struct skb_frag___netmem);
		f_page = bpf_core_field_offset(struct skb_frag___netmem, netmem);
		f_len = bpf_core_field_offset(struct skb_frag___netmem, len);
		f_off = bpf_core_field_offset(struct skb_frag___netmem, offset);
	} else if (bpf_core_field_exists(struct skb_frag___bv, bv_page)) {
		fsize = bpf_core_type_size(struct skb_frag___bv);
		f_page = bpf_core_field_offset(struct skb_frag___bv, bv_page);
		f_len = bpf_core_field_offset(struct skb_frag___bv, bv_len);
		f_off = bpf_core_field_offset(struct skb_frag___bv, bv_offset);
	} else if (bpf_core_field_exists(struct bio_vec, bv_page)) {
		fsize = bpf_core_type_size(struct bio_vec);
		f_page = bpf_core_field_offset(struct bio_vec, bv_page);
		f_len = bpf_core_field_offset(struct bio_vec, bv_len);
		f_off = bpf_core_field_offset(struct bio_vec, bv_offset);
	} else {
		return cap;
	}
	if (!rec || psize == 0 || page_offset == 0 || vmemmap == 0)
		return cap;
	if (bpf_probe_read_kernel(&nr, sizeof(nr), (void *)shinfo + bpf_core_field_offset(struct skb_shared_info, nr_frags)) < 0)
		return cap;
	frags = (const unsigned char *)shinfo + bpf_core_field_offset(struct skb_shared_info, frags);

#pragma clang loop unroll(disable)
	for (i = 0; i < PROBE_MAX_FRAGS; i++) {
		const unsigned char *frag = frags + (__u64)i * fsize;
		__u64 page = 0, va, n;
		__u32 len = 0, off = 0;

		if (i >= nr || cap >= end)
			break;
		if (bpf_probe_read_kernel(&page, sizeof(page), frag + f_page) < 0 ||
		    bpf_probe_read_kernel(&len, sizeof(len), frag + f_len) < 0 ||
		    bpf_probe_read_kernel(&off, sizeof(off), frag + f_off) < 0)
			break;
		/* A net_iov (device memory), or not a struct page of the
		 * vmemmap array: stop rather than read a wrong address. */
		if ((netmem && (page & 1)) || page < vmemmap || (page - vmemmap) % psize ||
		    ((page - vmemmap) / psize) >> PROBE_MAX_PFN_BITS)
			break;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		off += skip;
		len -= skip;
		skip = 0;
		va = page_offset + (((page - vmemmap) / psize) << PROBE_PAGE_SHIFT) + off;
		n = end - cap;
		if (n > len)
			n = len;
		cap = bpfcap_clamp(cap, BPFCAP_MAX_DATA);
		n = bpfcap_clamp(n, BPFCAP_MAX_DATA);
		if (probe_copy_span(cap, n, va) < 0)
			break;
		cap += n;
	}
	return cap;
}

/*
 * Copies the record's first want bytes (at most) into rec->data: the
 * linear part from head + hoff, then the paged frags where their pages can
 * be mapped. linear is the number of linear bytes from the header on
 * (negative: the header starts that far into the frags). Returns the
 * number of bytes copied, or -1 when reading the linear part failed.
 */
static __always_inline long copy_packet(struct bpfcap_scratch_record *rec, struct sk_buff *skb, unsigned char *head,
					 long hoff, long linear, __u32 data_len, __u64 want, const int direct)
{
	__u64 cap_len = linear > 0 ? linear : 0;

	if (cap_len > want)
		cap_len = want;
	cap_len = bpfcap_clamp(cap_len, BPFCAP_MAX_DATA);
	if (cap_len > 0 && bpf_probe_read_kernel(rec->data, cap_len, head + hoff) < 0)
		return -1;
	/* The rest from the paged frags, where their pages can be mapped. */
	if (probe_cfg.frags != PROBE_FRAGS_NONE && data_len > 0 && cap_len < want) {
		/* skb_shinfo at head + end, as a plain number (a global
		 * function takes no kernel pointer): head is read again. */
		__u64 shinfo = 0;
		__u32 end = RD(direct, skb, end);

		bpf_core_read(&shinfo, sizeof(shinfo), &skb->head);
		cap_len = probe_copy_frags(shinfo + end, cap_len, want, linear < 0 ? -linear : 0);
		cap_len = bpfcap_clamp(cap_len, BPFCAP_MAX_DATA);
	}
	return cap_len;
}

/*
 * Fills the event of a record of cap_len bytes of skb's packet, wire_len
 * long, that the filter matched (match).
 */
static __always_inline void fill_event(__u32 hook, struct bpfcap_event *ev, struct sk_buff *skb, long wire,
				       __u64 cap_len, __u32 linktype, int match, __u32 reason, int has_reason,
				       const struct bpfcap_track_info *ti, const int direct)
{
	__u32 ifindex = 0, netns = 0;

	device_of(skb, &ifindex, &netns, direct);
	bpfcap_event_init(ev, wire, cap_len);
	ev->hook = hook;
	bpfcap_event_owner(ev, sock_cookie_of(skb, direct));
	ev->packet_id = (__u64)(long)skb;
	bpfcap_track_apply(ev, ti);
	ev->ifindex = ifindex;
	ev->netns = netns;
	ev->mark = RD(direct, skb, mark);
	ev->queue = RD(direct, skb, queue_mapping);
	ev->linktype = linktype;
	ev->flags |= bpfcap_match_flags(match);
	if (has_reason) {
		ev->reason = reason;
		ev->flags |= BPFCAP_EV_HAS_REASON;
	}
}

static __always_inline __u64 fentry_caller(void *ctx);

/*
 * The common path of every hook kind. The filter runs on only the bytes it
 * can read (bpfcap_filter_head), in place or copied (see the file's
 * comment); a match is then copied up to the snap length, so a packet the
 * filter rejects costs about the same whatever its size.
 */
static __always_inline int capture_skb(void *ctx, struct sk_buff *skb, __u32 reason, int has_reason, __u64 location,
				       const int fentry_location, const int direct)
{
	struct bpfcap_scratch_record *rec;
	struct bpfcap_track_info ti = {};
	int match;
	__u32 ifindex = 0, netns = 0, linktype = 0;
	long hoff, data_off, wire, linear, copied;
	struct skb_fields f;
	unsigned char *head, *data;
	__u32 len, data_len;
	__u64 cap_len, want, fhead;
	__u32 hook, failed;
	/*
	 * A program that serves many hooks (probe_config.cookie_hook,
	 * addr_hook) works out which one only for a packet it keeps or
	 * counts a fault for: on kprobe-multi the cookie is a binary search
	 * through an indirect comparator, paid at every function a rejected
	 * packet passes with `all`. Those hooks do not count the packets
	 * they see (probe/ marks them so). Load-time constant.
	 */
	const int shared = probe_cfg.cookie_hook || probe_cfg.addr_hook;

	if (!skb)
		return 0;
	/* The device is read up front only when it decides; otherwise only
	 * for packets that match, which keeps the non-matching path short. */
	if (bpfcap_cfg.ifindex) {
		device_of(skb, &ifindex, &netns, direct);
		if (!bpfcap_want_dev(ifindex, netns))
			return 0;
	}
	if (bpfcap_has_meta_filter()) {
		if (!bpfcap_cfg.ifindex)
			device_of(skb, &ifindex, &netns, direct);
		if (!bpfcap_want_meta(sock_cookie_of(skb, direct), netns, RD(direct, skb, mark)))
			return 0;
	}
	if (!shared)
		bpfcap_count_seen();

	read_fields(skb, &f, direct);
	hoff = start_of(&f, &linktype);
	if (__builtin_expect(hoff < 0, 0)) {
		bpfcap_hook_stat_inc(probe_hook(ctx), BPFCAP_STAT_NOHDR);
		return 0;
	}
	head = f.head;
	data = f.data;
	len = f.len;
	data_len = f.data_len;
	data_off = data - head;
	/* Length from the chosen header on: skb->len counts from skb->data. */
	wire = (long)len + data_off - hoff;
	/* Linear bytes from the header on; the rest is in paged frags. */
	linear = data_off + (long)(len - data_len) - hoff;
	if (__builtin_expect(wire <= 0 || wire > 0xffffffffL || len < data_len, 0)) {
		bpfcap_hook_stat_inc(probe_hook(ctx), BPFCAP_STAT_NOHDR);
		return 0;
	}

	/* First only what the filter reads (at most the snap length). */
	fhead = bpfcap_filter_head(wire);
	cap_len = 0;
	if (direct && probe_cfg.head_loads && (long)fhead <= linear) {
		/*
		 * The filter reads the linear packet in place, with plain
		 * (fault-safe) loads: no helper call, copy or scratch record
		 * for a packet it rejects (a helper call alone costs more than
		 * the rest of that path).
		 */
		match = bpfcap_match_scratch(head + hoff, fhead, wire);
		match = bpfcap_track_match((__u64)(long)skb, match);
		if (__builtin_expect(!match, 1))
			return 0;
		/* A match takes its scratch record now: ids (bpfcap_track_info)
		 * and nesting are per scratch level. */
		hook = probe_hook(ctx);
		rec = bpfcap_hook_scratch_get(hook);
		if (!rec)
			return 0;
		fhead = 0; /* nothing copied yet */
	} else {
		rec = bpfcap_scratch_take(&failed);
		if (!rec) {
			if (failed < BPFCAP_NSTATS)
				bpfcap_hook_stat_inc(probe_hook(ctx), failed);
			return 0;
		}
		if (fhead > 0) {
			copied = copy_packet(rec, skb, head, hoff, linear, data_len, fhead, direct);
			if (copied < 0) {
				bpfcap_hook_stat_inc(probe_hook(ctx), BPFCAP_STAT_ERROR);
				goto out;
			}
			cap_len = bpfcap_clamp(copied, BPFCAP_MAX_DATA);
		}
		match = bpfcap_match_scratch(rec->data, cap_len, wire);
		match = bpfcap_track_match((__u64)(long)skb, match);
		if (!match)
			goto out;
		hook = probe_hook(ctx);
	}
	bpfcap_hook_stat_inc(hook, BPFCAP_STAT_MATCHED);
	if (!bpfcap_hook_rate_admit(hook, shared ? hook : 0))
		goto out;
	want = bpfcap_snaplen();
	if ((__u64)wire < want)
		want = wire;
	/* fentry finds its caller only for a packet it keeps: a few reads
	 * and a helper call, at every dropped packet otherwise. */
	if (fentry_location)
		location = fentry_caller(ctx);
	bpfcap_track_info(ctx, (__u64)(long)skb, location, &ti);
	/*
	 * Then the whole record, for a match, through the scratch record:
	 * reading it straight into a ring record (bpf_ringbuf_reserve in size
	 * classes) measured no faster per packet at 64 B to 1 KiB and made
	 * the verifier walk the event code once per class (10x the load
	 * time, paid per hook point).
	 */
	if (fhead < want) {
		copied = copy_packet(rec, skb, head, hoff, linear, data_len, want, direct);
		if (copied < 0) {
			bpfcap_hook_stat_inc(hook, BPFCAP_STAT_ERROR);
			goto out;
		}
		cap_len = bpfcap_clamp(copied, BPFCAP_MAX_DATA);
	}
	fill_event(hook, &rec->ev, skb, wire, cap_len, linktype, match, reason, has_reason, &ti, direct);
	bpfcap_submit(ctx, rec, cap_len);
out:
	bpfcap_scratch_put();
	return 0;
}

/* capture_skb, then forgets a tracked skb at a hook that frees it. */
static __always_inline int capture(void *ctx, struct sk_buff *skb, __u32 reason, int has_reason, __u64 location,
				   const int fentry_location, const int direct)
{
	capture_skb(ctx, skb, reason, has_reason, location, fentry_location, direct);
	bpfcap_track_end((__u64)(long)skb);
	return 0;
}

/*
 * The return address of the function a kprobe at its entry is on: the
 * code that called it. x86-64: the call pushed it, and the registers are
 * those of the function's first instruction, so it is at the top of the
 * stack. arm64: the link register holds it.
 */
static __always_inline __u64 kprobe_caller(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	__u64 ret = 0;

	bpf_probe_read_kernel(&ret, sizeof(ret), (void *)PROBE_REGS_SP(regs));
	return ret;
#else
	return PROBE_REGS_LR(regs);
#endif
}

/*
 * Whether the BPF trampoline frame whose rbp is tramp is the one that
 * called this program for the function at ip: its rbp + 8 holds the return
 * into the function, just past its fentry call (5 bytes, 4 more after an
 * endbr64). Then *ret is its rbp + 16: the function's own return address.
 */
#if defined(__TARGET_ARCH_x86)
static __always_inline int tramp_frame(__u64 tramp, __u64 ip, __u64 *ret)
{
	__u64 into = 0;

	if (bpf_probe_read_kernel(&into, sizeof(into), (void *)(tramp + 8)) < 0 || into <= ip || into > ip + 16)
		return 0;
	return bpf_probe_read_kernel(ret, sizeof(*ret), (void *)(tramp + 16)) == 0;
}
#endif

/*
 * The return address of the function an fentry program is on: the code
 * that called it (0: unknown). x86-64 only. A BPF trampoline is called
 * from the function's first instruction, before the function has pushed
 * anything, and starts with push rbp; mov rbp, rsp: its rbp + 8 holds the
 * return into the function and rbp + 16 the function's own return
 * address (where the trampoline returns to when it ran the function
 * itself, for fexit).
 *
 * Two ways to that frame. The program the trampoline calls starts the
 * same way, so its frame pointer (r10 is rbp) points at the trampoline's
 * saved rbp; but where programs run on a private stack (Linux 6.13+) r10
 * is not rbp. And the trampoline saves the function's arguments (ctx)
 * just below its rbp, with a slot for the return value above them when
 * it also runs fexit programs: rbp is ctx + 8 * arg_regs, or 8 more. With
 * bpf_get_func_ip (5.15+) each candidate is checked against the
 * function's address (tramp_frame) and the first that holds is taken;
 * before 5.15 (no private stacks then) the frame pointer's is.
 */
static __always_inline __u64 fentry_caller(void *ctx)
{
#if defined(__TARGET_ARCH_x86)
	__u64 tramp = 0, ret = 0, ip, below;
	void *fp;

	asm volatile("%0 = r10" : "=r"(fp));
	if (!probe_cfg.func_ip) {
		if (bpf_probe_read_kernel(&tramp, sizeof(tramp), fp) < 0 ||
		    bpf_probe_read_kernel(&ret, sizeof(ret), (void *)(tramp + 16)) < 0)
			return 0;
		return ret;
	}
	ip = bpf_get_func_ip(ctx);
	if (bpf_probe_read_kernel(&tramp, sizeof(tramp), fp) == 0 && tramp_frame(tramp, ip, &ret))
		return ret;
	below = (__u64)ctx + 8 * (__u64)(probe_cfg.arg_regs & 15);
	if (tramp_frame(below, ip, &ret) || tramp_frame(below + 8, ip, &ret))
		return ret;
	return 0;
#else
	return 0;
#endif
}

/* The location of a kfree_skb-family hook that finds it in an argument
 * (a BTF-typed program's ctx or a raw tracepoint's args). */
static __always_inline __u64 ctx_location(void *ctx)
{
	return probe_cfg.location_from == PROBE_LOC_ARG ? ctx_arg(ctx, probe_cfg.location_arg) : 0;
}

SEC("kprobe")
int probe_kprobe(struct pt_regs *ctx)
{
	struct sk_buff *skb = (void *)regs_arg(ctx, probe_cfg.skb_arg);
	__u32 reason = probe_cfg.has_reason ? regs_arg(ctx, probe_cfg.reason_arg) : 0;
	__u64 location = probe_cfg.location_from == PROBE_LOC_CALLER ? kprobe_caller(ctx) : 0;

	return capture(ctx, skb, reason, probe_cfg.has_reason, location, 0, 0);
}

SEC("fentry")
int probe_fentry(__u64 *ctx)
{
	struct sk_buff *skb = (void *)ctx_arg(ctx, probe_cfg.skb_arg);
	__u32 reason = probe_cfg.has_reason ? ctx_arg(ctx, probe_cfg.reason_arg) : 0;
	const int caller = probe_cfg.location_from == PROBE_LOC_CALLER;

	return capture(ctx, skb, reason, probe_cfg.has_reason, caller ? 0 : ctx_location(ctx), caller, 1);
}

SEC("fexit")
int probe_fexit(__u64 *ctx)
{
	struct sk_buff *skb = (void *)ctx_arg(ctx, probe_cfg.skb_arg);
	__u32 reason = probe_cfg.has_reason ? ctx_arg(ctx, probe_cfg.reason_arg) : 0;
	__u64 location = ctx_location(ctx);

	return capture(ctx, skb, reason, probe_cfg.has_reason, location, 0, 1);
}

SEC("tp_btf")
int probe_tp_btf(__u64 *ctx)
{
	struct sk_buff *skb = (void *)ctx_arg(ctx, probe_cfg.skb_arg);
	__u32 reason = probe_cfg.has_reason ? ctx_arg(ctx, probe_cfg.reason_arg) : 0;
	__u64 location = ctx_location(ctx);

	return capture(ctx, skb, reason, probe_cfg.has_reason, location, 0, 1);
}

SEC("raw_tracepoint")
int probe_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (void *)ctx_arg(ctx, probe_cfg.skb_arg);
	__u32 reason = probe_cfg.has_reason ? ctx_arg(ctx, probe_cfg.reason_arg) : 0;
	__u64 location = ctx_location(ctx);

	return capture(ctx, skb, reason, probe_cfg.has_reason, location, 0, 0);
}

SEC("tracepoint")
int probe_tracepoint(void *ctx)
{
	struct sk_buff *skb = (void *)record_u64(ctx, probe_cfg.skb_arg);
	__u32 reason = probe_cfg.has_reason ? record_u32(ctx, probe_cfg.reason_arg) : 0;
	__u64 location = probe_cfg.location_from == PROBE_LOC_ARG ? record_u64(ctx, probe_cfg.location_arg) : 0;

	return capture(ctx, skb, reason, probe_cfg.has_reason, location, 0, 0);
}

/*
 * Packet tracking's own hooks. probe_untrack, on the kfree_skb and
 * consume_skb tracepoints the session did not name, and probe_forget
 * forget the freed skb; probe_clone, at the exit of skb_clone or skb_copy (skb, gfp ->
 * new skb), tracks the new skb when the old one is tracked.
 */
SEC("raw_tracepoint")
int probe_untrack(struct bpf_raw_tracepoint_args *ctx)
{
	bpfcap_track_free(ctx_arg(ctx, 0));
	return 0;
}

/* At the entry of the functions that end every free (kfree_skbmem,
 * napi_skb_cache_put), including those no tracepoint reports. */
SEC("fentry")
int probe_forget(__u64 *ctx)
{
	bpfcap_track_free(ctx_arg(ctx, 0));
	return 0;
}

SEC("fexit")
int probe_clone(__u64 *ctx)
{
	bpfcap_track_clone(ctx_arg(ctx, 0), ctx_arg(ctx, 2));
	return 0;
}
