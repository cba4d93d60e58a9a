package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// TestDissectorHostTshark: dissector/bpfcap.lua turns every metadata item
// of a file bpfcap's writer wrote into a bpfcap.* field that a tshark
// display filter selects on (tshark is on the host only): the hook from
// the interface's name, the direction and verdict from epb_flags and
// epb_verdict, the rest from the comment, or the device and netns from the
// interface description where the interface sees one device; and, from
// files of earlier versions, the same items from the comment alone.
func TestDissectorHostTshark(t *testing.T) {
	script := dissectorScript(t)
	now := time.Now()
	data := serialize(t, udpPacketLayers()...)
	path := writeDissectorFile(t, []pcapng.Interface{
		{Name: "tp_btf:kfree_skb", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536},
		{Name: "xdp:/sys/fs/bpf/hook", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536},
		{Name: "tc:veth1:egress", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536},
		{Name: "eth0", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536},
		{Name: "lo", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536},
		{Name: "tc:veth7:ingress", Description: "tc ingress of veth7 (tcx)", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536,
			Device: "veth7", Netns: 4026532111},
	}, []*pcapng.Packet{
		{Interface: 0, Timestamp: now, Data: data, WireLen: len(data), VerdictType: pcapng.VerdictNone,
			DropReason: "NETFILTER_DROP", Device: "veth0", Direction: pcapng.DirectionInbound,
			Flags: pcapng.HasPID | pcapng.HasNetns | pcapng.HasMark, PID: 42, Comm: "Web Content", Netns: 4026531840, Mark: 0x10,
			// What the tracing source adds: drop location, clone parent, stack.
			Comment: "location=ip_rcv_core+0x1a parent=0x1000000000001 stack=nf_hook_slow<-ip_rcv"},
		{Interface: 1, Timestamp: now.Add(time.Millisecond), Data: data, WireLen: len(data), Device: "eth1",
			VerdictType: pcapng.VerdictXDP, Verdict: 1, Flags: pcapng.HasNetns, Netns: 4026532000},
		// Nothing for a comment: hook, direction and verdict only.
		{Interface: 2, Timestamp: now.Add(2 * time.Millisecond), Data: data, WireLen: len(data),
			Direction: pcapng.DirectionOutbound, VerdictType: pcapng.VerdictTC, Verdict: 2},
		// Another tool's capture on a device: not bpfcap's.
		{Interface: 3, Timestamp: now.Add(3 * time.Millisecond), Data: data, WireLen: len(data), VerdictType: pcapng.VerdictNone},
		// An earlier version's comment, which repeated hook, verdict and direction.
		{Interface: 4, Timestamp: now.Add(4 * time.Millisecond), Data: data, WireLen: len(data), VerdictType: pcapng.VerdictNone,
			Comment: "hook=tc:lo:ingress verdict=TC_ACT_OK dev=lo dir=in"},
		// The interface's device and netns: named in its description only.
		{Interface: 5, Timestamp: now.Add(5 * time.Millisecond), Data: data, WireLen: len(data), VerdictType: pcapng.VerdictNone,
			Device: "veth7", Flags: pcapng.HasNetns, Netns: 4026532111},
		// Another device on it: the comment names it.
		{Interface: 5, Timestamp: now.Add(6 * time.Millisecond), Data: data, WireLen: len(data), VerdictType: pcapng.VerdictNone,
			Device: "veth8", Flags: pcapng.HasNetns, Netns: 4026532111},
	})
	for _, tc := range []struct{ filter, frame string }{
		{`bpfcap.hook == "tp_btf:kfree_skb"`, "1"},
		{`bpfcap.hook == "xdp:/sys/fs/bpf/hook"`, "2"},
		{`bpfcap.hook == "tc:veth1:egress"`, "3"},
		{`bpfcap.hook == "tc:lo:ingress"`, "5"},
		{`bpfcap.reason == "NETFILTER_DROP"`, "1"},
		{`bpfcap.location == "ip_rcv_core+0x1a"`, "1"},
		{`bpfcap.parent == "0x1000000000001"`, "1"},
		{`bpfcap.stack contains "nf_hook_slow"`, "1"},
		{`bpfcap.dev == "eth1"`, "2"},
		{`bpfcap.dev == "lo"`, "5"},
		{`bpfcap.dir == "in"`, "1\n5"},
		{`bpfcap.dir == "out"`, "3"},
		{`bpfcap.pid == 42`, "1"},
		{`bpfcap.comm == "Web Content"`, "1"},
		{`bpfcap.netns == 4026532000`, "2"},
		{`bpfcap.mark == 0x10`, "1"},
		{`bpfcap.verdict == "XDP_DROP"`, "2"},
		{`bpfcap.verdict == "TC_ACT_SHOT"`, "3"},
		{`bpfcap.verdict == "TC_ACT_OK"`, "5"},
		{`bpfcap.dev == "veth7"`, "6"},
		{`bpfcap.dev == "veth8"`, "7"},
		{`bpfcap.netns == 4026532111`, "6\n7"},
		{`bpfcap`, "1\n2\n3\n5\n6\n7"},
	} {
		want := strings.ReplaceAll(tc.frame, `\n`, "\n")
		if got := strings.Join(dissectorFields(t, script, path, tc.filter, "frame.number"), "\n"); got != want {
			t.Errorf("-Y '%s' selects frames %q, want %q", tc.filter, got, want)
		}
	}
}

// TestDissectorVerdictNames: the dissector names every epb_verdict as
// bpfcap does (pcapng.VerdictName), known actions and others.
func TestDissectorVerdictNames(t *testing.T) {
	script := dissectorScript(t)
	data := serialize(t, udpPacketLayers()...)
	var pkts []*pcapng.Packet
	var want []string
	add := func(typ pcapng.VerdictType, v int64) {
		pkts = append(pkts, &pcapng.Packet{Interface: 0, Timestamp: time.Unix(1, 0), Data: data, WireLen: len(data), VerdictType: typ, Verdict: v})
		want = append(want, pcapng.VerdictName(typ, v))
	}
	for v := int64(0); v <= 5; v++ {
		add(pcapng.VerdictXDP, v)
	}
	for v := int64(-2); v <= 9; v++ {
		add(pcapng.VerdictTC, v)
	}
	path := writeDissectorFile(t, []pcapng.Interface{{Name: "tc:veth1:ingress", LinkType: pcapng.LinkTypeEthernet}}, pkts)
	if got := dissectorFields(t, script, path, "", "bpfcap.verdict"); !slices.Equal(got, want) {
		t.Errorf("bpfcap.verdict of each frame:\n got %q\nwant %q", got, want)
	}
}

func dissectorScript(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatalf("host test needs tshark: %v", err)
	}
	script, err := filepath.Abs("../../dissector/bpfcap.lua")
	if err != nil {
		t.Fatal(err)
	}
	return script
}

// writeDissectorFile writes ifaces and pkts with bpfcap's writer and
// returns the file's path.
func writeDissectorFile(t *testing.T, ifaces []pcapng.Interface, pkts []*pcapng.Packet) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapng.NewWriter(f, pcapng.WriterOptions{Application: "bpfcap"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if _, err := w.AddInterface(ifc); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pkts {
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
	return path
}

// dissectorFields runs tshark with the dissector on path (display filter
// filter, unless empty) and returns field of every frame shown.
func dissectorFields(t *testing.T, script, path, filter, field string) []string {
	t.Helper()
	args := []string{"-n", "-X", "lua_script:" + script, "-r", path}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	cmd := exec.Command("tshark", append(args, "-T", "fields", "-e", field)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -Y %s: %v\n%s", filter, err, stderr.String())
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}
