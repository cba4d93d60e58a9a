package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

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
	cmd := exec.Command(testutils.BuildBinary(t), "xdp", s.pin, "udp", "-w", out)
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
