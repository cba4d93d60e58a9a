package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/bpfcap/bpfcap/linktype"
)

// dropHook is the hook of the bpfcap-drops interface: the kfree_skb BTF
// tracepoint fires for every dropped sk_buff and carries the drop reason
// (Linux 5.17), which bpfcap puts in each packet's comment.
const dropHook = "tp_btf:kfree_skb"

// extcapValues are the option values of one extcap call: what Wireshark
// passed, else the option's default.
type extcapValues struct {
	ifc *extcapInterface
	set map[string]string
}

// get returns the value of option call: the one given, else the
// option's default (for a selector or radio: its default value).
func (v extcapValues) get(call string) string {
	if s, ok := v.set[call]; ok {
		return s
	}
	for _, a := range v.ifc.args {
		if a.call != call {
			continue
		}
		for _, val := range a.values {
			if val.def {
				return val.value
			}
		}
		return a.def
	}
	return ""
}

// flag reports whether the boolflag option call was given.
func (v extcapValues) flag(call string) bool {
	_, ok := v.set[call]
	return ok
}

// number returns option call as a number in [lo, hi].
func (v extcapValues) number(call string, lo, hi int) (int, error) {
	s := v.get(call)
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("--%s %q: want a number from %d to %d", call, s, lo, hi)
	}
	return n, nil
}

// extcapInterfaces returns the interfaces bpfcap offers, in the order
// Wireshark lists them.
func extcapInterfaces() []extcapInterface {
	ifaces := []extcapInterface{
		dropsInterface(), traceInterface(), tcInterface(), xdpInterface(), progInterface(),
	}
	return append(ifaces, platformExtcapInterfaces()...)
}

// findExtcapInterface returns the interface of ifaces called name.
func findExtcapInterface(ifaces []extcapInterface, name string) (*extcapInterface, error) {
	var names []string
	for i := range ifaces {
		if ifaces[i].name == name {
			return &ifaces[i], nil
		}
		names = append(names, ifaces[i].name)
	}
	if name == "" {
		return nil, fmt.Errorf("no --extcap-interface given: bpfcap offers %s", strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("unknown extcap interface %q: bpfcap offers %s", name, strings.Join(names, ", "))
}

// ethernetDLT is the DLT of interfaces whose packets are Ethernet frames.
var ethernetDLT = dltSentence(linktype.Ethernet)

// Options every kernel capture interface has.
var (
	snaplenArg = extcapArg{call: "snaplen", display: "Snap length", typ: "unsigned", def: "65536", rng: "1,65536",
		tooltip: "bytes kept of each packet (the original length is always recorded)", group: "Capture"}
	bufferArg = extcapArg{call: "buffer-size", display: "Buffer size (KiB)", typ: "unsigned", def: "8192", rng: "64,4194304",
		tooltip: "size of the kernel ring buffer that holds packets until bpfcap reads them", group: "Capture"}
	perfArg = extcapArg{call: "perf", display: "Use a perf buffer", typ: "boolflag",
		tooltip: "use a per-CPU perf buffer instead of the BPF ring buffer (kernels before 5.8)", group: "Capture"}
	logArg = extcapArg{call: "log-file", display: "Log file", typ: "fileselect",
		tooltip: "append bpfcap's notices and per-hook statistics to this file (Wireshark reports anything an extcap prints on stderr as an error, so bpfcap keeps stderr for errors)", group: "Debug"}
	protoArg = extcapArg{call: "proto", display: "Packets start at", typ: "radio",
		tooltip: "where each captured packet starts: auto (the MAC header, as bpfcap trace does without proto), Ethernet, or IP (packets without the header are counted as skipped; the log says how many)",
		values: []extcapValue{
			{value: "auto", display: "auto", def: true},
			{value: "eth", display: "Ethernet header"},
			{value: "ip", display: "IP header"},
		}}
	devFilterArg = extcapArg{call: "dev", display: "Only device", typ: "string", placeholder: "any",
		tooltip: "capture only packets on this network device (empty: any device)", validation: `^[^/\s]*$`}
)

// kernelCaptureFlags returns the bpfcap flags of the common options.
func kernelCaptureFlags(v extcapValues) ([]string, error) {
	snap, err := v.number("snaplen", 1, 65536)
	if err != nil {
		return nil, err
	}
	flags := []string{"-s", strconv.Itoa(snap)}
	if v.get("buffer-size") != "" {
		kib, err := v.number("buffer-size", 64, 4<<20)
		if err != nil {
			return nil, err
		}
		flags = append(flags, "-B", strconv.Itoa(kib))
	}
	if v.flag("perf") {
		flags = append(flags, "--perf")
	}
	return flags, nil
}

// protoWords returns `proto P` for a proto other than auto.
func protoWords(v extcapValues) []string {
	if p := v.get("proto"); p != "" && p != "auto" {
		return []string{"proto", p}
	}
	return nil
}

// devFlags returns -i DEV when a device was named.
func devFlags(v extcapValues) []string {
	if d := v.get("dev"); d != "" {
		return []string{"-i", d}
	}
	return nil
}

// dropsInterface: every dropped sk_buff, with its drop reason.
func dropsInterface() extcapInterface {
	return extcapInterface{
		name:        "bpfcap-drops",
		display:     "bpfcap: kfree_skb drops",
		dlt:         ethernetDLT,
		filterProto: "eth",
		args:        []extcapArg{devFilterArg, protoArg, snaplenArg, bufferArg, perfArg, logArg},
		command: func(v extcapValues) ([]string, []string, error) {
			flags, err := kernelCaptureFlags(v)
			if err != nil {
				return nil, nil, err
			}
			flags = append(flags, devFlags(v)...)
			return append([]string{"trace"}, flags...), append([]string{dropHook}, protoWords(v)...), nil
		},
	}
}

// traceInterface: the sk_buffs that reach the kernel functions or
// tracepoints the user names.
func traceInterface() extcapInterface {
	hooks := extcapArg{call: "hooks", display: "Hooks", typ: "string", def: "tp_btf:net_dev_queue", required: true,
		placeholder: "kprobe:ip_rcv tp_btf:net_dev_queue",
		tooltip:     "hook specs separated by spaces: kprobe:FUNC[:argN], fentry:FUNC, fexit:FUNC, tracepoint:CAT:NAME, tp_btf:NAME, raw_tp:NAME (bpfcap list PATTERN shows the functions that take an sk_buff)",
		validation:  `^\s*[a-z_]+:[^\s]+(\s+[a-z_]+:[^\s]+)*\s*$`}
	return extcapInterface{
		name:        "bpfcap-trace",
		display:     "bpfcap: kernel functions and tracepoints",
		dlt:         ethernetDLT,
		filterProto: "eth",
		args:        []extcapArg{hooks, devFilterArg, protoArg, snaplenArg, bufferArg, perfArg, logArg},
		command: func(v extcapValues) ([]string, []string, error) {
			specs := strings.Fields(v.get("hooks"))
			if len(specs) == 0 {
				return nil, nil, errors.New("--hooks: name at least one hook, e.g. tp_btf:net_dev_queue or kprobe:ip_rcv")
			}
			for _, s := range specs {
				if strings.HasPrefix(s, "-") {
					return nil, nil, fmt.Errorf("--hooks: %q is not a hook spec (e.g. kprobe:ip_rcv)", s)
				}
			}
			flags, err := kernelCaptureFlags(v)
			if err != nil {
				return nil, nil, err
			}
			flags = append(flags, devFlags(v)...)
			return append([]string{"trace"}, flags...), append(specs, protoWords(v)...), nil
		},
	}
}

// hostDevices returns the network devices of bpfcap's network namespace
// as selector values.
func hostDevices() []extcapValue {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var vals []extcapValue
	for _, ifc := range ifs {
		vals = append(vals, extcapValue{value: ifc.Name, display: ifc.Name})
	}
	return vals
}

// tcInterface: both directions (or one) of a device at tc.
func tcInterface() extcapInterface {
	return extcapInterface{
		name:        "bpfcap-tc",
		display:     "bpfcap: tc ingress and egress",
		dlt:         ethernetDLT,
		filterProto: "eth",
		args: []extcapArg{
			{call: "dev", display: "Device", typ: "selector", required: true, values: hostDevices(),
				tooltip: "the network device whose tc ingress and egress bpfcap attaches to"},
			{call: "direction", display: "Direction", typ: "radio", tooltip: "which packets: received (ingress), sent (egress) or both",
				values: []extcapValue{{value: "both", display: "both", def: true}, {value: "ingress", display: "ingress"}, {value: "egress", display: "egress"}}},
			{call: "tc-mode", display: "Attach with", typ: "selector", tooltip: "TCX (Linux 6.6) or a cls_bpf filter on a clsact qdisc; auto picks TCX where the kernel has it",
				values: []extcapValue{{value: "auto", display: "auto", def: true}, {value: "tcx", display: "TCX"}, {value: "clsact", display: "clsact"}}},
			snaplenArg, bufferArg, perfArg, logArg,
		},
		command: func(v extcapValues) ([]string, []string, error) {
			dev := v.get("dev")
			if dev == "" {
				return nil, nil, errors.New("--dev: name the device to capture at tc, e.g. --dev eth0")
			}
			flags, err := kernelCaptureFlags(v)
			if err != nil {
				return nil, nil, err
			}
			flags = append(flags, "--tc-mode", v.get("tc-mode"))
			return append([]string{"tc"}, flags...), []string{"dev", dev, v.get("direction")}, nil
		},
	}
}

// xdpInterface: inside an instrumented XDP program (with verdicts), or at
// XDP entry of a device.
func xdpInterface() extcapInterface {
	return extcapInterface{
		name:        "bpfcap-xdp",
		display:     "bpfcap: XDP",
		dlt:         ethernetDLT,
		filterProto: "eth",
		args: []extcapArg{
			{call: "pin", display: "xdpcap hook", typ: "fileselect", mustExist: true,
				tooltip: "the hook map an XDP program built with bpf/xdpcap.h pinned (e.g. /sys/fs/bpf/xdpcap_hook): packets come with the program's verdict"},
			{call: "xdp-dev", display: "or device", typ: "string", placeholder: "eth0", validation: `^[^/\s]*$`,
				tooltip: "instead of a hook: capture at XDP on this device (its XDP program's verdicts where the kernel allows fexit on it)"},
			{call: "actions", display: "Actions", typ: "string", def: "all",
				validation: `^(all|(aborted|drop|pass|tx|redirect)(,(aborted|drop|pass|tx|redirect))*)$`,
				tooltip:    "with a hook: the verdicts to capture, comma-separated aborted,drop,pass,tx,redirect, or all"},
			snaplenArg, bufferArg, perfArg, logArg,
		},
		command: func(v extcapValues) ([]string, []string, error) {
			pin, dev := v.get("pin"), v.get("xdp-dev")
			if (pin == "") == (dev == "") {
				return nil, nil, errors.New("bpfcap-xdp: give either --pin (the pinned xdpcap hook) or --xdp-dev (a device)")
			}
			flags, err := kernelCaptureFlags(v)
			if err != nil {
				return nil, nil, err
			}
			if dev != "" {
				if a := v.get("actions"); a != "all" {
					return nil, nil, fmt.Errorf("--actions %s: verdicts are known only with --pin (an instrumented program's hook)", a)
				}
				return append([]string{"xdp"}, flags...), []string{"dev", dev}, nil
			}
			flags = append(flags, "--actions", v.get("actions"))
			return append([]string{"xdp"}, flags...), []string{pin}, nil
		},
	}
}

// progInterface: the packets a BPF program emits with bpfcap_output()
// (bpf/bpfcap.h), through `bpfcap prog`.
func progInterface() extcapInterface {
	return extcapInterface{
		name:        "bpfcap-prog",
		display:     "bpfcap: packets a BPF program emits (bpfcap.h)",
		dlt:         ethernetDLT,
		filterProto: "eth",
		args: []extcapArg{
			{call: "prog-id", display: "Program id", typ: "unsigned", tooltip: "the program's id (bpftool prog show)"},
			{call: "prog-pinned", display: "or pinned program", typ: "fileselect", mustExist: true, tooltip: "the program's path in bpffs"},
			{call: "prog-name", display: "or program name", typ: "string", validation: `^[^\s]*$`, tooltip: "the program's name"},
			snaplenArg, logArg,
		},
		command: func(v extcapValues) ([]string, []string, error) {
			var words []string
			for _, s := range []struct{ call, word string }{{"prog-id", "id"}, {"prog-pinned", "pinned"}, {"prog-name", "name"}} {
				if val := v.get(s.call); val != "" {
					if words != nil {
						return nil, nil, errors.New("bpfcap-prog: give one of --prog-id, --prog-pinned and --prog-name")
					}
					words = []string{s.word, val}
				}
			}
			if words == nil {
				return nil, nil, errors.New("bpfcap-prog: say which program: --prog-id, --prog-pinned or --prog-name")
			}
			snap, err := v.number("snaplen", 1, 65536)
			if err != nil {
				return nil, nil, err
			}
			return []string{"prog", "-s", strconv.Itoa(snap)}, words, nil
		},
	}
}
