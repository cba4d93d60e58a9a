package probe

import (
	"strings"
	"testing"
)

// TestPageMapFrom: the bases come from kallsyms where it lists them, from
// the fixed layout only where the config rules out a boot-time layout, and
// otherwise paged data is not copied, with the reason.
func TestPageMapFrom(t *testing.T) {
	const syms = "ffffffff81000000 T _text\nffffffff82e1a0b8 D page_offset_base\nffffffff82e1a0a8 D vmemmap_base\n"
	config := func(vals map[string]string) func(string) (string, bool) {
		return func(sym string) (string, bool) { v, ok := vals[sym]; return v, ok }
	}
	none := config(nil)
	for _, tc := range []struct {
		name     string
		kallsyms string
		config   func(string) (string, bool)
		want     pageMap
		reason   string
	}{
		{"kallsyms", syms, none, pageMap{Mode: fragsBaseVars, PageOffset: 0xffffffff82e1a0b8, Vmemmap: 0xffffffff82e1a0a8}, ""},
		{"hidden addresses", "0000000000000000 T _text\n0000000000000000 D page_offset_base\n0000000000000000 D vmemmap_base\n", none, pageMap{}, "kptr_restrict"},
		{"fixed layout", "ffffffff81000000 T _text\n", config(map[string]string{"CONFIG_RANDOMIZE_MEMORY": "n", "CONFIG_X86_5LEVEL": "n"}),
			pageMap{Mode: fragsBases, PageOffset: x86PageOffsetBase, Vmemmap: x86VmemmapBase}, ""},
		{"randomized", "ffffffff81000000 T _text\n", config(map[string]string{"CONFIG_RANDOMIZE_MEMORY": "y"}), pageMap{}, "CONFIG_KALLSYMS_ALL"},
		{"5-level", "ffffffff81000000 T _text\n", config(map[string]string{"CONFIG_X86_5LEVEL": "y"}), pageMap{}, "CONFIG_KALLSYMS_ALL"},
		{"no config", "ffffffff81000000 T _text\n", none, pageMap{}, "kernel config"},
	} {
		got := pageMapFrom(strings.NewReader(tc.kallsyms), tc.config)
		if !strings.Contains(got.Reason, tc.reason) {
			t.Errorf("%s: reason %q, want it to mention %q", tc.name, got.Reason, tc.reason)
		}
		got.Reason = ""
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
