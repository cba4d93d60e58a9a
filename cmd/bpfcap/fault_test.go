package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/progcap"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// The fault matrix (issue 14): real binaries, real signals, real
// namespaces. Every row checks that nothing stays attached after bpfcap
// exits, that the file reads to its end, and that the counts agree.
// Tests named TestFaultHost* need host tools (a Go toolchain to build the
// binary they signal, capinfos, ip); the other TestFault* tests run in
// minimal guests too.

// binRun is the bpfcap binary running as its own process.
type binRun struct {
	cmd    *exec.Cmd
	stderr *testutils.SyncBuffer
	done   chan struct{}
	code   int
}

// startBin runs bpfcap with args, in the named netns when nsName is set.
func startBin(t *testing.T, nsName string, args ...string) *binRun {
	t.Helper()
	bin := testutils.BuildBinary(t)
	var cmd *exec.Cmd
	if nsName != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", nsName, bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	r := &binRun{cmd: cmd, stderr: &testutils.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		r.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// waitReady waits for the "capturing at" line (attached, output open).
func (r *binRun) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(r.stderr.String(), "bpfcap: capturing at") {
		select {
		case <-r.done:
			t.Fatalf("bpfcap ended (status %d) before capturing:\n%s", r.code, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bpfcap did not start within 20 s:\n%s", r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the process to end and returns its exit status.
func (r *binRun) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(within):
		t.Fatalf("bpfcap did not end within %v:\n%s", within, r.stderr)
	}
	return -1
}

// writtenCount returns N from stderr's "bpfcap: N packets written".
func writtenCount(t *testing.T, stderr string) int {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(line, "bpfcap: "); ok {
			if n, tail, ok := strings.Cut(rest, " packets written"); ok && tail != "" {
				v, err := strconv.Atoi(n)
				if err == nil {
					return v
				}
			}
		}
	}
	t.Fatalf("no packet count on stderr:\n%s", stderr)
	return 0
}

// checkFile reads path to its end with the project's reader and checks
// it holds want packets and ends with statistics.
func checkFile(t *testing.T, path string, want int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapng.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	pkts := 0
	for {
		if _, err := rd.Next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read %s: %v", path, err)
			}
			break
		}
		pkts++
	}
	if pkts != want {
		t.Fatalf("%s holds %d packets, stderr says %d", path, pkts, want)
	}
	var held uint64
	for _, st := range rd.Stats() {
		held += st.Stats.Captured
	}
	if len(rd.Stats()) == 0 {
		t.Fatalf("%s has no statistics block at its end", path)
	}
	if held < uint64(want) {
		t.Fatalf("%s: statistics say %d captured, the file holds %d", path, held, want)
	}
}

// openHookOccupants counts the programs in the hook pinned at pin.
func openHookOccupants(pin string) (int, error) {
	h, err := xdpcap.OpenHook(pin)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	occ, err := h.Occupants()
	return len(occ), err
}

// hostCheckFile is checkFile plus capinfos reading the file to its end.
func hostCheckFile(t *testing.T, path string, want int) {
	t.Helper()
	checkFile(t, path, want)
	out, err := exec.Command("capinfos", "-c", "-M", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("Number of packets:   %d\n", want)) {
		t.Fatalf("capinfos (%v) disagrees with %d packets:\n%s", err, want, out)
	}
}

// xdpOwned is the XDP firewall with its hook pinned, attached to the peer
// end of a veth pair by a link the test controls.
type xdpOwned struct {
	*testutils.VethPair
	pin  string
	fw   *firewall.Firewall
	link link.Link
}

func newXDPOwned(t *testing.T) *xdpOwned {
	t.Helper()
	p := testutils.NewVethPair(t)
	pin := xdpPinPath(t)
	h, err := xdpcap.CreatePinned(pin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	fw, err := firewall.Load(firewall.Options{Hook: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	x := &xdpOwned{VethPair: p, pin: pin, fw: fw}
	err = testutils.Do(t, p.PeerNS, func() error {
		x.link, err = link.AttachXDP(link.XDPOptions{Program: fw.Program, Interface: p.PeerIndex})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.link.Close() })
	return x
}

// faultXDP is the XDP firewall with a pinned hook on a fresh veth pair.
func faultXDP(t *testing.T) *xdpSetup {
	t.Helper()
	s := newXDPSetup(t, firewall.Options{})
	warmUp(t, s)
	return s
}

// TestFaultHostDropPrivilegesClsact: -Z nobody with clsact still detaches both
// filters and removes the qdisc bpfcap added.
func TestFaultHostDropPrivilegesClsact(t *testing.T) {
	p := testutils.NewVethPair(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	os.Chmod(filepath.Dir(dir), 0o755)
	out := filepath.Join(dir, "z.pcapng")
	r := startBin(t, p.HostNSName, "tc", "dev", p.HostName, "--tc-mode", "clsact", "-Z", "nobody", "udp", "-w", out)
	r.waitReady(t)
	testutils.SendUDP(t, p, 2000, 3, 20)
	time.Sleep(200 * time.Millisecond)
	r.cmd.Process.Signal(syscall.SIGHUP)
	if code := r.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, r.stderr)
	}
	if left := tcLeftovers(t, p); len(left) != 0 {
		t.Fatalf("left attached after -Z: %v\n%s", left, r.stderr)
	}
	hostCheckFile(t, out, writtenCount(t, r.stderr.String()))
}

// TestFaultHostProgOwner: a second `bpfcap prog` on a program a live bpfcap
// captures is refused naming the owner's pid; the first keeps capturing
// and turns capture off when it ends.
func TestFaultHostProgOwner(t *testing.T) {
	p, x, _ := progXDP(t)
	pin := xdpPinPath(t)
	if err := x.Program.Pin(pin); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "first.pcapng")
	first := startBin(t, "", "prog", "pinned", pin, "-w", out)
	first.waitReady(t)
	err, _ := runOnce("prog", "pinned", pin, "-c", "1")
	if !errors.Is(err, progcap.ErrBusy) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", first.cmd.Process.Pid)) {
		t.Fatalf("second bpfcap prog: %v; want busy naming pid %d", err, first.cmd.Process.Pid)
	}
	if code := exitCode(err, &bytes.Buffer{}); code != 2 {
		t.Fatalf("exit status %d, want 2", code)
	}
	if !progEnabled(t, x.Program) {
		t.Fatal("the refused second capture turned capture off")
	}
	testutils.SendUDP(t, p, 5353, 3, 20)
	time.Sleep(300 * time.Millisecond)
	first.cmd.Process.Signal(syscall.SIGINT)
	if code := first.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("first: exit status %d:\n%s", code, first.stderr)
	}
	if n := writtenCount(t, first.stderr.String()); n != 3 {
		t.Fatalf("first captured %d, want all 3:\n%s", n, first.stderr)
	}
	hostCheckFile(t, out, 3)
	if progEnabled(t, x.Program) {
		t.Fatal("capture left on")
	}
}

// TestFaultHostUnprivileged: run as nobody, `prog id N` and `xdp PIN` say
// they need privilege (exit 2), not a bare "operation not permitted".
func TestFaultHostUnprivileged(t *testing.T) {
	_, x, _ := progXDP(t)
	s := faultXDP(t)
	bin := testutils.BuildBinary(t)
	os.Chmod(filepath.Dir(bin), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(bin)), 0o755)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"prog", "id", fmt.Sprint(progID(t, x.Program))}, "needs privilege"},
		{[]string{"xdp", s.pin}, "needs privilege"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("bpfcap %s as nobody: %v, want exit 2 saying %q:\n%s", strings.Join(c.args, " "), err, c.want, out)
		}
	}
	assertHookEmpty(t, s.pin)
}
