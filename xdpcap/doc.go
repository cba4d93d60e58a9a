// Package xdpcap is the XDP tail-call hook: the Go side of bpf/xdpcap.h.
//
// For XDP program authors it creates, pins and removes hook maps and patches
// a hook into a cilium/ebpf CollectionSpec, so a program that calls
// xdpcap_exit(ctx, &hook, action) on every exit can be captured by
// `bpfcap xdp PIN`. The hook is a BPF_MAP_TYPE_PROG_ARRAY with 4-byte keys
// and values and one slot per XDP action: Slots (5) in bpfcap's layout and
// in Cloudflare xdpcap's since 2019, LegacySlots (4) in Cloudflare's layout
// before 2019; both are accepted everywhere.
//
// For capture tools it opens a pinned hook, checks that it is one, finds the
// program attributes its owner demands of tail-call targets (expected attach
// type, frags), tells a hook left full by a killed capture from one that a
// running capture still holds, and fills and empties the slots
// (OpenCapture: one capture program per action, bpf/xdp_capture.c). It also
// captures at an interface (OpenDeviceCapture): at XDP entry with its own
// pass-through program where the interface has no XDP program, or with
// fexit on the interface's XDP program where the kernel allows tracing BPF
// programs (bpf/xdp_fexit.c).
//
// Tail calls need Linux 4.2; reading a slot's program ID needs 4.13; XDP
// programs with frags (BPF_F_XDP_HAS_FRAGS) need 5.18.
package xdpcap
