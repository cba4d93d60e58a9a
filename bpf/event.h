/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The record every bpfcap kernel program sends to userspace: a fixed header
 * followed by cap_len bytes of packet data. bpf2go generates its Go
 * declaration (perfring/abi_*_bpfel.go, make generate), which perfring/
 * decodes it with; tests check both against the BTF clang emits for it.
 */
#pragma once

#include <linux/types.h>

#define BPFCAP_COMM_LEN 16

/* Direction of a packet relative to the hook, stored in bpfcap_event.dir. */
enum bpfcap_dir {
	BPFCAP_DIR_UNKNOWN = 0,
	BPFCAP_DIR_IN = 1,
	BPFCAP_DIR_OUT = 2,
};

/* bpfcap_event.flags */
enum bpfcap_event_flag {
	BPFCAP_EV_HAS_REASON = 1 << 0,  /* reason holds an skb_drop_reason */
	BPFCAP_EV_HAS_VERDICT = 1 << 1, /* verdict holds an XDP or tc action */
	BPFCAP_EV_HAS_TASK = 1 << 2,    /* pid and comm are set */
	BPFCAP_EV_UNFILTERED = 1 << 3,  /* the kernel did not filter: userspace must */
	BPFCAP_EV_UNDECIDED = 1 << 4,   /* the kernel filter could not decide: userspace must */
	BPFCAP_EV_TRACKED = 1 << 5,     /* packet_id is a tracking id; captured as a packet matched earlier */
	BPFCAP_EV_HAS_STACK = 1 << 6,   /* stacks are recorded: stack_id, when not negative, names one */
};

struct bpfcap_event {
	__u64 ts;        /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
	__u64 packet_id; /* skb (or xdp_buff) address; same skb, same id */
	__u32 hook;      /* hook index from the program's config */
	__u32 wire_len;  /* packet length from the captured header on */
	__u32 cap_len;   /* bytes of packet data that follow this header */
	__u32 ifindex;   /* device, 0 if unknown */
	__u32 netns;     /* network namespace inode, 0 if unknown */
	__u32 mark;      /* skb->mark */
	__u32 pid;       /* tgid of the current task */
	__u32 reason;    /* enum skb_drop_reason, with BPFCAP_EV_HAS_REASON */
	__s32 verdict;   /* XDP or tc action, with BPFCAP_EV_HAS_VERDICT */
	__u32 queue;     /* rx queue index */
	__u16 linktype;  /* pcap LINKTYPE_* of the data */
	__u8 dir;        /* enum bpfcap_dir */
	__u8 flags;      /* enum bpfcap_event_flag */
	__u32 _pad;
	char comm[BPFCAP_COMM_LEN];
	__u64 parent_id; /* tracking id of the packet this one is a clone of, 0 if none */
	__u64 location;  /* kernel text address that freed the skb (kfree_skb's location), 0 if none */
	__s32 stack_id;  /* kernel stack id, with BPFCAP_EV_HAS_STACK (negative: none recorded) */
	__u32 _pad2;
};
