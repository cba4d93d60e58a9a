package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	example "github.com/bpfcap/bpfcap/examples/progcap"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/progcap"
)

// Tests named TestProgHost* need tshark (host only); the other TestProg*
// tests run in minimal VM guests too.

// progName returns a program name unique to this process (<= 15 chars).
func progName(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, os.Getpid()%1000000, xdpPinCounter.Add(1))
}

// progXDP loads the XDP example (rules: 5353 -> id 0x1001 pass, 9 -> id
// 0x2002 drop) under a unique name and attaches it on the peer end of a
// new veth pair.
func progXDP(t *testing.T) (*testutils.VethPair, *example.XDP, string) {
	t.Helper()
	p := testutils.NewVethPair(t)
	name := progName("pcx")
	x, err := example.LoadXDP(example.XDPOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	for port, id := range map[uint16]uint32{5353: 0x1001, 9: 0x2002} {
		if err := x.SetRule(port, id, port == 9); err != nil {
			t.Fatal(err)
		}
	}
	err = testutils.Do(t, p.PeerNS, func() error {
		l, err := link.AttachXDP(link.XDPOptions{Program: x.Program, Interface: p.PeerIndex})
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, x, name
}

// progWaitEnd waits for a run that ends by itself (-c).
func progWaitEnd(t *testing.T, r *xdpRun) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.once.Do(func() { r.err = err })
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("bpfcap did not end within 15 s; stderr:\n%s", r.stderr)
	}
	return nil
}

func progEnabled(t *testing.T, prog *ebpf.Program) bool {
	t.Helper()
	on, err := progcap.Enabled(prog)
	if err != nil {
		t.Fatal(err)
	}
	return on
}

func progID(t *testing.T, prog *ebpf.Program) ebpf.ProgramID {
	t.Helper()
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return id
}

// TestProgHostPinnedXDP: `bpfcap prog pinned PIN -w FILE -c 5` captures
// the XDP example's packets with their rule ids (our reader and tshark
// agree on epb_packetid and the comment), and leaves capture off.
func TestProgHostPinnedXDP(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatalf("tshark is needed on the host: %v", err)
	}
	p, x, name := progXDP(t)
	pin := xdpPinPath(t)
	if err := x.Program.Pin(pin); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "prog.pcapng")
	os.Chmod(filepath.Dir(out), 0o755)
	r := xdpStart(t, nil, "prog", "pinned", pin, "-w", out, "-c", "5")
	r.waitFile(t, out)
	if !progEnabled(t, x.Program) {
		t.Fatal("capture is off while bpfcap runs")
	}
	testutils.SendUDP(t, p, 7777, 2, 30) // no rule: not emitted
	testutils.SendUDP(t, p, 5353, 3, 30)
	testutils.SendUDP(t, p, 9, 2, 30)
	if err := progWaitEnd(t, r); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	if progEnabled(t, x.Program) {
		t.Fatal("capture still on after bpfcap exited")
	}
	for _, want := range []string{"bpfcap: capturing at prog:" + name + ", link-type EN10MB (Ethernet), snapshot length 16384 bytes", "prog:" + name + ": matched 5, captured 5, lost 0", "5 packets written (-c count reached)"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	pkts, ifs := xdpReadPcapng(t, out)
	if len(ifs) != 1 || ifs[0].LinkType != pcapng.LinkTypeEthernet {
		t.Fatalf("interfaces %+v", ifs)
	}
	ids := map[uint64]int{}
	for _, pk := range pkts {
		ids[pk.PacketID]++
		// The hook is the interface's name and the id epb_packetid: the
		// comment repeats neither (nothing is left for it).
		if want := "prog:" + name; pk.Hook != want || pk.Comment != "" {
			t.Errorf("hook %q, comment %q; want %q and none", pk.Hook, pk.Comment, want)
		}
	}
	if len(pkts) != 5 || ids[0x1001] != 3 || ids[0x2002] != 2 {
		t.Fatalf("%d packets with ids %v, want 3 x 0x1001 and 2 x 0x2002", len(pkts), ids)
	}
	o, err := exec.Command("tshark", "-r", out, "-T", "fields", "-E", "separator=,", "-e", "udp.dstport", "-e", "frame.packet_id", "-e", "frame.interface_name", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(o)), "\n")
	got := map[string]int{}
	for _, l := range lines {
		got[l]++
	}
	w1 := fmt.Sprintf("5353,4097,prog:%s,", name)
	w2 := fmt.Sprintf("9,8194,prog:%s,", name)
	if len(lines) != 5 || got[w1] != 3 || got[w2] != 2 {
		t.Fatalf("tshark says:\n%s\nwant 3 x %q and 2 x %q", o, w1, w2)
	}
}

// TestProgDropsByName: `bpfcap prog name NAME FILTER` on the tp_btf
// example: UDP to a closed port is captured as raw IP (an interface added
// when the first one arrived, after the declared Ethernet one) with the
// drop reason NO_SOCKET as id; the ISBs are written.
func TestProgDropsByName(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	name := progName("pcd")
	d, err := example.LoadDrops(example.DropsOptions{Name: name})
	kconfig.SkipOrFailFeature(t, err, "kfree_skb drop reason (tp_btf example)", "5.17")
	t.Cleanup(func() { d.Close() })
	l, err := d.Attach()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	out := filepath.Join(t.TempDir(), "drops.pcapng")
	r := xdpStart(t, nil, "prog", "name", name, "-w", out, "-c", "3", "udp and dst host "+p.PeerIP.String()+" and dst port 9999")
	r.waitFile(t, out)
	testutils.SendUDP(t, p, 9999, 3, 40)
	if err := progWaitEnd(t, r); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	if progEnabled(t, d.Program) {
		t.Fatal("capture still on after bpfcap exited")
	}
	reason := kernelEnumValue(t, "skb_drop_reason", "SKB_DROP_REASON_NO_SOCKET")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapng.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		pk, err := rd.Next()
		if err != nil {
			break
		}
		n++
		// The id is epb_packetid; the comment does not repeat it.
		if pk.Interface != 1 || pk.PacketID != reason || pk.Flags&pcapng.HasPacketID == 0 || strings.Contains(pk.Comment, "id=") {
			t.Errorf("packet on interface %d, id %d, comment %q; want interface 1, id %d (NO_SOCKET)", pk.Interface, pk.PacketID, pk.Comment, reason)
		}
	}
	ifs := rd.Interfaces()
	if n != 3 || len(ifs) != 2 || ifs[0].LinkType != pcapng.LinkTypeEthernet || ifs[1].LinkType != pcapng.LinkTypeRaw {
		t.Fatalf("%d packets, interfaces %+v; want 3 on a raw IP interface after the Ethernet one", n, ifs)
	}
	if st := rd.Stats(); len(st) != 2 || st[1].Stats.Captured != 3 {
		t.Fatalf("statistics %+v", st)
	}
}

// kernelEnumValue returns the value of an enum constant in the kernel's BTF.
func kernelEnumValue(t *testing.T, enum, name string) uint64 {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	var e *btf.Enum
	if err := spec.TypeByName(enum, &e); err != nil {
		t.Fatal(err)
	}
	for _, v := range e.Values {
		if v.Name == name {
			return v.Value
		}
	}
	t.Fatalf("enum %s has no %s", enum, name)
	return 0
}

// TestProgByIDSnaplen: `bpfcap prog id ID len 64 FILTER` keeps 64 bytes
// of each packet the filter takes.
func TestProgByIDSnaplen(t *testing.T) {
	testutils.RunsInGuests(t)
	p, x, _ := progXDP(t)
	out := filepath.Join(t.TempDir(), "id.pcapng")
	r := xdpStart(t, nil, "prog", "id", fmt.Sprint(progID(t, x.Program)), "len", "64", "udp dst port 9", "-w", out, "-c", "2")
	r.waitFile(t, out)
	testutils.SendUDP(t, p, 5353, 2, 300)
	testutils.SendUDP(t, p, 9, 2, 300)
	if err := progWaitEnd(t, r); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	pkts, ifs := xdpReadPcapng(t, out)
	if len(ifs) != 1 || ifs[0].SnapLen != 64 || ifs[0].Filter != "udp dst port 9" {
		t.Fatalf("interfaces %+v", ifs)
	}
	if len(pkts) != 2 {
		t.Fatalf("%d packets, want 2", len(pkts))
	}
	for _, pk := range pkts {
		if len(pk.Data) != 64 || pk.WireLen != 342 || pk.PacketID != 0x2002 {
			t.Errorf("packet of %d/%d bytes, id %#x; want 64/342, id 0x2002", len(pk.Data), pk.WireLen, pk.PacketID)
		}
	}
	if progEnabled(t, x.Program) {
		t.Fatal("capture still on after bpfcap exited")
	}
}

// TestProgBadInput: programs bpfcap prog cannot capture, selectors that
// name nothing, and options that do not apply: an error that names the
// problem and the way out, and capture left off.
func TestProgBadInput(t *testing.T) {
	testutils.RunsInGuests(t)
	_, x, _ := progXDP(t)
	id := fmt.Sprint(progID(t, x.Program))
	plain, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: progName("pcp"), Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plainPin, mapPin := xdpPinPath(t), xdpPinPath(t)
	if err := plain.Pin(plainPin); err != nil {
		t.Fatal(err)
	}
	if err := x.Rules.Pin(mapPin); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "never.pcapng")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"prog", "pinned", plainPin, "-w", out}, []string{"does not use the capture maps", "include bpf/bpfcap.h", "bpfcap_output()"}},
		{[]string{"prog", "pinned", mapPin, "-w", out}, []string{mapPin, "map", "not a program", "bpftool prog pin"}},
		{[]string{"prog", "pinned", mapPin + "none", "-w", out}, []string{"no such file"}},
		{[]string{"prog", "id", "2147483632", "-w", out}, []string{"no BPF program with id 2147483632"}},
		{[]string{"prog", "id", "x1", "-w", out}, []string{`prog id "x1"`, "bpftool prog show"}},
		{[]string{"prog", "name", progName("pcn"), "-w", out}, []string{"no BPF program named"}},
		{[]string{"prog", "id"}, []string{"needs a value"}},
		{[]string{"prog", "/sys/fs/bpf/x"}, []string{"id ID, pinned PATH or name NAME"}},
		{[]string{"prog", "id", id, "udp port", "-w", out}, []string{"filter", "udp port"}},
		{[]string{"prog", "id", id, "-i", "eth0", "-w", out}, []string{"-i/dev"}},
		{[]string{"prog", "id", id, "--perf", "-w", out}, []string{"BPFCAP_OUTPUT_RING_SIZE"}},
		{[]string{"prog", "id", id, "proto", "nope", "-w", out}, []string{"unknown proto"}},
	} {
		err, stderr := runOnce(tc.args...)
		if err == nil {
			t.Errorf("%v: no error; stderr:\n%s", tc.args, stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", tc.args, err, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v: created the output file", tc.args)
		}
		if progEnabled(t, x.Program) {
			t.Fatalf("%v: capture left on", tc.args)
		}
	}
}

// TestProgHelp: the help names the three selectors and the header.
func TestProgHelp(t *testing.T) {
	testutils.RunsInGuests(t)
	var stdout bytes.Buffer
	if err := run(t.Context(), strings.NewReader(""), &stdout, &bytes.Buffer{}, []string{"prog", "--help"}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"id ID", "pinned PATH", "name NAME", "bpf/bpfcap.h", "bpfcap_output(", "Examples:"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("help lacks %q", w)
		}
	}
}
