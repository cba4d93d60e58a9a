package probe

import (
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestKernelTextFormat: addresses are named by the symbol at or below
// them, with the offset in hex; below the first symbol, as a number.
func TestKernelTextFormat(t *testing.T) {
	k := &kernelText{addrs: []uint64{0x1000, 0x1100, 0x2000}, names: []string{"a", "nf_hook_slow", "c"}}
	for addr, want := range map[uint64]string{
		0x0fff: "0xfff",
		0x1000: "a+0x0",
		0x118c: "nf_hook_slow+0x8c",
		0x2fff: "c+0xfff",
	} {
		if got := k.format(addr); got != want {
			t.Errorf("format(%#x) = %q, want %q", addr, got, want)
		}
	}
	if got := k.function(0x118c); got != "nf_hook_slow" {
		t.Errorf("function(0x118c) = %q", got)
	}
	var none *kernelText
	if got := none.format(0x118c); got != "0x118c" {
		t.Errorf("without symbols: %q", got)
	}
}

// TestLoadKernelText: as root, /proc/kallsyms names the kernel's own
// text, e.g. the function that frees sk_buffs.
func TestLoadKernelText(t *testing.T) {
	testutils.RequireRoot(t)
	k, err := loadKernelText()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range k.names {
		if n == "consume_skb" || n == "kfree_skb_reason" || n == "sk_skb_reason_drop" {
			found = true
			break
		}
	}
	if !found {
		t.Errorf("no skb freeing function among %d kernel text symbols", len(k.names))
	}
}
