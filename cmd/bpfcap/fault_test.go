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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/examples/firewall"
	example "github.com/bpfcap/bpfcap/examples/progcap"
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

var (
	faultBinOnce sync.Once
	faultBinPath string
	faultBinErr  error
)

// faultBinary builds bpfcap once per test process (signals and the child
// filter compiler need a real process).
func faultBinary(t *testing.T) string {
	t.Helper()
	faultBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bpfcap-fault-")
		if err != nil {
			faultBinErr = err
			return
		}
		faultBinPath = filepath.Join(dir, "bpfcap")
		if out, err := exec.Command("go", "build", "-o", faultBinPath, ".").CombinedOutput(); err != nil {
			faultBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if faultBinErr != nil {
		t.Fatal(faultBinErr)
	}
	return faultBinPath
}

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
	bin := faultBinary(t)
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

// TestFaultHostSignals: every signal tcpdump cleans up on ends an XDP hook
// capture, a tc capture (clsact and TCX) and a prog capture the same way:
// exit 0, statistics on stderr, the file complete with the count stderr
// gives, and nothing left attached or switched on.
func TestFaultHostSignals(t *testing.T) {
	sigs := []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT}
	t.Run("xdp", func(t *testing.T) {
		s := faultXDP(t)
		for _, sig := range sigs {
			out := filepath.Join(t.TempDir(), "x.pcapng")
			r := startBin(t, "", "xdp", s.pin, "udp", "-w", out)
			r.waitReady(t)
			testutils.SendUDP(t, s.VethPair, 2000, 3, 20)
			r.cmd.Process.Signal(sig)
			if code := r.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("%v: exit status %d, want 0:\n%s", sig, code, r.stderr)
			}
			assertHookEmpty(t, s.pin)
			hostCheckFile(t, out, writtenCount(t, r.stderr.String()))
			if !strings.Contains(r.stderr.String(), "xdp:"+s.pin+":") {
				t.Fatalf("%v: no statistics on stderr:\n%s", sig, r.stderr)
			}
		}
	})
	for _, mode := range []string{"clsact", "tcx"} {
		t.Run("tc-"+mode, func(t *testing.T) {
			p := testutils.NewVethPair(t)
			for _, sig := range sigs {
				out := filepath.Join(t.TempDir(), "t.pcapng")
				r := startBin(t, p.HostNSName, "tc", "dev", p.HostName, "--tc-mode", mode, "udp", "-w", out)
				r.waitReady(t)
				testutils.SendUDP(t, p, 2000, 3, 20)
				r.cmd.Process.Signal(sig)
				if code := r.wait(t, 10*time.Second); code != 0 {
					t.Fatalf("%v: exit status %d, want 0:\n%s", sig, code, r.stderr)
				}
				if left := tcLeftovers(t, p); len(left) != 0 {
					t.Fatalf("%v: left attached: %v", sig, left)
				}
				n := writtenCount(t, r.stderr.String())
				if n < 3 {
					t.Fatalf("%v: %d packets written, want the 3 sent:\n%s", sig, n, r.stderr)
				}
				hostCheckFile(t, out, n)
			}
		})
	}
	t.Run("prog", func(t *testing.T) {
		p, x, _ := progXDP(t)
		pin := xdpPinPath(t)
		if err := x.Program.Pin(pin); err != nil {
			t.Fatal(err)
		}
		for _, sig := range sigs {
			out := filepath.Join(t.TempDir(), "p.pcapng")
			r := startBin(t, "", "prog", "pinned", pin, "-w", out)
			r.waitReady(t)
			testutils.SendUDP(t, p, 5353, 2, 20)
			r.cmd.Process.Signal(sig)
			if code := r.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("%v: exit status %d, want 0:\n%s", sig, code, r.stderr)
			}
			if progEnabled(t, x.Program) {
				t.Fatalf("%v: capture left on", sig)
			}
			hostCheckFile(t, out, writtenCount(t, r.stderr.String()))
		}
	})
}

// TestFaultHostClosedStderr: stderr closed during start-up (`2>&1 | head -1`)
// while bpfcap empties five stale hook slots: SIGPIPE is not fatal, it ends
// the run through the clean-up as tcpdump's does, and the hook is empty at
// the end (the stale slots emptied too).
func TestFaultHostClosedStderr(t *testing.T) {
	s := faultXDP(t)
	killed := startBin(t, "", "xdp", s.pin, "udp", "-w", filepath.Join(t.TempDir(), "k.pcapng"))
	killed.waitReady(t)
	killed.cmd.Process.Signal(syscall.SIGKILL)
	killed.wait(t, 10*time.Second)

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close() // the reader went away before bpfcap writes a line
	out := filepath.Join(t.TempDir(), "x.pcapng")
	cmd := exec.Command(faultBinary(t), "xdp", s.pin, "udp", "-w", out)
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// The first line on stderr raises SIGPIPE, which ends the run like
	// tcpdump's: through the clean-up, whatever start-up step it was in.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := cmd.ProcessState.ExitCode(); code != 0 && code != 128+int(syscall.SIGPIPE) {
			t.Fatalf("exit: %v, want 0 (ended while capturing) or %d (before)", err, 128+int(syscall.SIGPIPE))
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("a closed stderr did not end the capture within 20 s")
	}
	assertHookEmpty(t, s.pin)
	if _, err := os.Stat(out); err == nil {
		xdpReadPcapng(t, out) // whatever it holds, it is whole
	}
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

// TestFaultHostCompileSignal: SIGTERM and SIGINT while libpcap compiles a
// huge filter end bpfcap within a second or two (128+N), with nothing
// attached and no file created.
func TestFaultHostCompileSignal(t *testing.T) {
	p := testutils.NewVethPair(t)
	var terms []string
	for i := 0; i < 2000; i++ {
		terms = append(terms, fmt.Sprintf("host 10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	expr := strings.Join(terms, " or ")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		out := filepath.Join(t.TempDir(), "c.pcapng")
		r := startBin(t, p.HostNSName, "tc", "dev", p.HostName, "--tc-mode", "clsact", expr, "-w", out)
		time.Sleep(1500 * time.Millisecond)
		start := time.Now()
		r.cmd.Process.Signal(sig)
		code := r.wait(t, 5*time.Second)
		if code != 128+int(sig) {
			t.Fatalf("%v: exit status %d, want %d:\n%s", sig, code, 128+int(sig), r.stderr)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("%v: took %v to end", sig, d)
		}
		if !strings.Contains(r.stderr.String(), "before the capture started") {
			t.Fatalf("%v: stderr:\n%s", sig, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v: output file created", sig)
		}
		if left := tcLeftovers(t, p); len(left) != 0 {
			t.Fatalf("%v: left attached: %v", sig, left)
		}
		if out, _ := exec.Command("pgrep", "-f", compileHelperCmd).Output(); len(out) != 0 {
			// Other test processes may compile too; only ours must be gone.
			for _, pid := range strings.Fields(string(out)) {
				if ppid, _ := os.ReadFile("/proc/" + pid + "/stat"); strings.Contains(string(ppid), " "+strconv.Itoa(r.cmd.Process.Pid)+" ") {
					t.Fatalf("%v: compile child %s outlived bpfcap", sig, pid)
				}
			}
		}
	}
}

// TestFaultHostDiskFull: a tc capture into a 256 KiB tmpfs: bpfcap ends
// with "no space left" (exit 2), the file is whole blocks to its end with
// its statistics, capinfos agrees, stderr's count is the file's, and what
// could not be written is counted.
func TestFaultHostDiskFull(t *testing.T) {
	if _, err := exec.LookPath("capinfos"); err != nil {
		t.Fatalf("capinfos is needed on the host: %v", err)
	}
	p := testutils.NewVethPair(t)
	dir := t.TempDir()
	if err := unix.Mount("bpfcap-full", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	out := filepath.Join(dir, "full.pcapng")
	r := startBin(t, p.HostNSName, "tc", "dev", p.HostName, "--tc-mode", "clsact", "udp", "-w", out)
	r.waitReady(t)
	for i := 0; i < 10; i++ {
		testutils.SendUDP(t, p, 2000, 50, 1000)
		select {
		case <-r.done:
		default:
			continue
		}
		break
	}
	code := r.wait(t, 10*time.Second)
	stderr := r.stderr.String()
	if code != 2 || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("exit status %d, want 2 with no space left:\n%s", code, stderr)
	}
	if left := tcLeftovers(t, p); len(left) != 0 {
		t.Fatalf("left attached: %v", left)
	}
	n := writtenCount(t, stderr)
	hostCheckFile(t, out, n)
	// The hooks' captured counts add up to what the file holds plus what
	// stderr counts as not written.
	var captured, notWritten int
	for _, line := range strings.Split(stderr, "\n") {
		if _, rest, ok := strings.Cut(line, ", captured "); ok && strings.HasPrefix(line, "tc:") {
			v, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			captured += v
		}
		if _, rest, ok := strings.Cut(line, "), "); ok && strings.HasSuffix(line, " captured but not written") {
			notWritten, _ = strconv.Atoi(strings.TrimSuffix(rest, " captured but not written"))
		}
	}
	if captured == 0 || captured != n+notWritten {
		t.Fatalf("hooks captured %d, file holds %d, %d counted as not written:\n%s", captured, n, notWritten, stderr)
	}
}

// TestFaultTargetGone: the capture target goes away while bpfcap runs: a
// deleted veth (tc), an XDP program that exits, a hook pinned again. Each
// ends within a few seconds with exit 2 and a message naming it, the
// file complete, nothing left attached.
func TestFaultTargetGone(t *testing.T) {
	testutils.RunsInGuests(t)
	t.Run("veth deleted", func(t *testing.T) {
		p := testutils.NewVethPair(t)
		out := filepath.Join(t.TempDir(), "g.pcapng")
		r := xdpStart(t, &p.HostNS, "tc", "dev", p.HostName, "--tc-mode", "clsact", "-w", out)
		r.waitFile(t, out)
		h, err := netlink.NewHandleAt(p.HostNS)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		l, err := h.LinkByIndex(p.HostIndex)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkDel(l); err != nil {
			t.Fatal(err)
		}
		err = progWaitEnd(t, r)
		if err == nil || !strings.Contains(err.Error(), "was deleted") {
			t.Fatalf("bpfcap: %v, want the interface named as deleted\n%s", err, r.stderr)
		}
		checkFile(t, out, writtenCount(t, r.stderr.String()))
	})
	t.Run("xdp program exits", func(t *testing.T) {
		s := newXDPOwned(t)
		out := filepath.Join(t.TempDir(), "x.pcapng")
		r := xdpStart(t, nil, "xdp", s.pin, "-w", out)
		r.waitFile(t, out)
		time.Sleep(1500 * time.Millisecond) // seen in use once
		s.link.Close()
		s.fw.Close()
		err := progWaitEnd(t, r)
		if err == nil || !strings.Contains(err.Error(), "no program uses hook") {
			t.Fatalf("bpfcap: %v, want the hook named as unused\n%s", err, r.stderr)
		}
		assertHookEmpty(t, s.pin)
		checkFile(t, out, writtenCount(t, r.stderr.String()))
	})
	t.Run("prog loader exits", func(t *testing.T) {
		p := testutils.NewVethPair(t)
		x, err := example.LoadXDP(example.XDPOptions{Name: progName("pcg")})
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		var l link.Link
		err = testutils.Do(t, p.PeerNS, func() error {
			l, err = link.AttachXDP(link.XDPOptions{Program: x.Program, Interface: p.PeerIndex})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out := filepath.Join(t.TempDir(), "p.pcapng")
		r := xdpStart(t, nil, "prog", "id", fmt.Sprint(progID(t, x.Program)), "-w", out)
		r.waitFile(t, out)
		time.Sleep(1500 * time.Millisecond) // seen kept once
		l.Close()
		x.Close()
		err = progWaitEnd(t, r)
		if err == nil || !strings.Contains(err.Error(), "its loader exited") {
			t.Fatalf("bpfcap: %v, want the program named as gone\n%s", err, r.stderr)
		}
		checkFile(t, out, writtenCount(t, r.stderr.String()))
	})
	t.Run("hook pinned again", func(t *testing.T) {
		s := newXDPOwned(t)
		out := filepath.Join(t.TempDir(), "x.pcapng")
		r := xdpStart(t, nil, "xdp", s.pin, "-w", out)
		r.waitFile(t, out)
		oldHook, err := xdpcap.OpenHook(s.pin)
		if err != nil {
			t.Fatal(err)
		}
		defer oldHook.Close()
		if err := os.Remove(s.pin); err != nil {
			t.Fatal(err)
		}
		h2, err := xdpcap.CreatePinned(s.pin)
		if err != nil {
			t.Fatal(err)
		}
		defer h2.Close()
		err = progWaitEnd(t, r)
		// "unpinned" when the check fell between the two steps.
		if err == nil || !(strings.Contains(err.Error(), "was pinned again") || strings.Contains(err.Error(), "was unpinned")) {
			t.Fatalf("bpfcap: %v, want the hook named as pinned again\n%s", err, r.stderr)
		}
		if occ, err := oldHook.Occupants(); err != nil || len(occ) != 0 {
			t.Fatalf("old hook not emptied: %v %v", occ, err)
		}
		checkFile(t, out, writtenCount(t, r.stderr.String()))
	})
}

// TestFaultHostUnprivileged: run as nobody, `prog id N` and `xdp PIN` say
// they need privilege (exit 2), not a bare "operation not permitted".
func TestFaultHostUnprivileged(t *testing.T) {
	_, x, _ := progXDP(t)
	s := faultXDP(t)
	bin := faultBinary(t)
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
