// Package hook is the common loader and reader for bpfcap's kernel capture
// programs: every BPF object that includes bpf/capture.h (the tracing
// probe, the XDP and tc capture programs) is loaded through Load, which
// writes the program's configuration, splices the translated tcpdump
// filter into the filter stub (or falls back to filtering in userspace),
// and shares one ring buffer and one statistics map between all hooks of
// a capture session (a Ring).
//
// Source turns the records of a Ring into pcapng packets with wall-clock
// timestamps and readable metadata, and reports per-hook statistics; it
// implements bpfcap.Source for probe/, xdpcap/ and tccap/.
//
// Attaching is the caller's job (links differ per hook kind); Source
// closes the links it is given. Loading needs CAP_BPF and CAP_PERFMON (or
// root): a permission error is reported as ErrPermission, never as "not
// supported".
package hook
