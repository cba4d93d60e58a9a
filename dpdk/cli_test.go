//go:build dpdk

package dpdk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// These tests run the real `bpfcap dpdk` command (built with the dpdk
// tag) against dpdk-testpmd: each run is its own DPDK secondary process.

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs bpfcap with args and a deadline.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(testutils.BuildBinary(t, "dpdk"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("bpfcap %v: still running after 60s; stderr: %s", args, stderr.String())
	}
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCLIList(t *testing.T) {
	sharedProcess(t)
	r := runCLI(t, "dpdk", "list", "--file-prefix", sharedPrefix)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, re := range []string{`(?m)^0\s+net_null0\s+([0-9a-f]{2}:){5}[0-9a-f]{2}\s+.*net_null`, `(?m)^1\s+net_ring0\s+.*net_ring`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("list output lacks %s:\n%s", re, r.stdout)
		}
	}
}

// dpdkStatsLine matches the per-port line bpfcap prints on stderr.
var dpdkStatsLine = regexp.MustCompile(`(?m)^(\S+): dpdk accepted (\d+), filtered (\d+), nombuf (\d+), ringfull (\d+)$`)
var sessionStatsLine = regexp.MustCompile(`(?m)^(\S+):(?: seen \d+,)? matched (\d+), captured (\d+), lost (\d+)`)

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCLIFileStats(t *testing.T) {
	sharedProcess(t)
	const count = 20000
	path := filepath.Join(t.TempDir(), "cli.pcapng")
	r := runCLI(t, "dpdk", "--file-prefix", sharedPrefix, nullPort, ringPort, "tx", "--ring-size", "1024",
		"-c", strconv.Itoa(count), "-w", path, "udp and src net 198.18.0.0/18")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	dl := dpdkStatsLine.FindAllStringSubmatch(r.stderr, -1)
	sl := sessionStatsLine.FindAllStringSubmatch(r.stderr, -1)
	if len(dl) != 2 || len(sl) != 2 {
		t.Fatalf("want 2 dpdk and 2 statistics lines, stderr:\n%s", r.stderr)
	}
	rb := readFile(t, path)
	checkTimes(t, rb)
	total := 0
	for i := range 2 {
		accepted, filtered, ringfull := atoi(t, dl[i][2]), atoi(t, dl[i][3]), atoi(t, dl[i][5])
		captured := atoi(t, sl[i][3])
		if accepted == 0 || filtered == 0 {
			t.Errorf("%s: accepted %d, filtered %d: want both", dl[i][1], accepted, filtered)
		}
		if captured != rb.perIf[i] {
			t.Errorf("%s: stderr says captured %d, the file has %d", sl[i][1], captured, rb.perIf[i])
		}
		// -c leaves copies in the ring, freed at exit: not more.
		if captured+ringfull > accepted {
			t.Errorf("%s: captured %d + ringfull %d > accepted %d", dl[i][1], captured, ringfull, accepted)
		}
		if rb.stats[i].Stats.Captured != uint64(captured) || rb.stats[i].Stats.Lost != uint64(ringfull) {
			t.Errorf("ISB %d: %+v, stderr says captured %d, ringfull %d", i, rb.stats[i].Stats, captured, ringfull)
		}
		total += captured
	}
	if total != count {
		t.Errorf("-c %d wrote %d packets", count, total)
	}
	if n := tsharkCount(t, path, "ip.src == 198.18.0.0/18"); n != total || n == 0 {
		t.Fatalf("tshark: %d matching packets, bpfcap wrote %d", n, total)
	}
}

func TestCLIStdout(t *testing.T) {
	sharedProcess(t)
	// pcapng on a pipe: tshark reads it live.
	sh := fmt.Sprintf("%s dpdk --file-prefix %s %s -c 25 | tshark -r - -T fields -e udp.dstport", testutils.BuildBinary(t, "dpdk"), sharedPrefix, nullPort)
	out, err := exec.Command("sh", "-c", sh).Output()
	if err != nil {
		t.Fatalf("%s: %v", sh, err)
	}
	if got := strings.Count(string(out), "9\n"); got != 25 {
		t.Fatalf("tshark read %d packets to UDP port 9 from the pipe, want 25:\n%s", got, out)
	}
}

func TestCLIErrors(t *testing.T) {
	sharedProcess(t)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"bad port", []string{"dpdk", "--file-prefix", sharedPrefix, "net_nosuch0"}, []string{"no such DPDK port in the primary (it has net_null0 (port 0), net_ring0 (port 1))"}},
		{"no primary", []string{"dpdk", "--file-prefix", "bpfcap-nobody", nullPort}, []string{"no DPDK primary process running", "start the DPDK application first"}},
		{"bad filter", []string{"dpdk", "--file-prefix", sharedPrefix, nullPort, "udp", "port"}, []string{"syntax error"}},
		{"bad direction", []string{"dpdk", "--file-prefix", sharedPrefix, nullPort, "rxx"}, []string{"syntax error"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.pcapng")
			r := runCLI(t, append(c.args, "-w", out)...)
			if r.code != 2 {
				t.Fatalf("exit %d, stderr %q: want exit 2", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q: want %q", r.stderr, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was created by a capture that never started", out)
			}
		})
	}
}

// TestCLIVersionMismatch fakes a primary of another DPDK version: a
// runtime config file, locked as a live primary locks it, whose version
// field says 21.11.
func TestCLIVersionMismatch(t *testing.T) {
	sharedProcess(t)
	prefix := fmt.Sprintf("bpfcap-fake%d", os.Getpid())
	dir := filepath.Join("/var/run/dpdk", prefix)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var hdr [4096]byte
	magic, version := uint32(19820526), uint32(21<<24|11<<16)
	*(*uint32)(unsafe.Pointer(&hdr[0])) = magic
	*(*uint32)(unsafe.Pointer(&hdr[4])) = version
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, hdr[:], 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 64, Len: 64}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "dpdk", "--file-prefix", prefix, nullPort)
	want := "DPDK version mismatch: the primary with file prefix \"" + prefix + "\" runs DPDK 21.11.0, bpfcap was built against DPDK 22.11"
	if r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d, stderr %q: want exit 2 and %q", r.code, r.stderr, want)
	}
}

// TestCLIAllDropped shows trap 1 (DPDK bug 1073): without aligning the
// mempool ops tables the primary cannot allocate from our pool; bpfcap
// must say so instead of capturing nothing forever.
func TestCLIAllDropped(t *testing.T) {
	sharedProcess(t)
	r := runCLI(t, "dpdk", "--file-prefix", sharedPrefix, nullPort, "--no-align-ops", "--duration", "20s", "-w", filepath.Join(t.TempDir(), "x.pcapng"))
	if r.code != 2 || !strings.Contains(r.stderr, "every captured packet was dropped in the primary") || !strings.Contains(r.stderr, "DPDK bug 1073") {
		t.Fatalf("exit %d, stderr %q: want exit 2 and the bug 1073 explanation", r.code, r.stderr)
	}
}

// TestCLIPrimaryExits kills the primary in the middle of a capture:
// bpfcap must end by itself, say why, and leave a complete file.
func TestCLIPrimaryExits(t *testing.T) {
	requireDPDKEnv(t)
	prefix := fmt.Sprintf("bpfcap-exit%d", os.Getpid())
	tp, err := startTestpmd(prefix, "txonly", nil, nullPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.stop)
	path := filepath.Join(t.TempDir(), "exit.pcapng")
	cmd := exec.Command(testutils.BuildBinary(t, "dpdk"), "dpdk", "--file-prefix", prefix, nullPort, "-w", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	// Wait for packets in the file, then take the primary away.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, err := os.Stat(path); err == nil && st.Size() > 64<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no packets written after 20s; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("file has packets; killing the primary")
	tp.kill()
	t.Logf("primary killed")
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("bpfcap still running 15s after the primary died; stderr: %s", stderr.String())
	}
	if waitErr != nil {
		t.Fatalf("bpfcap: %v; stderr: %s", waitErr, stderr.String())
	}
	if !strings.Contains(stderr.String(), "exited; capture ended") {
		t.Errorf("stderr does not say the primary exited: %s", stderr.String())
	}
	rb := readFile(t, path)
	if rb.perIf[0] == 0 || len(rb.stats) != 1 {
		t.Fatalf("file has %d packets and %d statistics blocks", rb.perIf[0], len(rb.stats))
	}
	if n := tsharkCount(t, path, ""); n != rb.perIf[0] {
		t.Fatalf("tshark reads %d packets, the file has %d", n, rb.perIf[0])
	}
}

// TestCLITakeover kills a capture so that it cannot disable pdump: the
// port stays busy, the next capture says so and how to get past it, and
// --takeover does.
func TestCLITakeover(t *testing.T) {
	sharedProcess(t)
	cmd := exec.Command(testutils.BuildBinary(t, "dpdk"), "dpdk", "--file-prefix", sharedPrefix, ringPort, "-w", os.DevNull)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "capturing at") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			t.Fatalf("capture did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-done
	r := runCLI(t, "dpdk", "--file-prefix", sharedPrefix, ringPort, "-c", "5", "-w", os.DevNull)
	if r.code != 2 || !strings.Contains(r.stderr, "already has a capture") || !strings.Contains(r.stderr, "--takeover") {
		t.Fatalf("busy port: exit %d, stderr %q: want exit 2 suggesting --takeover", r.code, r.stderr)
	}
	path := filepath.Join(t.TempDir(), "takeover.pcapng")
	r = runCLI(t, "dpdk", "--file-prefix", sharedPrefix, ringPort, "-c", "5", "--takeover", "-w", path)
	if r.code != 0 {
		t.Fatalf("--takeover: exit %d: %s", r.code, r.stderr)
	}
	if n := tsharkCount(t, path, ""); n != 5 {
		t.Fatalf("--takeover capture has %d packets, want 5", n)
	}
}
