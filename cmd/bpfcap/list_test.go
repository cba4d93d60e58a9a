package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestListKfreeSkb: `bpfcap list kfree_skb` shows the BTF tracepoint, the
// classic tracepoint and functions, each with its sk_buff argument.
// Guest-safe (reads BTF and tracefs only).
func TestListKfreeSkb(t *testing.T) {
	testutils.RunsInGuests(t)
	var out bytes.Buffer
	if err := run(context.Background(), strings.NewReader(""), &out, io.Discard, []string{"list", "kfree_skb", "--all"}); err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, re := range []string{
		`(?m)^tp_btf,raw_tp\s+kfree_skb\s+arg1\s+arg1 struct sk_buff \*`,
		`(?m)^kprobe!?,fentry!?,fexit!?\s+\S*kfree_skb\S*\s+arg\d`,
	} {
		if !regexp.MustCompile(re).Match(out.Bytes()) {
			t.Errorf("list output lacks %s:\n%s", re, out.String())
		}
	}
	if strings.Contains(out.String(), "__bpf_trace") {
		t.Errorf("list shows tracing glue:\n%s", out.String())
	}
}

func TestListNoMatch(t *testing.T) {
	testutils.RunsInGuests(t)
	err := run(context.Background(), strings.NewReader(""), io.Discard, io.Discard, []string{"list", "no_such_hook_xyz"})
	if err == nil || !strings.Contains(err.Error(), "no function or tracepoint matching") {
		t.Fatalf("list of nothing: %v", err)
	}
}

// TestListMarksWhatAttaches: without --all, list leaves out the function
// hooks whose kinds do not attach on this kernel and says so; with --all
// it marks them KIND!. Where every kind attaches, nothing is marked.
func TestListMarksWhatAttaches(t *testing.T) {
	testutils.RunsInGuests(t)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), strings.NewReader(""), &out, &errOut, []string{"list", "kfree_skb"}); err != nil {
		t.Fatalf("list: %v", err)
	}
	var allOut, allErr bytes.Buffer
	if err := run(context.Background(), strings.NewReader(""), &allOut, &allErr, []string{"list", "kfree_skb", "--all"}); err != nil {
		t.Fatalf("list --all: %v", err)
	}
	marked := strings.Contains(allOut.String(), "!,")
	switch {
	case marked && strings.Contains(out.String(), "kprobe!"):
		t.Errorf("list without --all shows hooks that do not attach:\n%s", out.String())
	case marked && !regexp.MustCompile(`^bpfcap: \d+ kernel functions not listed: .* do not attach on this kernel \(--all lists them\)\n$`).MatchString(errOut.String()):
		t.Errorf("list does not say what it left out: %q", errOut.String())
	case !marked && (errOut.Len() > 0 || out.String() != allOut.String()):
		t.Errorf("every kind attaches, yet list and list --all differ:\n%s\n%s", out.String(), errOut.String())
	}
	t.Logf("%s", errOut.String())
}
