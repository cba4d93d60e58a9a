package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// extcapTshark is an installed bpfcap-extcap wrapper and the extcap
// folder tshark must see it in.
type extcapTshark struct {
	dir    string // holds only bpfcap-extcap
	global string // tshark's extcap folder, which dir stands in for
}

// newExtcapTshark builds bpfcap, installs its wrapper with `bpfcap
// extcap --install` into a fresh folder and finds tshark's extcap folder.
//
// Measured with tshark 4.0: it reads extcaps from one folder, the global
// one (tshark -G folders: "Extcap path"); WIRESHARK_EXTCAP_DIR replaces
// it only for non-root users, and 4.0 has no personal extcap folder. The
// tests run as root, so tshark runs in a private mount namespace where
// the fresh folder is bind-mounted over the global one: tshark then
// finds bpfcap as it would once `make install-extcap` put it there.
func newExtcapTshark(t *testing.T) *extcapTshark {
	t.Helper()
	testutils.RequireRoot(t)
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatalf("tshark is needed on the host: %v", err)
	}
	bin := testutils.BuildBinary(t)
	dir := t.TempDir()
	if out, err := exec.Command(bin, "extcap", "--install", dir).CombinedOutput(); err != nil {
		t.Fatalf("bpfcap extcap --install: %v\n%s", err, out)
	}
	out, err := exec.Command("tshark", "-G", "folders").Output()
	if err != nil {
		t.Fatalf("tshark -G folders: %v", err)
	}
	x := &extcapTshark{dir: dir}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "Extcap path" {
			x.global = strings.TrimSpace(v)
		}
	}
	if x.global == "" {
		t.Fatalf("tshark -G folders names no Extcap path:\n%s", out)
	}
	if st, err := os.Stat(x.global); err != nil || !st.IsDir() {
		t.Fatalf("tshark's extcap folder %s: %v", x.global, err)
	}
	return x
}

// command returns tshark ARGS run in netns (empty: this one) with the
// installed wrapper as its only extcap.
func (x *extcapTshark) command(netns string, args ...string) *exec.Cmd {
	script := `mount --bind "$1" "$2" && shift 2 && exec tshark "$@"`
	argv := append([]string{"-m", "sh", "-c", script, "sh", x.dir, x.global}, args...)
	if netns == "" {
		return exec.Command("unshare", argv...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", netns, "unshare"}, argv...)...)
}

// tsharkRun is a running tshark.
type tsharkRun struct {
	stderr *testutils.SyncBuffer
	exited chan struct{} // closed once err is set
	err    error
}

func startTshark(t *testing.T, cmd *exec.Cmd) *tsharkRun {
	t.Helper()
	r := &tsharkRun{stderr: &testutils.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = r.stderr
	// Its own process group, so a cleanup reaches dumpcap and the extcap
	// too; and Wait does not wait for them to close stderr.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM) // as tshark stops an extcap
		select {
		case <-r.exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-r.exited
		}
	})
	return r
}

// ended reports whether tshark exited, and how.
func (r *tsharkRun) ended() (error, bool) {
	select {
	case <-r.exited:
		return r.err, true
	default:
		return nil, false
	}
}

// wait waits up to d for tshark to exit and returns its error.
func (r *tsharkRun) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-r.exited:
		return r.err
	case <-time.After(d):
		t.Fatalf("tshark still running after %v; stderr:\n%s", d, r.stderr)
	}
	return nil
}

// tsharkFields reads a capture file with tshark -T fields.
func tsharkFields(t *testing.T, path string, fields ...string) []string {
	t.Helper()
	args := []string{"-r", path, "-T", "fields", "-E", "separator=|"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

// TestExtcapHostTshark is the issue's proof: tshark drives `bpfcap
// extcap` through a real extcap folder (-i bpfcap-..., options with -o
// extcap.IFACE.OPTION, the capture filter with -f, stopped by -a
// duration) and reads the live packets the test sends; it shows bpfcap's
// errors; and nothing stays attached once tshark stopped the capture.
func TestExtcapHostTshark(t *testing.T) {
	x := newExtcapTshark(t)

	out, err := x.command("", "-D").Output()
	if err != nil {
		t.Fatalf("tshark -D: %v", err)
	}
	for _, want := range []string{"bpfcap-drops (bpfcap: kfree_skb drops)", "bpfcap-tc (bpfcap: tc ingress and egress)"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("tshark -D does not list %q:\n%s", want, out)
		}
	}

	t.Run("tc", func(t *testing.T) {
		p := testutils.NewVethPair(t)
		dir := t.TempDir()
		pcap, logPath := filepath.Join(dir, "tc.pcapng"), filepath.Join(dir, "log")
		r := startTshark(t, x.command(p.HostNSName, "-i", "bpfcap-tc",
			"-o", "extcap.bpfcap_tc.dev:"+p.HostName, "-o", "extcap.bpfcap_tc.direction:egress",
			"-o", "extcap.bpfcap_tc.logfile:"+logPath,
			"-f", "udp port 4500", "-a", "duration:4", "-w", pcap))
		extcapWaitLog(t, logPath, "bpfcap: capturing at tc:"+p.HostName+":egress", r.ended)
		sent := extcapSend(t, p, 4500, 0, 5)
		extcapSend(t, p, 4501, 100, 3) // filtered out in the kernel
		if err := r.wait(t, 20*time.Second); err != nil {
			t.Fatalf("tshark: %v\n%s", err, r.stderr)
		}
		if s := r.stderr.String(); strings.Contains(s, "rror") {
			t.Fatalf("tshark reports an error:\n%s", s)
		}
		var want []string
		for _, s := range sent {
			want = append(want, "4500|"+hex.EncodeToString([]byte(s)))
		}
		got := tsharkFields(t, pcap, "udp.dstport", "udp.payload")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("tshark captured\n%s\nwant\n%s\ntshark stderr:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), r.stderr)
		}
		if left := tcLeftovers(t, p); len(left) != 0 {
			t.Fatalf("left attached after tshark stopped the capture: %v", left)
		}
		log, _ := os.ReadFile(logPath)
		if !strings.Contains(string(log), "packets written (interrupted)") {
			t.Fatalf("the capture did not end on tshark's SIGTERM:\n%s", log)
		}
		t.Logf("tshark stderr:\n%s\nlog:\n%s", r.stderr, log)
	})

	t.Run("drops", func(t *testing.T) {
		before := testutils.CountPrograms(t, "probe_")
		p := testutils.NewVethPair(t)
		dir := t.TempDir()
		pcap, logPath := filepath.Join(dir, "drops.pcapng"), filepath.Join(dir, "log")
		r := startTshark(t, x.command("", "-i", "bpfcap-drops",
			"-o", "extcap.bpfcap_drops.proto:ip", "-o", "extcap.bpfcap_drops.logfile:"+logPath,
			"-f", "udp port 6544", "-a", "duration:4", "-w", pcap))
		extcapWaitLog(t, logPath, "bpfcap: capturing at", r.ended)
		// UDP to a closed port of the peer: dropped with NO_SOCKET.
		sent := extcapSend(t, p, 6544, 0, 3)
		if err := r.wait(t, 20*time.Second); err != nil {
			t.Fatalf("tshark: %v\n%s", err, r.stderr)
		}
		var want []string
		for _, s := range sent {
			want = append(want, "6544|"+hex.EncodeToString([]byte(s))+"|NO_SOCKET")
		}
		got := tsharkFields(t, pcap, "udp.dstport", "udp.payload", "frame.comment")
		for i := range got {
			// Keep only the drop reason's name from the comment.
			f := strings.SplitN(got[i], "|", 3)
			if len(f) == 3 && strings.Contains(f[2], "NO_SOCKET") {
				got[i] = f[0] + "|" + f[1] + "|NO_SOCKET"
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("tshark captured\n%s\nwant\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), readFile(logPath))
		}
		testutils.WaitProgramsUnloaded(t, "probe_", before)
		t.Logf("log:\n%s", readFile(logPath))
	})

	t.Run("prog", func(t *testing.T) {
		// The XDP example of bpf/bpfcap.h, found by name; its rule ids
		// arrive as packet ids.
		p, xp, name := progXDP(t)
		dir := t.TempDir()
		pcap, logPath := filepath.Join(dir, "prog.pcapng"), filepath.Join(dir, "log")
		r := startTshark(t, x.command("", "-i", "bpfcap-prog",
			"-o", "extcap.bpfcap_prog.progname:"+name, "-o", "extcap.bpfcap_prog.logfile:"+logPath,
			"-f", "udp", "-a", "duration:4", "-w", pcap))
		extcapWaitLog(t, logPath, "bpfcap: capturing at prog:"+name, r.ended)
		if !progEnabled(t, xp.Program) {
			t.Fatal("capture is off while tshark captures")
		}
		testutils.SendUDP(t, p, 5353, 3, 30)
		testutils.SendUDP(t, p, 9, 2, 30)
		testutils.SendUDP(t, p, 7777, 2, 30) // no rule: the program emits nothing
		if err := r.wait(t, 20*time.Second); err != nil {
			t.Fatalf("tshark: %v\n%s", err, r.stderr)
		}
		if progEnabled(t, xp.Program) {
			t.Fatal("capture still on after tshark stopped bpfcap")
		}
		got := map[string]int{}
		lines := tsharkFields(t, pcap, "udp.dstport", "frame.packet_id")
		for _, l := range lines {
			got[l]++
		}
		if len(lines) != 5 || got["5353|4097"] != 3 || got["9|8194"] != 2 {
			t.Fatalf("tshark captured\n%s\nwant 3 x 5353|4097 and 2 x 9|8194\nlog:\n%s", strings.Join(lines, "\n"), readFile(logPath))
		}
	})

	t.Run("errors", func(t *testing.T) {
		p := testutils.NewVethPair(t)
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"-i", "bpfcap-tc", "-o", "extcap.bpfcap_tc.dev:" + p.HostName, "-f", "udp port"}, "syntax error"},
			{[]string{"-i", "bpfcap-tc", "-o", "extcap.bpfcap_tc.dev:bpfcapnosuch0"}, `interface "bpfcapnosuch0" does not exist`},
		} {
			cmd := x.command(p.HostNSName, append(c.args, "-a", "duration:10", "-w", filepath.Join(t.TempDir(), "x.pcapng"))...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			if err == nil || !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("tshark %s: %v, want a failure showing %q; stderr:\n%s", strings.Join(c.args, " "), err, c.want, stderr.String())
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Fatalf("tshark took %v to report the error", d)
			}
			t.Logf("tshark %s: %v\n%s", strings.Join(c.args, " "), err, strings.TrimSpace(stderr.String()))
			if left := tcLeftovers(t, p); len(left) != 0 {
				t.Fatalf("left attached: %v", left)
			}
		}
	})
}

// readFile returns a file's contents, or the error reading it.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
