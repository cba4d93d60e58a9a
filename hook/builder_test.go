package hook

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// closeLog records the order in which its closers are closed.
type closeLog struct {
	mu     sync.Mutex
	closed []string
}

type logCloser struct {
	log  *closeLog
	name string
}

func (c logCloser) Close() error {
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	c.log.closed = append(c.log.closed, c.name)
	return nil
}

func (l *closeLog) closer(name string) logCloser { return logCloser{l, name} }

func (l *closeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.closed, ",")
}

// TestBuilderRollback: a capture site that fails after loading and
// attaching returns, and the builder's Close releases everything it was
// given, in reverse order: the hooks' links, the shared links, the
// programs (in a hook or not), the ring, then what outlives the links.
func TestBuilderRollback(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	spec := testSpec(t)
	b, err := NewBuilder(spec, CaptureOptions{Filter: "udp port 53"})
	if err != nil {
		t.Fatal(err)
	}
	var log closeLog
	p0, err := b.Load(spec, Options{Program: "capture_direct", Hook: 0})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if p0.Options.Filter != "udp port 53" || !p0.KernelFilter {
		t.Errorf("program loaded with %+v (kernel filter %v), want the builder's filter in the kernel", p0.Options, p0.KernelFilter)
	}
	b.Hook(Hook{Programs: []*Program{p0}, Links: []io.Closer{log.closer("hook0-a"), log.closer("hook0-b")}})
	b.Detach(log.closer("shared"))
	b.OnClose(log.closer("last"))
	p1, err := b.Load(spec, Options{Program: "capture_scratch", Backend: Scratch, Hook: 1})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ring := b.Ring()
	// The site fails here, before giving p1 to a hook.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := log.String(); got != "hook0-b,hook0-a,shared,last" {
		t.Errorf("closed %s, want hook0-b,hook0-a,shared,last", got)
	}
	if p0.Program != nil || p1.Program != nil {
		t.Errorf("programs left open: %v, %v", p0.Program, p1.Program)
	}
	if ring.Reader() != nil || ring.stats != nil {
		t.Error("ring left open")
	}
	if err := b.Close(); err != nil || log.String() != "hook0-b,hook0-a,shared,last" {
		t.Errorf("second Close: %v, closed %s", err, log.String())
	}
}

// TestBuilderSource: a hook with two programs (one with the filter in
// the kernel, one that captures unfiltered) writes only matching packets
// from both; the description says that packets seen are not counted with
// the caller's hint; the Source owns everything once built (the builder's
// Close does nothing) and detaches in order.
func TestBuilderSource(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	spec := testSpec(t)
	b, err := NewBuilder(spec, CaptureOptions{Filter: "udp port 53", SeenHint: "count them with X"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var log closeLog
	kernel, err := b.Load(spec, Options{Program: "capture_direct", Hook: 3})
	if err != nil {
		t.Fatal(err)
	}
	user, err := b.Load(spec, Options{Program: "capture_direct", Hook: 3, Unfiltered: true})
	if err != nil {
		t.Fatal(err)
	}
	if !kernel.KernelFilter || user.KernelFilter {
		t.Fatalf("kernel filter: %v and %v, want true and false", kernel.KernelFilter, user.KernelFilter)
	}
	b.Hook(Hook{
		Programs:  []*Program{kernel, user},
		Links:     []io.Closer{log.closer("slot-a"), log.closer("slot-b")},
		Interface: pcapng.Interface{Name: "xdp:two", Description: "two programs"},
	})
	b.Detach(log.closer("shared"))
	b.OnClose(log.closer("last"))
	src, err := b.Source(SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := b.Close(); err != nil || log.String() != "" {
		t.Fatalf("builder Close after Source: %v, closed %q", err, log.String())
	}
	ifs := src.Interfaces()
	if len(ifs) != 1 || !strings.HasPrefix(ifs[0].Description, "two programs; "+SeenNotCountedNote+" (count them with X)") {
		t.Fatalf("interfaces %+v", ifs)
	}
	runPackets(t, kernel.Program, 2, frame(17, 53, 100), frame(17, 54, 100))
	runPackets(t, user.Program, 3, frame(17, 53, 100), frame(17, 54, 100))
	got := capture(t, src, 5)
	for _, p := range got {
		if port := fmt.Sprint(p.Data[36], p.Data[37]); port != "0 53" {
			t.Errorf("captured a packet to port %s", port)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	st := src.Stats()
	if len(got) != 5 || st[0].Captured != 5 || st[0].UserFiltered != 3 || st[0].SeenCounted {
		t.Errorf("captured %d, stats %+v: want 5 captured, 3 filtered in userspace, seen not counted", len(got), st[0])
	}
	if got := log.String(); got != "slot-b,slot-a,shared,last" {
		t.Errorf("closed %s, want slot-b,slot-a,shared,last", got)
	}
	if kernel.Program != nil || user.Program != nil {
		t.Error("programs left open")
	}
}

// TestBuilderUnhookedProgram: a program loaded but given to no hook is a
// mistake of the site; Source refuses and the builder still releases it.
func TestBuilderUnhookedProgram(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	spec := testSpec(t)
	b, err := NewBuilder(spec, CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Load(spec, Options{Program: "capture_direct"})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if _, err := b.Source(SourceOptions{}); err == nil || !strings.Contains(err.Error(), "not given to a hook") {
		t.Errorf("Source with an unhooked program: %v", err)
	}
	if err := b.Close(); err != nil || p.Program != nil {
		t.Errorf("Close: %v, program %v", err, p.Program)
	}
}

// TestPermissionErrorType: a PermissionError is ErrPermission and keeps the
// kernel's error.
func TestPermissionErrorType(t *testing.T) {
	kerr := errors.New("operation not permitted")
	err := fmt.Errorf("capture: %w", &PermissionError{Op: "attach tcx ingress", Needs: "CAP_NET_ADMIN and CAP_BPF, or root", Err: kerr})
	if !errors.Is(err, ErrPermission) || !errors.Is(err, kerr) {
		t.Errorf("%v: not ErrPermission or lost the kernel's error", err)
	}
	if want := "capture: attach tcx ingress: needs privilege (CAP_NET_ADMIN and CAP_BPF, or root): operation not permitted"; err.Error() != want {
		t.Errorf("%q, want %q", err, want)
	}
}
