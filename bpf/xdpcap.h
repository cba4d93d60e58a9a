/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdpcap.h: the exit helper for XDP program authors.
 *
 * An XDP program instrumented for bpfcap ends every path with
 *
 *	return xdpcap_exit(ctx, &xdpcap_hook, XDP_PASS);
 *
 * instead of `return XDP_PASS;`. xdpcap_exit tail-calls the program in the
 * hook map slot for that action and returns the action itself when the slot
 * is empty, so an idle hook costs one failed tail call and nothing else.
 * `bpfcap xdp /sys/fs/bpf/PIN` fills the slots with capture programs that
 * copy matching packets to userspace and return the same action, so the
 * program's behaviour never changes while it is being captured.
 *
 * The hook map is a BPF_MAP_TYPE_PROG_ARRAY with 4-byte keys and values, one
 * slot per XDP action, indexed by the action's value. This is the layout
 * of Cloudflare xdpcap's hook.h (5 slots since 2019, 4 before), so a program
 * instrumented for xdpcap works with bpfcap unchanged and the other way
 * round:
 *
 *	XDPCAP_HOOK(name)       bpfcap layout: a BTF-defined map (".maps") with
 *	                        XDPCAP_HOOK_SLOTS (5) slots, XDP_ABORTED to
 *	                        XDP_REDIRECT.
 *	XDPCAP_HOOK_LEGACY()    Cloudflare xdpcap's layout before 2019: an
 *	                        initializer for a legacy map definition in the
 *	                        "maps" section with 4 slots (XDP_ABORTED to
 *	                        XDP_TX); XDP_REDIRECT is
 *	                        then not capturable (its tail call is out of
 *	                        range and simply falls through).
 *
 * A loader pins the map (Go: package xdpcap, Hook.Pin; libbpf:
 * bpf_map__pin) where bpfcap can find it. Tail calls need kernel 4.2; the
 * capture programs bpfcap puts in the slots need 5.8 (ring buffer) or fall
 * back to a perf buffer.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Slots in a bpfcap-layout hook: one per XDP action, XDP_ABORTED (0) to
 * XDP_REDIRECT (4). */
#define XDPCAP_HOOK_SLOTS 5

/* Slots in a hook of Cloudflare xdpcap's pre-2019 layout: XDP_ABORTED (0) to
 * XDP_TX (3). Its hook.h has declared 5 since, like XDPCAP_HOOK_SLOTS. */
#define XDPCAP_HOOK_LEGACY_SLOTS 4

/* XDPCAP_HOOK(name) declares the hook map `name` in the bpfcap layout. */
#define XDPCAP_HOOK(name)                                      \
	struct {                                               \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY);         \
		__uint(max_entries, XDPCAP_HOOK_SLOTS);        \
		__uint(key_size, sizeof(__u32));               \
		__uint(value_size, sizeof(__u32));             \
	} name SEC(".maps")

/* struct xdpcap_map_def is the legacy map definition loaders read from the
 * "maps" section (the layout of libbpf's old struct bpf_map_def). */
struct xdpcap_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

/* XDPCAP_HOOK_LEGACY() initialises a hook map in Cloudflare xdpcap's pre-2019
 * layout (4 slots in the "maps" section):
 *
 *	struct xdpcap_map_def xdpcap_hook SEC("maps") = XDPCAP_HOOK_LEGACY();
 */
#define XDPCAP_HOOK_LEGACY()                            \
	{                                               \
		.type = BPF_MAP_TYPE_PROG_ARRAY,        \
		.key_size = sizeof(int),                \
		.value_size = sizeof(int),              \
		.max_entries = XDPCAP_HOOK_LEGACY_SLOTS, \
	}

/*
 * xdpcap_exit returns action after exposing the packet to the hook: it
 * tail-calls hook[action] (which returns action itself) and, when that slot
 * is empty or out of range, returns action. Use it as
 * `return xdpcap_exit(ctx, &hook, action);`.
 */
static __always_inline enum xdp_action
xdpcap_exit(struct xdp_md *ctx, void *hook, enum xdp_action action)
{
	/*
	 * One tail call per action, each with a constant index: the JIT
	 * patches those into direct jumps (Linux 5.5), where a variable index
	 * costs an indirect jump (a retpoline on many CPUs). With a constant
	 * action the switch folds away. The (distinct, empty) asm statements
	 * keep clang from merging the calls back into one with a variable
	 * index.
	 */
	switch (action) {
	case XDP_ABORTED:
		bpf_tail_call(ctx, hook, XDP_ABORTED);
		asm volatile("/* xdpcap_exit aborted */" ::: "memory");
		break;
	case XDP_DROP:
		bpf_tail_call(ctx, hook, XDP_DROP);
		asm volatile("/* xdpcap_exit drop */" ::: "memory");
		break;
	case XDP_PASS:
		bpf_tail_call(ctx, hook, XDP_PASS);
		asm volatile("/* xdpcap_exit pass */" ::: "memory");
		break;
	case XDP_TX:
		bpf_tail_call(ctx, hook, XDP_TX);
		asm volatile("/* xdpcap_exit tx */" ::: "memory");
		break;
	case XDP_REDIRECT:
		bpf_tail_call(ctx, hook, XDP_REDIRECT);
		asm volatile("/* xdpcap_exit redirect */" ::: "memory");
		break;
	default:
		bpf_tail_call(ctx, hook, action);
		break;
	}
	return action;
}
