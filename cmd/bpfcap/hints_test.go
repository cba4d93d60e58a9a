package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/probe"
	"github.com/bpfcap/bpfcap/tccap"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// TestHintInbound: `inbound` surfaces as what to do, not only as the
// translator's ancillary-data refusal: in `filter -d` and in the error a
// capture ends with.
func TestHintInbound(t *testing.T) {
	out, _, err := runFilterCLI(t, nil, "-d", "inbound")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no capture can run this filter", "ingress|egress", "-Q in|out"} {
		if !strings.Contains(out, want) {
			t.Errorf("filter -d inbound lacks %q:\n%s", want, out)
		}
	}
	var stderr bytes.Buffer
	err = fmt.Errorf("load capture program: userspace filter: %w", &filter.AncillaryError{PC: 0, Offset: 0xfffff004})
	if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "pick the direction with the hook") {
		t.Errorf("exit %d, stderr %q: want 2 and the direction hint", code, stderr.String())
	}
	stderr.Reset()
	exitCode(fmt.Errorf("x: %w", &filter.AncillaryError{Offset: 0xfffff008}), &stderr)
	if !strings.Contains(stderr.String(), "dev IF") {
		t.Errorf("ifindex hint missing: %q", stderr.String())
	}
}

// TestHintCaptureErrors: the capture libraries report facts; the CLI adds
// the next step (flags, `bpfcap list`, sudo) once, in the error a capture
// command returns and not again in exitCode's hint line.
func TestHintCaptureErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		hint string
	}{
		{&probe.HookPointError{Pattern: "kfree_skbb", Err: errors.New("not found")}, "try `bpfcap list kfree_skbb`"},
		{&probe.HookPointError{Err: errors.New("no sk_buff")}, "run `bpfcap list` for the hook points this kernel has"},
		{&xdpcap.NoSlotError{Pin: "/sys/fs/bpf/h", Slots: 4, Action: xdpcap.Redirect}, "leave redirect out of --actions"},
		{fmt.Errorf("attach tcx ingress: %w", tccap.ErrNoTCX), "use --tc-mode clsact"},
		{fmt.Errorf("hook h: %w", xdpcap.ErrBusy), "stop that capture or pick other --actions"},
		{&xdpcap.HasProgramError{Ifname: "eth0"}, "pin the hook map and run `bpfcap xdp PIN`"},
		{&hook.PermissionError{Op: "attach", Needs: "root"}, "sudo"},
	} {
		err := withHint(fmt.Errorf("capture: %w", c.err))
		if !strings.Contains(err.Error(), c.hint) {
			t.Errorf("%v: lacks %q", err, c.hint)
		}
		var stderr bytes.Buffer
		if code := exitCode(err, &stderr); code != 2 || strings.Count(stderr.String(), c.hint) != 1 || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("exit %d, stderr %q: want 2 and the hint once", code, stderr.String())
		}
	}
	if err := errors.New("plain"); withHint(err) != err {
		t.Error("withHint changed an error without a hint")
	}
}

// TestNoticeWriter: library notices come without a prefix; the CLI's
// writer adds "bpfcap: " to each line, also when a line arrives in parts.
func TestNoticeWriter(t *testing.T) {
	var out bytes.Buffer
	w := newNoticeWriter(&out)
	fmt.Fprintln(w, "one")
	fmt.Fprint(w, "two, ")
	fmt.Fprint(w, "in parts\nthree\n")
	if want := "bpfcap: one\nbpfcap: two, in parts\nbpfcap: three\n"; out.String() != want {
		t.Errorf("%q, want %q", out.String(), want)
	}
	if newNoticeWriter(nil) != nil {
		t.Error("a nil writer became a writer")
	}
}
