package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestBadInput: one table of bad command lines over every capture kind.
// Each ends with exit status 2 and a message that names the problem and a
// way out, leaves nothing attached (the XDP hook empty, no tc program or
// qdisc, the program's capture off) and creates no output file.
func TestBadInput(t *testing.T) {
	testutils.RunsInGuests(t)
	s := newXDPSetup(t, firewall.Options{})
	p := testutils.NewVethPair(t)
	_, x, _ := progXDP(t)
	progIDText := fmt.Sprint(progID(t, x.Program))
	progPin := xdpPinPath(t)
	if err := x.Program.Pin(progPin); err != nil {
		t.Fatal(err)
	}
	pinMap := func(spec ebpf.MapSpec) string {
		m, err := ebpf.NewMap(&spec)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		pin := xdpPinPath(t)
		if err := m.Pin(pin); err != nil {
			t.Fatal(err)
		}
		return pin
	}
	hashPin := pinMap(ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	bigPin := pinMap(ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 16})
	out := filepath.Join(t.TempDir(), "never.pcapng")
	tp := "tp_btf:net_dev_xmit"
	dev := p.HostName

	rows := []struct {
		name string
		args []string
		want []string
	}{
		// trace
		{"trace without hook", []string{"trace"}, []string{"trace needs a hook", "bpfcap list"}},
		{"trace unknown kind", []string{"trace", "bogus:kfree_skb"}, []string{`unknown hook kind "bogus"`, "forms:"}},
		{"trace unknown tracepoint", []string{"trace", "tp_btf:no_such_tp_bpfcap", "-w", out}, []string{"not found", "bpfcap list"}},
		{"trace kretprobe", []string{"trace", "kretprobe:kfree_skb"}, []string{"return value", "use kprobe:kfree_skb"}},
		{"trace hook twice", []string{"trace", tp, tp, "-w", out}, []string{"given twice", "give each hook once"}},
		{"trace bad filter", []string{"trace", tp, "udp", "port", "-w", out}, []string{"syntax error"}},
		// Hook globs default to proto ip: a link-layer filter fails at
		// once, naming proto eth, rather than as a refusal per hook.
		{"trace glob link-layer filter", []string{"trace", "tp_btf:net_dev_*", "ether", "host", "00:11:22:33:44:55", "-w", out}, []string{"for proto ip", "need proto eth"}},
		{"trace negative snaplen", []string{"trace", tp, "-s", "-5", "-w", out}, []string{"snaplen -5", "-s 128"}},
		{"trace huge snaplen", []string{"trace", tp, "-s", "100000", "-w", out}, []string{"at most 65536", "-s 65536"}},
		{"trace len zero", []string{"trace", tp, "len", "0", "-w", out}, []string{`len "0"`, "len 128"}},
		{"trace pages zero", []string{"trace", tp, "pages", "0", "-w", out}, []string{`pages "0"`, "pages 64"}},
		{"trace huge pages", []string{"trace", tp, "pages", "100000000", "-w", out}, []string{"1 GiB", "pages 1024"}},
		{"trace huge -B", []string{"trace", tp, "-B", "100000000", "-w", out}, []string{"1 GiB", "-B 65536"}},
		{"trace negative -B", []string{"trace", tp, "-B", "-1", "-w", out}, []string{"buffer size", "positive"}},
		{"trace negative duration", []string{"trace", tp, "--duration", "-1s", "-w", out}, []string{"duration -1s", "--duration 10s"}},
		{"trace keyword without value", []string{"trace", tp, "dev"}, []string{`"dev" needs a value`, "dev eth0"}},
		{"trace unknown proto", []string{"trace", tp, "proto", "nope", "-w", out}, []string{`proto "nope"`, "use one of eth"}},
		{"trace no such device", []string{"trace", tp, "-i", "bpfcapnosuch0", "-w", out}, []string{"does not exist", "ip link"}},
		{"trace -w twice", []string{"trace", tp, "-w", out, "-w", out + "2"}, []string{"given twice", "give one output file"}},
		{"trace -w empty", []string{"trace", tp, "-w", ""}, []string{"empty file name", `"-" for stdout`}},
		{"trace data_out and -w", []string{"trace", tp, "data_out", out, "-w", out + "2"}, []string{"give one output file"}},
		{"trace -w in missing dir", []string{"trace", tp, "-w", "/nonexistent-bpfcap/x.pcapng"}, []string{"does not exist", "create it"}},
		{"trace -Z unknown user", []string{"trace", tp, "-Z", "no-such-user-bpfcap", "-w", out}, []string{"no such user", "-Z nobody"}},
		// xdp
		{"xdp without hook", []string{"xdp"}, []string{"xdp needs a pinned hook map or a device", "bpfcap xdp dev IFNAME"}},
		{"xdp hash map", []string{"xdp", hashPin, "-w", out}, []string{"map of type Hash", "prog array"}},
		{"xdp wrong slot count", []string{"xdp", bigPin, "-w", out}, []string{"16 slots", "5 (bpfcap layout)"}},
		{"xdp program pin", []string{"xdp", progPin, "-w", out}, []string{"pinned program, not a map"}},
		{"xdp no pin", []string{"xdp", "/sys/fs/bpf/bpfcap-no-such-hook", "-w", out}, []string{"no such pin", "pin the hook map there first"}},
		{"xdp not on bpffs", []string{"xdp", "/etc/passwd", "-w", out}, []string{"not on a BPF filesystem", "/sys/fs/bpf"}},
		{"xdp no such device", []string{"xdp", "dev", "bpfcapnosuch0", "-w", out}, []string{`interface "bpfcapnosuch0" does not exist`}},
		{"xdp bad filter", []string{"xdp", s.pin, "udp", "port", "-w", out}, []string{"syntax error"}},
		{"xdp bad action", []string{"xdp", s.pin, "--actions", "pass,bounce", "-w", out}, []string{`unknown XDP action "bounce"`}},
		{"xdp bad proto", []string{"xdp", s.pin, "proto", "ip", "udp", "-w", out}, []string{"Ethernet header"}},
		{"xdp huge -B", []string{"xdp", s.pin, "-B", "100000000", "-w", out}, []string{"1 GiB", "-B 65536"}},
		{"xdp -w twice", []string{"xdp", s.pin, "-w", out, "-w", out + "2"}, []string{"given twice"}},
		{"xdp -Z unknown user", []string{"xdp", s.pin, "-Z", "no-such-user-bpfcap", "-w", out}, []string{"no such user", "-Z nobody"}},
		{"xdp -w in missing dir", []string{"xdp", s.pin, "-w", "/nonexistent-bpfcap/x.pcapng"}, []string{"does not exist", "create it"}},
		// tc
		{"tc without dev", []string{"tc", dev}, []string{"tc needs an interface", "bpfcap tc dev IFNAME"}},
		{"tc no such device", []string{"tc", "dev", "bpfcapnosuch0", "-w", out}, []string{`interface "bpfcapnosuch0" does not exist`}},
		{"tc bad filter", []string{"tc", "dev", dev, "ingress", "--tc-mode", "clsact", "udp", "port", "-w", out}, []string{"syntax error"}},
		{"tc bad mode", []string{"tc", "dev", dev, "--tc-mode", "ebpf", "-w", out}, []string{`unknown tc mode "ebpf"`, "tcx, clsact or auto"}},
		{"tc -Z unknown user", []string{"tc", "dev", dev, "--tc-mode", "clsact", "-Z", "no-such-user-bpfcap", "-w", out}, []string{"no such user"}},
		{"tc -w empty", []string{"tc", "dev", dev, "-w", ""}, []string{"empty file name"}},
		{"tc huge snaplen", []string{"tc", "dev", dev, "-s", "70000", "-w", out}, []string{"at most 65536"}},
		// prog
		{"prog without program", []string{"prog"}, []string{"prog needs a program", "bpftool prog show"}},
		{"prog not on bpffs", []string{"prog", "pinned", "/etc/passwd", "-w", out}, []string{"not on a BPF filesystem", "bpfcap prog id ID"}},
		{"prog map pin", []string{"prog", "pinned", hashPin, "-w", out}, []string{"not a program", "bpftool prog pin"}},
		{"prog no such id", []string{"prog", "id", "2147483632", "-w", out}, []string{"no BPF program with id 2147483632", "bpftool prog show"}},
		{"prog bad id", []string{"prog", "id", "x1", "-w", out}, []string{`prog id "x1"`, "bpftool prog show"}},
		{"prog bare path", []string{"prog", "/sys/fs/bpf/x"}, []string{"id ID, pinned PATH or name NAME"}},
		{"prog with -i", []string{"prog", "id", progIDText, "-i", "eth0", "-w", out}, []string{"-i/dev"}},
		{"prog with --perf", []string{"prog", "id", progIDText, "--perf", "-w", out}, []string{"BPFCAP_OUTPUT_RING_SIZE"}},
		{"prog bad filter", []string{"prog", "pinned", progPin, "udp", "port", "-w", out}, []string{"syntax error"}},
		{"prog -w twice", []string{"prog", "pinned", progPin, "-w", out, "-w", out}, []string{"given twice"}},
	}
	if len(rows) < 40 {
		t.Fatalf("%d rows, the table keeps at least 40", len(rows))
	}
	for _, c := range rows {
		t.Run(c.name, func(t *testing.T) {
			r := xdpStart(t, &p.HostNS, c.args...)
			err := progWaitEnd(t, r)
			if err == nil {
				t.Fatalf("bpfcap %s: no error\n%s", strings.Join(c.args, " "), r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("bpfcap %s: %q does not say %q", strings.Join(c.args, " "), err, w)
				}
			}
			var msg bytes.Buffer
			if code := exitCode(err, &msg); code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			assertHookEmpty(t, s.pin)
			if left := tcLeftovers(t, p); len(left) != 0 {
				t.Errorf("left attached at tc: %v", left)
			}
			if progEnabled(t, x.Program) {
				t.Errorf("program capture left on")
			}
			for _, f := range []string{out, out + "2"} {
				if _, err := os.Stat(f); err == nil {
					os.Remove(f)
					t.Errorf("created %s", f)
				}
			}
		})
	}
}
