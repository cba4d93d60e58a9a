package main

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/probe"
	"github.com/bpfcap/bpfcap/tccap"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// errorHint returns the next step for an error a library reported as a
// fact, or "" when the error's own words say enough (or an errorWithHint
// said it already).
func errorHint(err error) string {
	var hinted *errorWithHint
	if errors.As(err, &hinted) {
		return ""
	}
	var ae *filter.AncillaryError
	if errors.As(err, &ae) {
		switch ae.Field() {
		case "pkttype":
			return "`inbound` and `outbound` test the direction a socket saw the packet in, which no bpfcap hook has: pick the direction with the hook instead (bpfcap tc dev IF ingress|egress, or -Q in|out; XDP sees inbound packets only)"
		case "ifindex":
			return "`ifindex` reads the interface a socket saw: use dev IF (-i IF) instead"
		}
		return "the filter reads data only a socket has (Linux ancillary data): leave that test out"
	}
	return captureHint(err)
}

// captureHint returns the next step for an error of a capture library
// (probe, tccap, xdpcap, hook, and the optional ones: platformHint), or "".
func captureHint(err error) string {
	var hp *probe.HookPointError
	if errors.As(err, &hp) {
		if hp.Pattern != "" {
			return "try `bpfcap list " + hp.Pattern + "`"
		}
		return "run `bpfcap list` for the hook points this kernel has"
	}
	var fe *probe.FilterError
	if errors.As(err, &fe) && (fe.Proto == "ip" || fe.Proto == "ip4" || fe.Proto == "ip6") {
		// Hook globs and all default to proto ip (patternProto).
		return "proto " + fe.Proto + " starts packets at the network header: filters on link-layer fields (ether, vlan, arp) need proto eth"
	}
	var ns *xdpcap.NoSlotError
	if errors.As(err, &ns) {
		return "leave " + ns.Action.String() + " out of --actions"
	}
	switch {
	case errors.Is(err, tccap.ErrNoTCX):
		return "use --tc-mode clsact"
	case errors.Is(err, xdpcap.ErrBusy):
		return "stop that capture or pick other --actions"
	case errors.Is(err, xdpcap.ErrHasProgram):
		return "instrument it: end every path with `return xdpcap_exit(ctx, &xdpcap_hook, action);` (bpf/xdpcap.h), pin the hook map and run `bpfcap xdp PIN`"
	case errors.Is(err, hook.ErrPermission):
		return "run bpfcap as root (e.g. with sudo)"
	}
	return platformHint(err)
}

// errorWithHint is an error followed by the next step (errorHint's).
type errorWithHint struct {
	err  error
	hint string
}

func (e *errorWithHint) Error() string { return e.err.Error() + "; " + e.hint }
func (e *errorWithHint) Unwrap() error { return e.err }

// withHint adds errorHint's next step to err's message, for errors that
// are returned rather than printed by exitCode.
func withHint(err error) error {
	if err == nil {
		return nil
	}
	if hint := errorHint(err); hint != "" {
		return &errorWithHint{err: err, hint: hint}
	}
	return err
}

// countSeenHint follows "packets seen are not counted" in the interface
// descriptions of tc and XDP captures.
const countSeenHint = "--count-seen counts them"

// noticeWriter writes the capture libraries' notices, one line each, on w
// with bpfcap's prefix.
type noticeWriter struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
}

// newNoticeWriter returns a noticeWriter on w, or nil when w is nil.
func newNoticeWriter(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return &noticeWriter{w: w}
}

// Write prefixes each complete line of p with "bpfcap: "; a line without
// its newline waits for the rest.
func (n *noticeWriter) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.partial = append(n.partial, p...)
	for {
		i := bytes.IndexByte(n.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := append([]byte("bpfcap: "), n.partial[:i+1]...)
		n.partial = n.partial[i+1:]
		if _, err := n.w.Write(line); err != nil {
			return len(p), err
		}
	}
}
