package probe

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestTraceProgramsVerify loads every program of bpf/probe.c with every
// header mode and with and without a drop reason, so a verifier refusal on
// some kernel shows up here rather than at a user's first capture.
// fentry/fexit are loaded where the kernel accepts fentry programs.
func TestTraceProgramsVerify(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	// Load with paged-frag copying on even where the bases are unknown
	// (the values only matter at run time), so its code is verified on
	// every kernel.
	pages := pageMap{Mode: fragsBaseVars, PageOffset: x86PageOffsetBase, Vmemmap: x86VmemmapBase}
	fentryErr := probeTracing(ebpf.AttachTraceFEntry, "ip_rcv", "fentry:ip_rcv")
	// The copying path everywhere, and where the verifier allows loads
	// through skb->head, the in-place filter path too.
	headLoads := []bool{false}
	if haveHeadLoads() {
		headLoads = append(headLoads, true)
	}
	for _, spec := range []string{"kprobe:ip_rcv", "tp_btf:kfree_skb", "raw_tp:kfree_skb", "tracepoint:skb:kfree_skb", "fentry:ip_rcv", "fexit:ip_rcv", "kprobe:sk_skb_reason_drop", "fentry:sk_skb_reason_drop"} {
		// Each spec is a subtest, so a program this kernel cannot load is
		// a skip the matrix judges (and fails where the kernel has it),
		// never a pass that verified nothing.
		t.Run(spec, func(t *testing.T) {
			s := mustParse(t, spec)
			var tg *Target
			switch s.Kind {
			case KindFentry, KindFexit, KindKprobe:
				// Kprobe programs load without CONFIG_KPROBES; only
				// attaching needs it.
				if s.Kind != KindKprobe {
					kconfig.SkipOrFail(t, fentryErr, "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS")
				}
				params, err := funcParams(r.Kernel(), s.Name)
				if errors.Is(err, errNotFound) && s.Name == "sk_skb_reason_drop" {
					// The drop function of 6.11+; older kernels drop in
					// kfree_skb_reason, which kprobe:ip_rcv's program covers.
					err = fmt.Errorf("%w: %v", ebpf.ErrNotSupported, err)
					kconfig.SkipOrFailFeature(t, err, "function sk_skb_reason_drop", "6.11")
				}
				if err != nil {
					t.Fatal(err)
				}
				tg = &Target{Spec: s, Kind: s.Kind, Name: s.Name, SkbArg: skbArgs(params)[0], ArgRegs: argRegs(params)}
				if ra := reasonArg(params); ra != 0 {
					tg.ReasonArg, tg.HasReason = ra, true
				}
				// The drop function's programs read their caller as the
				// location.
				if s.Kind != KindFexit && callerLocation(s.Name) {
					tg.HasLocation, tg.LocationIsCaller = true, true
				}
			default:
				var err error
				if tg, err = r.Resolve(s); err != nil {
					t.Fatalf("%s: %v", spec, err)
				}
			}
			for header := uint32(headerAuto); header <= headerIEEE80211; header++ {
				for _, hl := range headLoads {
					base, err := loadProbe()
					if err != nil {
						t.Fatal(err)
					}
					cs, name, err := prepareSpec(base, tg, header, pages, hl, haveFuncIP(r.Kernel()))
					if err != nil {
						t.Fatal(err)
					}
					for n := range cs.Programs {
						if n != name {
							delete(cs.Programs, n)
						}
					}
					cs.Maps["bpfcap_scratch"].MaxEntries = 1
					cs.Maps["bpfcap_perf"].MaxEntries = 1
					coll, err := ebpf.NewCollection(cs)
					if err != nil {
						t.Errorf("%s (%s, header %d, reason %v, head loads %v): %v", spec, name, header, tg.HasReason, hl, err)
						continue
					}
					coll.Close()
				}
			}
		})
	}
}

// TestProbeConfigLayout: probeConfig, written into the program's .rodata,
// has struct probe_config's layout (bpf/probe.c), padding included.
func TestProbeConfigLayout(t *testing.T) {
	spec, err := loadProbe()
	if err != nil {
		t.Fatal(err)
	}
	testutils.CheckStructLayout(t, spec.Types, "probe_config", reflect.TypeFor[probeConfig]())
}

// TestHeadLoads: where the verifier allows loads through skb->head
// (read-only untrusted memory, Linux 6.17), haveHeadLoads says so, and
// the probe filters the linear packet in place rather than copying it
// with a helper call first.
func TestHeadLoads(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	var err error
	if !haveHeadLoads() {
		err = fmt.Errorf("%w: the verifier refuses loads through skb->head", ebpf.ErrNotSupported)
	}
	kconfig.SkipOrFailFeature(t, err, "BTF-typed loads through skb->head", "6.17")
}
