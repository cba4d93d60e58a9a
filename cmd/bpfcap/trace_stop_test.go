package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// asCommandEnv, set to 1 in the environment of this test binary, makes it
// run as the bpfcap command (TestMain): a process of its own to signal,
// where no Go toolchain builds the real binary (the guests).
const asCommandEnv = "BPFCAP_TEST_AS_COMMAND"

// startSelf runs this test binary as `bpfcap args...` and returns the
// command, its stderr and a channel closed when it ended.
func startSelf(t *testing.T, args ...string) (*exec.Cmd, *testutils.SyncBuffer, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asCommandEnv+"=1")
	stderr := &testutils.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd, stderr, done
}

// bpfObjectsOf returns the ids of the BPF programs and links process pid
// holds file descriptors of (prog_id and link_id in /proc/PID/fdinfo).
func bpfObjectsOf(t *testing.T, pid int) (progs []ebpf.ProgramID, links []link.ID) {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fdinfo"
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list the file descriptors of bpfcap: %v", err)
	}
	seen := map[string]bool{}
	for _, fd := range fds {
		info, err := os.ReadFile(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			key, v, ok := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			if !ok || (key != "prog_id" && key != "link_id") || seen[key+v] {
				continue
			}
			seen[key+v] = true
			id, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				continue
			}
			if key == "prog_id" {
				progs = append(progs, ebpf.ProgramID(id))
			} else {
				links = append(links, link.ID(id))
			}
		}
	}
	return progs, links
}

// TestTracePatternAllStops: `bpfcap trace all`, in a process of its own,
// ended by SIGINT, SIGTERM, SIGHUP or -c, exits 0 with a complete file and
// leaves none of the programs and links it attached in the kernel.
func TestTracePatternAllStops(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	requireAllInSeconds(t)
	p := testutils.NewVethPair(t)
	const port = 6554
	for _, c := range []struct {
		name string
		sig  syscall.Signal
		args []string
	}{
		{"SIGINT", syscall.SIGINT, nil},
		{"SIGTERM", syscall.SIGTERM, nil},
		{"SIGHUP", syscall.SIGHUP, nil},
		{"count", 0, []string{"-c", "3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "all.pcapng")
			args := append([]string{"trace", "all", "-w", out}, c.args...)
			cmd, stderr, done := startSelf(t, append(args, "udp dst port "+strconv.Itoa(port))...)
			start := time.Now()
			// Hundreds of programs may load first (Linux 5.10).
			deadline := start.Add(5 * time.Minute)
			for !strings.Contains(stderr.String(), "bpfcap: capturing at") {
				select {
				case <-done:
					t.Fatalf("bpfcap ended before capturing:\n%s", stderr)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("bpfcap not capturing after 5 min:\n%s", stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			progs, links := bpfObjectsOf(t, cmd.Process.Pid)
			t.Logf("capturing after %.1f s, holding %d programs and %d links", time.Since(start).Seconds(), len(progs), len(links))
			if len(progs) == 0 {
				t.Fatalf("bpfcap holds no BPF program while capturing")
			}
			stopped := time.Now()
			if c.sig != 0 {
				cmd.Process.Signal(c.sig)
			}
			end := time.After(time.Minute)
		wait:
			for {
				if c.sig == 0 {
					sendUDP(t, p, p.PeerIP, port, 1)
				}
				select {
				case <-done:
					break wait
				case <-end:
					t.Fatalf("bpfcap did not end within a minute:\n%s", stderr)
				case <-time.After(200 * time.Millisecond):
				}
			}
			t.Logf("ended %.1f s after the signal or the first datagram", time.Since(stopped).Seconds())
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit status %d, want 0:\n%s", code, stderr)
			}
			_, pkts := readPcapng(t, out)
			if c.sig == 0 && len(pkts) != 3 {
				t.Errorf("-c 3 wrote %d packets", len(pkts))
			}
			// The kernel frees programs after grace periods: wait.
			gone := time.Now().Add(15 * time.Second)
			for {
				left := leftOf(progs, links)
				if len(left) == 0 {
					break
				}
				if time.Now().After(gone) {
					t.Fatalf("15 s after bpfcap ended, still in the kernel: %s", strings.Join(left, ", "))
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// leftOf names the programs and links of ids that still exist.
func leftOf(progs []ebpf.ProgramID, links []link.ID) []string {
	var left []string
	for _, id := range progs {
		if p, err := ebpf.NewProgramFromID(id); !errors.Is(err, os.ErrNotExist) {
			p.Close()
			left = append(left, "program "+strconv.Itoa(int(id)))
		}
	}
	for _, id := range links {
		if l, err := link.NewFromID(id); !errors.Is(err, os.ErrNotExist) {
			l.Close()
			left = append(left, "link "+strconv.Itoa(int(id)))
		}
	}
	return left
}
