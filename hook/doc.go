// Package hook is the one builder of bpfcap's kernel capture sources: every
// BPF object that includes bpf/capture.h (the tracing probe, the XDP and tc
// capture programs) is loaded, attached and turned into a bpfcap.Source
// through a Builder.
//
// A Builder creates the Ring (one ring buffer and one statistics map
// shared by every hook of a session), loads programs with Load (which
// writes the program's configuration and splices the translated tcpdump
// filter into the filter stub, or falls back to filtering in userspace),
// keeps what the capture site attached, and on any failure releases it all
// in reverse order. CaptureOptions are the options every site takes
// (probe.Options, tccap.Options and xdpcap.CaptureOptions embed them).
//
// Source turns the records of a Ring into pcapng packets with wall-clock
// timestamps and readable metadata, and reports per-hook statistics; a
// Hook is one capture point with one or more programs.
//
// A new capture site is its BPF C, its attach step (a package whose Open
// uses a Builder), its CLI file and its extcap entry: CONTRIBUTING.md at
// the repository root has the recipe.
//
// Attaching is the site's job (links differ per hook kind); the Builder
// and then the Source close the links they are given. Loading needs
// CAP_BPF and CAP_PERFMON (or root): a permission error wraps
// ErrPermission (often as a *PermissionError), never "not supported".
// Notices (RingOptions.Notices) are one line each, without a prefix.
package hook
