package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/filter"
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
