package main

import (
	"slices"
	"strings"
	"testing"
)

// TestCompletion: the shell completion knows hook specs (from the
// kernel's BTF, as bpfcap list), devices, directions and protos.
func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"trace", "tp_btf:kfree"}, []string{"tp_btf:kfree_skb"}},
		{[]string{"trace", "fent"}, []string{"fentry:"}},
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
