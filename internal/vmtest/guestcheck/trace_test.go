package guestcheck

import (
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// drops is how many NO_SOCKET drops each trace test waits for.
const drops = 3

// x86-64 struct pt_regs offsets of the first argument registers.
var ptRegsArgOffset = []int16{112 /* di */, 104 /* si */, 96 /* dx */, 88 /* cx */, 72 /* r8 */, 64 /* r9 */}

func TestKprobeDropFunction(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	if os.Getenv("BPFCAP_VMTEST_LAZY_SKIP") != "" {
		t.Skip("kprobe not supported (BPFCAP_VMTEST_LAZY_SKIP: deliberate wrong skip for the harness self-test)")
	}
	kconfig.Require(t, "CONFIG_KPROBES")
	spec := kernelBTF(t)
	fn := findDropFunc(t, spec)
	reason := noSocketReason(t, spec)
	m := newCounter(t)
	prog := loadProgram(t, &ebpf.ProgramSpec{
		Name:         "gc_kprobe",
		Type:         ebpf.Kprobe,
		Instructions: reasonCounter(m, ptRegsArgOffset[fn.reasonArg], asm.DWord, reason),
	}, "CONFIG_KPROBES")
	l, err := link.Kprobe(fn.name, prog, nil)
	if err != nil {
		failOrSkip(t, fmt.Errorf("attach kprobe to %s: %w", fn.name, err), "CONFIG_KPROBES")
	}
	defer l.Close()
	dropsToClosedPort(t, m, drops)
	t.Logf("kprobe:%s counted %d drops", fn.name, count(t, m))
}

func testTracing(t *testing.T, at ebpf.AttachType) {
	testutils.RequireRoot(t)
	kconfig.Require(t, "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", "CONFIG_DEBUG_INFO_BTF")
	spec := kernelBTF(t)
	fn := findDropFunc(t, spec)
	reason := noSocketReason(t, spec)
	m := newCounter(t)
	prog := loadProgram(t, &ebpf.ProgramSpec{
		Name:         "gc_tracing",
		Type:         ebpf.Tracing,
		AttachType:   at,
		AttachTo:     fn.name,
		Instructions: reasonCounter(m, int16(8*fn.reasonArg), asm.DWord, reason),
	}, "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", "CONFIG_DEBUG_INFO_BTF")
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		failOrSkip(t, fmt.Errorf("attach %v to %s: %w", at, fn.name, err), "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS")
	}
	defer l.Close()
	dropsToClosedPort(t, m, drops)
	t.Logf("%v:%s counted %d drops", at, fn.name, count(t, m))
}

func TestFentryDropFunction(t *testing.T) {
	testutils.RunsInGuests(t)
	testTracing(t, ebpf.AttachTraceFEntry)
}

func TestFexitDropFunction(t *testing.T) {
	testutils.RunsInGuests(t)
	testTracing(t, ebpf.AttachTraceFExit)
}

func TestTracepointKfreeSkb(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	kconfig.Require(t, "CONFIG_BPF_EVENTS")
	spec := kernelBTF(t)
	reason := noSocketReason(t, spec)
	off, size := tracepointFieldOffset(t, "skb", "kfree_skb", "reason")
	m := newCounter(t)
	prog := loadProgram(t, &ebpf.ProgramSpec{
		Name:         "gc_tp",
		Type:         ebpf.TracePoint,
		Instructions: reasonCounter(m, off, size, reason),
	}, "CONFIG_BPF_EVENTS")
	l, err := link.Tracepoint("skb", "kfree_skb", prog, nil)
	if err != nil {
		failOrSkip(t, fmt.Errorf("attach tracepoint skb/kfree_skb: %w", err), "CONFIG_BPF_EVENTS")
	}
	defer l.Close()
	dropsToClosedPort(t, m, drops)
}

func TestTpBtfKfreeSkb(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	kconfig.Require(t, "CONFIG_BPF_EVENTS", "CONFIG_DEBUG_INFO_BTF")
	spec := kernelBTF(t)
	reason := noSocketReason(t, spec)
	arg := tracepointReasonArg(t, spec)
	m := newCounter(t)
	prog := loadProgram(t, &ebpf.ProgramSpec{
		Name:         "gc_tp_btf",
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     "kfree_skb",
		Instructions: reasonCounter(m, int16(8*arg), asm.DWord, reason),
	}, "CONFIG_BPF_EVENTS", "CONFIG_DEBUG_INFO_BTF")
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		failOrSkip(t, fmt.Errorf("attach tp_btf/kfree_skb: %w", err), "CONFIG_BPF_EVENTS", "CONFIG_DEBUG_INFO_BTF")
	}
	defer l.Close()
	dropsToClosedPort(t, m, drops)
}

func TestRawTracepointKfreeSkb(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	kconfig.Require(t, "CONFIG_BPF_EVENTS")
	spec := kernelBTF(t)
	reason := noSocketReason(t, spec)
	arg := tracepointReasonArg(t, spec)
	m := newCounter(t)
	prog := loadProgram(t, &ebpf.ProgramSpec{
		Name:         "gc_raw_tp",
		Type:         ebpf.RawTracepoint,
		Instructions: reasonCounter(m, int16(8*arg), asm.DWord, reason),
	}, "CONFIG_BPF_EVENTS")
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "kfree_skb", Program: prog})
	if err != nil {
		failOrSkip(t, fmt.Errorf("attach raw_tp/kfree_skb: %w", err), "CONFIG_BPF_EVENTS")
	}
	defer l.Close()
	dropsToClosedPort(t, m, drops)
}
