/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * vmlinux.h: the few kernel types bpfcap's tracing probe reads, written by
 * hand (not a bpftool dump). Every struct carries preserve_access_index, so
 * clang emits CO-RE relocations and the loader moves each field access to
 * the running kernel's offset: the layouts below only need the right field
 * names and types, not the right order or padding.
 *
 * This file does not define __VMLINUX_H__: capture.h then includes the uapi
 * <linux/bpf.h> for the BPF definitions, which a hand-written file lacks.
 */
#pragma once

#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	int ifindex;
	possible_net_t nd_net;
};

typedef struct {
	__s64 counter;
} atomic64_t;

/* A socket: its netns and its cookie (0 until first asked for). */
struct sock_common {
	possible_net_t skc_net;
	atomic64_t skc_cookie;
};

struct sock {
	struct sock_common __sk_common;
};

/*
 * On 64-bit kernels tail and end are offsets from head
 * (NET_SKBUFF_DATA_USES_OFFSET), which is all bpfcap targets.
 */
struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	unsigned int len;
	unsigned int data_len;
	__u16 queue_mapping;
	int skb_iif;
	__u32 mark;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	unsigned int tail;
	unsigned int end;
	unsigned char *head;
	unsigned char *data;
};

/*
 * Paged data. struct page is only measured (bpf_core_type_size): the
 * probe turns a page pointer into its direct-map address as
 * page_offset_base + (page - vmemmap_base) / sizeof(struct page) * 4096.
 */
struct page {
	unsigned long flags;
};

/*
 * An skb fragment, in the three layouts kernels have used: up to 6.7
 * skb_frag_t is a struct bio_vec; 6.8 and 6.9 have struct skb_frag with
 * the same bv_* fields; 6.10 on have struct skb_frag with a netmem_ref
 * (a page pointer, or a net_iov with bit 0 set) and len/offset. The
 * ___flavor suffixes are dropped when relocating, so both flavors match
 * the kernel's struct skb_frag and bpf_core_field_exists picks the one
 * the running kernel has.
 */
struct bio_vec {
	struct page *bv_page;
	unsigned int bv_len;
	unsigned int bv_offset;
};

struct skb_frag___bv {
	struct page *bv_page;
	unsigned int bv_len;
	unsigned int bv_offset;
};

struct skb_frag___netmem {
	unsigned long netmem;
	unsigned int len;
	unsigned int offset;
};

/*
 * At skb->head + skb->end. frags is only located (bpf_core_field_offset);
 * its element type differs between kernels (see above), and any struct
 * element is compatible for the relocation.
 */
struct skb_shared_info {
	__u8 nr_frags;
	struct bio_vec frags[17];
};

/*
 * The registers a kprobe sees: the argument registers, the instruction
 * pointer, and the stack pointer (x86-64) or link register (arm64,
 * regs[30]) that hold where the function returns to.
 */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long cx;
	unsigned long r8;
	unsigned long r9;
	unsigned long ip;
	unsigned long sp;
};
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
};
#else
#error "bpfcap's probe supports x86-64 and arm64 (bpf2go -target amd64,arm64)"
#endif

#pragma clang attribute pop
