package guestcheck

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfcap/bpfcap/internal/kconfig"
)

// brokenFunction is the function name the self-test substitutes for the
// real one: no kernel has it, so attaching must fail.
const brokenFunction = "bpfcap_vmtest_no_such_function"

// dropFunc is the kernel function every packet drop with a reason goes
// through, and the position of its reason argument.
type dropFunc struct {
	name      string
	reasonArg int
}

// findDropFunc picks the kfree_skb-family function of the running kernel:
// sk_skb_reason_drop (6.11+) or kfree_skb_reason (5.17+), by BTF; on a
// kernel without drop reasons (no enum skb_drop_reason: before 5.17)
// kfree_skb itself, with reasonArg -1.
func findDropFunc(t *testing.T, spec *btf.Spec) dropFunc {
	t.Helper()
	var enum *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &enum); errors.Is(err, btf.ErrNotFound) {
		df := dropFunc{name: "kfree_skb", reasonArg: -1}
		if os.Getenv("BPFCAP_VMTEST_BROKEN_PROBE") != "" {
			t.Logf("BPFCAP_VMTEST_BROKEN_PROBE set: attaching to %s instead of %s", brokenFunction, df.name)
			df.name = brokenFunction
		}
		return df
	}
	for _, name := range []string{"sk_skb_reason_drop", "kfree_skb_reason"} {
		var fn *btf.Func
		if err := spec.TypeByName(name, &fn); err != nil {
			continue
		}
		proto, ok := fn.Type.(*btf.FuncProto)
		if !ok {
			t.Fatalf("BTF func %s has type %T, want a prototype", name, fn.Type)
		}
		for i, p := range proto.Params {
			if p.Name == "reason" {
				df := dropFunc{name: name, reasonArg: i}
				if os.Getenv("BPFCAP_VMTEST_BROKEN_PROBE") != "" {
					t.Logf("BPFCAP_VMTEST_BROKEN_PROBE set: attaching to %s instead of %s", brokenFunction, name)
					df.name = brokenFunction
				}
				return df
			}
		}
		t.Fatalf("BTF func %s has no parameter named reason", name)
	}
	t.Fatal("kernel BTF has neither sk_skb_reason_drop nor kfree_skb_reason: no drop-reason function to probe")
	return dropFunc{}
}

// kernelBTF loads the running kernel's BTF or skips/fails by its config.
func kernelBTF(t *testing.T) *btf.Spec {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		failOrSkip(t, fmt.Errorf("load kernel BTF: %w", err), "CONFIG_DEBUG_INFO_BTF")
	}
	return spec
}

// noSocketReason returns the value of SKB_DROP_REASON_NO_SOCKET in this
// kernel's enum skb_drop_reason (the numbering changes between versions),
// or nil on a kernel without the enum (before 5.17): the programs then
// count every kfree_skb, which still proves that the hook kind works.
func noSocketReason(t *testing.T, spec *btf.Spec) *int32 {
	t.Helper()
	var enum *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &enum); err != nil {
		if errors.Is(err, btf.ErrNotFound) {
			t.Logf("kernel BTF has no enum skb_drop_reason (drop reasons came with Linux 5.17): counting every kfree_skb")
			return nil
		}
		t.Fatalf("kernel BTF: enum skb_drop_reason: %v", err)
	}
	for _, v := range enum.Values {
		if v.Name == "SKB_DROP_REASON_NO_SOCKET" {
			r := int32(v.Value)
			return &r
		}
	}
	t.Fatal("enum skb_drop_reason has no SKB_DROP_REASON_NO_SOCKET")
	return nil
}

// newCounter returns a one-slot array map that the programs add to.
func newCounter(t *testing.T) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "gc_count", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		failOrSkip(t, fmt.Errorf("create array map: %w", err), "CONFIG_BPF_SYSCALL")
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// count reads the counter.
func count(t *testing.T, m *ebpf.Map) uint64 {
	t.Helper()
	var v uint64
	if err := m.Lookup(uint32(0), &v); err != nil {
		t.Fatalf("read counter: %v", err)
	}
	return v
}

// incrementInsns adds one to slot 0 of m and returns retval. R6-R9 survive.
func incrementInsns(m *ebpf.Map, retval int32) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.Mov.Imm(asm.R0, retval).WithSymbol("out"),
		asm.Return(),
	}
}

// reasonCounter counts calls whose reason, loaded from ctx+off with size,
// equals *want; every call when want is nil (no drop reasons).
func reasonCounter(m *ebpf.Map, off int16, size asm.Size, want *int32) asm.Instructions {
	if want == nil {
		return incrementInsns(m, 0)
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, off, size),
		asm.JNE.Imm32(asm.R6, *want, "skip"),
	}
	insns = append(insns, incrementInsns(m, 0)...)
	return append(insns,
		asm.Mov.Imm(asm.R0, 0).WithSymbol("skip"),
		asm.Return(),
	)
}

// loadProgram loads spec or fails/skips according to the config symbols.
func loadProgram(t *testing.T, spec *ebpf.ProgramSpec, syms ...string) *ebpf.Program {
	t.Helper()
	if spec.License == "" {
		spec.License = "GPL"
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		failOrSkip(t, fmt.Errorf("load %v program %s: %w", spec.Type, spec.Name, err), syms...)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// dropsToClosedPort sends UDP datagrams to a closed port on loopback in a
// fresh network namespace until c reaches want or the deadline passes; each
// one is dropped by the kernel with SKB_DROP_REASON_NO_SOCKET.
func dropsToClosedPort(t *testing.T, m *ebpf.Map, want uint64) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("get netns: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New() // also moves this thread into it
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	defer ns.Close()
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("return to original netns: %v", err)
		}
	}()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo in the new netns: %v", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatalf("set lo up: %v", err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("udp socket: %v", err)
	}
	defer conn.Close()
	closed := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} // discard: nobody listens here
	waitFor(t, func() bool {
		conn.WriteToUDP([]byte("bpfcap guestcheck drop"), closed)
		return count(t, m) >= want
	}, func() string { return fmt.Sprintf("counted %d NO_SOCKET drops, want >= %d", count(t, m), want) })
}

// waitFor polls cond until it holds or 20 s pass (guests under TCG are
// slow); msg describes the failure.
func waitFor(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tracefsDir returns the tracefs mount point.
func tracefsDir(t *testing.T) string {
	t.Helper()
	for _, d := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(d, "events")); err == nil {
			return d
		}
	}
	failOrSkip(t, errors.New("tracefs is not mounted at /sys/kernel/tracing or /sys/kernel/debug/tracing"), "CONFIG_TRACING")
	return ""
}

// tracepointFieldOffset reads the offset of field in a tracepoint's format.
func tracepointFieldOffset(t *testing.T, group, name, field string) (int16, asm.Size) {
	t.Helper()
	path := filepath.Join(tracefsDir(t), "events", group, name, "format")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read tracepoint format: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		decl, rest, ok := strings.Cut(strings.TrimSpace(line), ";")
		if !ok || !strings.HasSuffix(decl, " "+field) {
			continue
		}
		var off, size int
		for _, kv := range strings.Split(rest, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), ":")
			switch k {
			case "offset":
				off, _ = strconv.Atoi(v)
			case "size":
				size, _ = strconv.Atoi(v)
			}
		}
		sizes := map[int]asm.Size{1: asm.Byte, 2: asm.Half, 4: asm.Word, 8: asm.DWord}
		if s, ok := sizes[size]; ok && off > 0 {
			return int16(off), s
		}
		t.Fatalf("%s: field %s has offset %d size %d", path, field, off, size)
	}
	t.Fatalf("%s has no field %s", path, field)
	return 0, 0
}

// tracepointReasonArg is the index of the reason argument of the kfree_skb
// tracepoint as raw tracepoint and tp_btf programs see it: the parameter of
// btf_trace_kfree_skb whose type is enum skb_drop_reason, minus the leading
// context pointer those programs do not see. (Prototype parameters carry no
// names in BTF.)
func tracepointReasonArg(t *testing.T, spec *btf.Spec) int {
	t.Helper()
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_kfree_skb", &td); err != nil {
		t.Fatalf("kernel BTF has no btf_trace_kfree_skb: %v", err)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		t.Fatalf("btf_trace_kfree_skb is %T, want a pointer", td.Type)
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok {
		t.Fatalf("btf_trace_kfree_skb points to %T, want a prototype", ptr.Target)
	}
	for i, p := range proto.Params {
		if e, ok := btf.UnderlyingType(p.Type).(*btf.Enum); ok && e.Name == "skb_drop_reason" && i > 0 {
			return i - 1
		}
	}
	t.Fatal("btf_trace_kfree_skb has no enum skb_drop_reason parameter")
	return 0
}

// failOrSkip fails the test when the kernel config enables syms (the
// kernel has the feature, so err is a real failure) and skips otherwise.
func failOrSkip(t *testing.T, err error, syms ...string) {
	t.Helper()
	kconfig.SkipOrFail(t, err, syms...)
	t.Fatalf("unreachable: %v", err) // SkipOrFail never returns for err != nil
}
