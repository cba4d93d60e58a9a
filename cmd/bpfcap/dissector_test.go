package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// TestDissectorHostTshark: dissector/bpfcap.lua turns every metadata item
// of a file bpfcap's writer wrote into a bpfcap.* field that a tshark
// display filter selects on (tshark is on the host only).
func TestDissectorHostTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatalf("host test needs tshark: %v", err)
	}
	script, err := filepath.Abs("../../dissector/bpfcap.lua")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "meta.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapng.NewWriter(f, pcapng.WriterOptions{Application: "bpfcap"})
	if err != nil {
		t.Fatal(err)
	}
	drop, err := w.AddInterface(pcapng.Interface{Name: "tp_btf:kfree_skb", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536})
	if err != nil {
		t.Fatal(err)
	}
	xdp, err := w.AddInterface(pcapng.Interface{Name: "xdp:/sys/fs/bpf/hook", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536})
	if err != nil {
		t.Fatal(err)
	}
	data := serialize(t, udpPacketLayers()...)
	now := time.Now()
	for _, p := range []*pcapng.Packet{
		{Interface: drop, Timestamp: now, Data: data, WireLen: len(data), VerdictType: pcapng.VerdictNone,
			DropReason: "NETFILTER_DROP", Device: "veth0", Direction: pcapng.DirectionInbound,
			Flags: pcapng.HasPID | pcapng.HasNetns | pcapng.HasMark, PID: 42, Comm: "Web Content", Netns: 4026531840, Mark: 0x10,
			// What the tracing source adds: drop location, clone parent, stack.
			Comment: "location=ip_rcv_core+0x1a parent=0x1000000000001 stack=nf_hook_slow<-ip_rcv"},
		{Interface: xdp, Timestamp: now.Add(time.Millisecond), Data: data, WireLen: len(data), Device: "eth1",
			VerdictType: pcapng.VerdictXDP, Verdict: 1, Flags: pcapng.HasNetns, Netns: 4026532000},
	} {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ filter, frame string }{
		{`bpfcap.hook == "tp_btf:kfree_skb"`, "1"},
		{`bpfcap.hook == "xdp:/sys/fs/bpf/hook"`, "2"},
		{`bpfcap.reason == "NETFILTER_DROP"`, "1"},
		{`bpfcap.location == "ip_rcv_core+0x1a"`, "1"},
		{`bpfcap.parent == "0x1000000000001"`, "1"},
		{`bpfcap.stack contains "nf_hook_slow"`, "1"},
		{`bpfcap.dev == "eth1"`, "2"},
		{`bpfcap.dir == "in"`, "1"},
		{`bpfcap.pid == 42`, "1"},
		{`bpfcap.comm == "Web Content"`, "1"},
		{`bpfcap.netns == 4026532000`, "2"},
		{`bpfcap.mark == 0x10`, "1"},
		{`bpfcap.verdict == "XDP_DROP"`, "2"},
	} {
		cmd := exec.Command("tshark", "-n", "-X", "lua_script:"+script, "-r", path, "-Y", tc.filter, "-T", "fields", "-e", "frame.number")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark -Y %s: %v\n%s", tc.filter, err, stderr.String())
		}
		if got := strings.TrimSpace(string(out)); got != tc.frame {
			t.Errorf("-Y '%s' selects frames %q, want %s", tc.filter, got, tc.frame)
		}
	}
}
