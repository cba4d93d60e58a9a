package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/probe"
)

// TestCompletion: the shell completion knows hook specs (from the
// kernel's BTF, as bpfcap list), devices, directions and protos.
func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"trace", "tp_btf:kfree"}, []string{"tp_btf:kfree_skb"}},
		{[]string{"trace", "tp_b"}, []string{"tp_btf:"}}, // kinds that do not attach here are left out: TestCompletionAttachingKinds
		{[]string{"trace", "tp_btf:kfree_skb", "proto", ""}, []string{"eth", "ip", "auto"}},
		{[]string{"trace", "tp_btf:kfree_skb", "dev", ""}, []string{"lo"}},
		{[]string{"trace", "tp_btf:kfree_skb", "-i", ""}, []string{"lo", "any"}},
		{[]string{"tc", ""}, []string{"dev"}},
		{[]string{"tc", "dev", ""}, []string{"lo"}},
		{[]string{"tc", "dev", "lo", ""}, []string{"ingress", "egress", "both"}},
		{[]string{"tc", "-Q", ""}, []string{"in", "out", "inout"}},
		{[]string{"xdp", "dev", ""}, []string{"lo"}},
	} {
		out, _, err := runCLI(append([]string{"__complete"}, tc.args...)...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := strings.Split(strings.TrimSpace(out), "\n")
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("completing %q: %q lacks %q", tc.args, got, w)
			}
		}
	}
}

// TestCompletionAttachingKinds: hook kinds are offered only where they
// attach on this kernel, as `bpfcap list` marks them.
func TestCompletionAttachingKinds(t *testing.T) {
	r, err := probe.NewResolver()
	if err != nil {
		t.Fatal(err)
	}
	points, err := r.List("")
	if err != nil {
		t.Fatal(err)
	}
	dead := deadFunctionKinds(r, points)
	out, _, err := runCLI("__complete", "trace", "")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	for _, k := range hookKinds {
		_, isDead := dead[strings.TrimSuffix(k, ":")]
		if offered := slices.Contains(got, k); offered == isDead {
			t.Errorf("kind %s offered %v, but attaches %v on this kernel (%v)", k, offered, !isDead, dead[strings.TrimSuffix(k, ":")])
		}
	}
	for kind := range dead {
		out, _, err := runCLI("__complete", "trace", kind+":kfree")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, kind+":kfree_skb") {
			t.Errorf("completion offers %s:kfree_skb, which does not attach here", kind)
		}
	}
	if len(dead) == 0 {
		t.Logf("every function hook kind attaches on this kernel")
	}
}
