package tracebench

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/probe"
)

// emptyHooks attaches a program that does nothing to each hook point of
// targets the way bpfcap attached its own (kprobe-multi, perf kprobes,
// tp_btf, raw tracepoints, classic tracepoints, fentry and fexit): the cost of the hooks themselves, the peer of `all`'s programs.
// It returns a function that detaches them all.
func emptyHooks(tb testing.TB, targets []*probe.Target) func() {
	tb.Helper()
	var closers []io.Closer
	detach := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	empty := func(spec *ebpf.ProgramSpec) *ebpf.Program {
		spec.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
		spec.License = "GPL"
		p, err := ebpf.NewProgram(spec)
		if err != nil {
			detach()
			tb.Fatalf("load an empty %s program: %v", spec.Type, err)
		}
		closers = append(closers, p)
		return p
	}
	var multi []string
	var kprobe, rawTP, tracepoint *ebpf.Program
	var errs []error
	for _, t := range targets {
		var l link.Link
		var err error
		switch {
		case t.Kind == probe.KindKprobe && t.Multi:
			multi = append(multi, t.Name)
			continue
		case t.Kind == probe.KindKprobe:
			if kprobe == nil {
				kprobe = empty(&ebpf.ProgramSpec{Name: "empty_kprobe", Type: ebpf.Kprobe})
			}
			l, err = link.Kprobe(t.Name, kprobe, nil)
		case t.Kind == probe.KindTPBTF:
			p := empty(&ebpf.ProgramSpec{Name: "empty_tp_btf", Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: t.Name})
			l, err = link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		case t.Kind == probe.KindRawTracepoint:
			if rawTP == nil {
				rawTP = empty(&ebpf.ProgramSpec{Name: "empty_raw_tp", Type: ebpf.RawTracepoint})
			}
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: t.Name, Program: rawTP})
		case t.Kind == probe.KindTracepoint:
			if tracepoint == nil {
				tracepoint = empty(&ebpf.ProgramSpec{Name: "empty_tp", Type: ebpf.TracePoint})
			}
			l, err = link.Tracepoint(t.Category, t.Name, tracepoint, nil)
		case t.Kind == probe.KindFentry || t.Kind == probe.KindFexit:
			at := ebpf.AttachTraceFEntry
			if t.Kind == probe.KindFexit {
				at = ebpf.AttachTraceFExit
			}
			p := empty(&ebpf.ProgramSpec{Name: "empty_tracing", Type: ebpf.Tracing, AttachType: at, AttachTo: t.Name})
			l, err = link.AttachTracing(link.TracingOptions{Program: p, AttachType: at})
		default:
			err = fmt.Errorf("no empty peer for %s", t)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t, err))
			continue
		}
		closers = append(closers, l)
	}
	if len(multi) > 0 {
		p := empty(&ebpf.ProgramSpec{Name: "empty_kmulti", Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceKprobeMulti})
		l, err := link.KprobeMulti(p, link.KprobeMultiOptions{Symbols: multi})
		if err != nil {
			errs = append(errs, fmt.Errorf("kprobe-multi of %d functions: %w", len(multi), err))
		} else {
			closers = append(closers, l)
		}
	}
	if err := errors.Join(errs...); err != nil {
		detach()
		tb.Fatalf("attach the empty peer where bpfcap attached: %v", err)
	}
	return detach
}
