// Package probe implements bpfcap's tracing hooks: captures of the sk_buffs
// that reach a kernel function (kprobe, fentry, fexit) or tracepoint
// (tracepoint, tp_btf, raw_tracepoint).
//
// A hook is written as a spec string such as "kprobe:kfree_skb:arg1" or
// "tracepoint:net:net_dev_xmit". [ParseSpec] checks the grammar only;
// [Resolver] resolves a spec against the running kernel: it finds the
// `struct sk_buff *` argument in the kernel's BTF (or the skbaddr field of a
// classic tracepoint in tracefs), follows functions that were renamed
// across kernel versions, and walks the fallback chain kprobe -> fentry ->
// the function's tracepoint when a hook kind is missing, explaining every
// step in [Target.Notes]. [Source] loads and attaches one BPF program per
// hook, all sharing one ring and one stats map.
//
// The spec parsing that the design places in hook/ lives here: hook/ is the
// common loader that every kind of capture program shares.
package probe
