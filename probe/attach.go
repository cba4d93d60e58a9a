package probe

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// programFor returns the name of the program in bpf/probe.c that serves
// kind.
func programFor(kind Kind) (string, error) {
	switch kind {
	case KindKprobe:
		return "probe_kprobe", nil
	case KindFentry:
		return "probe_fentry", nil
	case KindFexit:
		return "probe_fexit", nil
	case KindTPBTF:
		return "probe_tp_btf", nil
	case KindRawTracepoint:
		return "probe_raw_tp", nil
	case KindTracepoint:
		return "probe_tracepoint", nil
	}
	return "", fmt.Errorf("no program for hook kind %s", kind)
}

// prepareSpec returns a copy of the probe object's spec set up for t: the
// BTF attach target of the program that serves t's kind and the probe's
// configuration (where the sk_buff and the drop reason are, which header a
// record starts at, how paged data is mapped, whether it may load packet
// bytes through skb->head: haveHeadLoads; whether it may call
// bpf_get_func_ip: haveFuncIP).
func prepareSpec(base *ebpf.CollectionSpec, t *Target, header uint32, pages pageMap, headLoads, funcIP bool) (*ebpf.CollectionSpec, string, error) {
	name, err := programFor(t.Kind)
	if err != nil {
		return nil, "", err
	}
	spec := base.Copy()
	ps := spec.Programs[name]
	if ps == nil {
		return nil, "", fmt.Errorf("probe object has no program %s", name)
	}
	cfg := probeConfig{Header: header, Frags: pages.Mode, PageOffset: pages.PageOffset, Vmemmap: pages.Vmemmap}
	if t.Cookie {
		// One program for many functions: the hook index is each
		// function's attach cookie.
		cfg.CookieHook = 1
	}
	if t.AddrHook {
		// The same where links carry no cookie: by the address of
		// the function the kprobe probes (probe_hook_addrs).
		cfg.AddrHook = 1
	}
	switch t.Kind {
	case KindFentry, KindFexit, KindTPBTF:
		ps.AttachTo = t.Name
		if headLoads {
			cfg.HeadLoads = 1
		}
		fallthrough
	case KindKprobe, KindRawTracepoint:
		cfg.SkbArg = uint32(t.SkbArg - 1)
		if t.HasReason {
			cfg.ReasonArg, cfg.HasReason = uint32(t.ReasonArg-1), 1
		}
		switch {
		case t.LocationIsCaller:
			cfg.LocationFrom = locationFromCaller
			if t.Kind == KindFentry {
				// fentry_caller finds the trampoline's frame past the
				// saved arguments, checked with bpf_get_func_ip.
				cfg.ArgRegs = uint32(t.ArgRegs)
				if funcIP {
					cfg.FuncIp = 1
				}
			}
		case t.HasLocation:
			cfg.LocationArg, cfg.LocationFrom = uint32(t.LocationArg-1), locationFromArg
		}
	case KindTracepoint:
		cfg.SkbArg = uint32(t.SkbOffset)
		if t.HasReason {
			cfg.ReasonArg, cfg.HasReason = uint32(t.ReasonOffset), 1
		}
		if t.HasLocation {
			cfg.LocationArg, cfg.LocationFrom = uint32(t.LocationOffset), locationFromArg
		}
	}
	v := spec.Variables["probe_cfg"]
	if v == nil {
		return nil, "", fmt.Errorf("probe object has no probe_cfg")
	}
	if err := v.Set(cfg); err != nil {
		return nil, "", fmt.Errorf("configure probe for %s: %w", t, err)
	}
	return spec, name, nil
}

// attach attaches prog, loaded for t, and returns the link.
func attach(t *Target, prog *ebpf.Program) (link.Link, error) {
	var (
		l   link.Link
		err error
	)
	switch t.Kind {
	case KindKprobe:
		l, err = link.Kprobe(t.Name, prog, nil)
	case KindFentry:
		l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceFEntry})
	case KindFexit:
		l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceFExit})
	case KindTPBTF:
		l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	case KindRawTracepoint:
		l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: t.Name, Program: prog})
	case KindTracepoint:
		l, err = link.Tracepoint(t.Category, t.Name, prog, nil)
	default:
		err = fmt.Errorf("unknown hook kind %s", t.Kind)
	}
	if err != nil {
		return nil, featureError("attach "+t.String(), err)
	}
	return l, nil
}
