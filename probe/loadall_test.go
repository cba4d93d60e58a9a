package probe

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestAttachMultiRefused: a function the kernel refuses in a kprobe-multi
// attach is isolated and returned with why; the other functions of the
// set are still attached, in as few links as the halving leaves.
func TestAttachMultiRefused(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	kconfig.SkipOrFail(t, r.HaveKprobeMulti(), "CONFIG_FPROBE")
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceKprobeMulti,
		Instructions: trivialInsns, License: "GPL",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	names := []string{"ip_rcv", "ip_local_deliver", "bpfcap_no_such_function", "ip_output"}
	var targets []*Target
	for _, n := range names {
		targets = append(targets, &Target{Kind: KindKprobe, Name: n, SkbArg: 1, Multi: true, Cookie: true})
	}
	links, refused := attachMulti(prog, targets, []int{0, 1, 2, 3})
	defer func() {
		for _, l := range links {
			l.link.Close()
		}
	}()
	if len(refused) != 1 || refused[2] == nil {
		t.Fatalf("refused %v, want only %s", refused, names[2])
	}
	var attached []int
	for _, l := range links {
		attached = append(attached, l.idxs...)
	}
	if len(attached) != 3 || len(links) > 2 {
		t.Errorf("%d links attach targets %v, want 0, 1 and 3 in at most two", len(links), attached)
	}
}
