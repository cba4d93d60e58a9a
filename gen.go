// Package bpfcap is the library behind the bpfcap command: it runs capture
// sessions over packet sources (kernel hooks, XDP and tc programs, DPDK
// ports) and writes what they see as pcapng or as one-line summaries.
//
// This file is also the one place that runs code generation: every BPF
// object in bpf/ is compiled by bpf2go from here (make generate).
package bpfcap

// The C constants of the link-type table (package linktype), which the
// BPF objects include: written first.
//go:generate go run ./linktype/internal/cheader bpf/linktype.h

// BPF objects, one line per object. Each is written into the package that
// loads it. Targets are little-endian amd64 and arm64 so that bpf_tracing.h
// knows the register layout.
//
// Go types for the C ABI come from -type, each generated into the one
// package that reads or writes it; -no-global-types keeps bpf2go from
// declaring the maps' and variables' types again in every package whose
// object includes capture.h.

// Types-only objects (never loaded) for the capture core's ABI: the event
// with its flags and directions into perfring/, which decodes it; the
// configuration, its flags and the statistics into hook/, which writes and
// reads them; bpfcap.h's record and configuration into progcap/.
//go:generate go tool bpf2go -go-package perfring -output-dir perfring -output-stem abi -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types -type bpfcap_event -type bpfcap_event_flag -type bpfcap_dir abi bpf/capture_types.c
//go:generate go tool bpf2go -go-package hook -output-dir hook -output-stem abi -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types -type bpfcap_config -type bpfcap_cfg_flag -type bpfcap_stat abi bpf/capture_types.c
//go:generate go tool bpf2go -go-package progcap -output-dir progcap -output-stem abi -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types -type bpfcap_record -type bpfcap_output_config abi bpf/output_types.c

// The example firewall: with bpfcap's hook layout, with Cloudflare's, and without a hook (the benchmarks' baseline).
//go:generate go tool bpf2go -go-package firewall -output-dir examples/firewall -output-stem firewall -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types firewall examples/firewall/bpf/firewall.c
//go:generate go tool bpf2go -go-package firewall -output-dir examples/firewall -output-stem firewall_cloudflare -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf -DFIREWALL_CLOUDFLARE_LAYOUT" -no-global-types firewallCloudflare examples/firewall/bpf/firewall.c
//go:generate go tool bpf2go -go-package firewall -output-dir examples/firewall -output-stem firewall_nohook -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf -DFIREWALL_NO_HOOK" -no-global-types firewallNoHook examples/firewall/bpf/firewall.c

// The XDP capture program (hook slots and interface entry), fexit on an XDP program, and the tc capture program.
//go:generate go tool bpf2go -go-package xdpcap -output-dir xdpcap -output-stem capture -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -no-global-types capture bpf/xdp_capture.c
//go:generate go tool bpf2go -go-package xdpcap -output-dir xdpcap -output-stem fexit -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -no-global-types fexit bpf/xdp_fexit.c
//go:generate go tool bpf2go -go-package tccap -output-dir tccap -output-stem capture -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -no-global-types capture bpf/tc_capture.c

// The tracing probe (kprobe, fentry, fexit, tracepoint, tp_btf, raw_tracepoint), with the Go type of its configuration.
//go:generate go tool bpf2go -go-package probe -output-dir probe -output-stem probe -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types -type probe_config -type bpfcap_track_config probe bpf/probe.c

// XDP test programs that run a spliced filter under BPF_PROG_TEST_RUN.
//go:generate go tool bpf2go -go-package filter -output-dir filter -output-stem filtertest -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types filtertest bpf/filtertest.c

// The capture core's test object (XDP programs that capture every packet through capture.h).
//go:generate go tool bpf2go -go-package hook -output-dir hook -output-stem capturetest -output-suffix _test -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types capturetest bpf/capturetest.c

// The socket-owner learner (cgroup socket programs that fill capture.h's bpfcap_owners).
//go:generate go tool bpf2go -go-package hook -output-dir hook -output-stem owner -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types owner bpf/owner.c

// The bpfcap_output() examples (bpf/bpfcap.h) for `bpfcap prog`: XDP rules, the same without bpfcap_output (cost baseline), tp_btf drops, the same without bpfcap_output.
//go:generate go tool bpf2go -go-package progcap -output-dir examples/progcap -output-stem xdprules -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types xdpRules examples/progcap/bpf/xdp_rules.c
//go:generate go tool bpf2go -go-package progcap -output-dir examples/progcap -output-stem xdprules_nooutput -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf -DPROGCAP_NO_OUTPUT" -no-global-types xdpRulesNoOutput examples/progcap/bpf/xdp_rules.c
//go:generate go tool bpf2go -go-package progcap -output-dir examples/progcap -output-stem drops -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf" -no-global-types drops examples/progcap/bpf/drops.c
//go:generate go tool bpf2go -go-package progcap -output-dir examples/progcap -output-stem drops_nooutput -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -Ibpf -DPROGCAP_NO_OUTPUT" -no-global-types dropsNoOutput examples/progcap/bpf/drops.c
