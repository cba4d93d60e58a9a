package testutils

import (
	"fmt"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// DropInput makes netfilter drop every IPv4 packet delivered locally in ns:
// an nf_tables table "bpfcap" with an input base chain whose policy is
// drop, created over netlink (no nft or iptables binary needed, so it
// works in the vmtest guests, which load nf_tables). The namespace's
// removal removes it.
func DropInput(tb testing.TB, ns netns.NsHandle) {
	tb.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		tb.Fatalf("nf_tables connection: %v", err)
	}
	defer c.CloseLasting()
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "bpfcap"})
	policy := nftables.ChainPolicyDrop
	c.AddChain(&nftables.Chain{
		Name:     "input",
		Table:    table,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookInput,
		Priority: nftables.ChainPriorityFilter,
		Policy:   &policy,
	})
	if err := c.Flush(); err != nil {
		tb.Fatalf("nf_tables input drop (needs nf_tables): %v", fmt.Errorf("create table and chain: %w", err))
	}
}
