//go:build dpdk

package dpdk

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testpmd is a dpdk-testpmd primary a test started. It busy-polls a CPU,
// so every test stops it as soon as it is done with it.
type testpmd struct {
	prefix string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	log    *lockedBuffer
	done   chan struct{}
	killed bool
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// requireDPDKEnv skips (or, under `make test-dpdk`, fails) when the
// machine cannot run a DPDK primary.
func dpdkEnvProblem() string {
	if os.Geteuid() != 0 {
		return "needs root (hugepages, /var/run/dpdk)"
	}
	if _, err := exec.LookPath("dpdk-testpmd"); err != nil {
		return "dpdk-testpmd not installed (apt-get install dpdk-dev)"
	}
	b, err := os.ReadFile("/proc/sys/vm/nr_hugepages")
	if err != nil || strings.TrimSpace(string(b)) == "0" {
		return "no hugepages reserved (echo 512 > /proc/sys/vm/nr_hugepages; mount -t hugetlbfs nodev /dev/hugepages)"
	}
	return ""
}

func requireDPDKEnv(tb testing.TB) {
	tb.Helper()
	if p := dpdkEnvProblem(); p != "" {
		if os.Getenv("BPFCAP_DPDK_TEST") != "" {
			tb.Fatalf("DPDK test environment missing: %s", p)
		}
		tb.Skipf("%s: run `make test-dpdk`", p)
	}
}

// startTestpmd starts a primary with the given file prefix, vdevs,
// forwarding mode and extra testpmd arguments, and waits until it forwards. Stop it with stop (also
// safe from a cleanup, and more than once).
func startTestpmd(prefix, mode string, extra []string, vdevs ...string) (*testpmd, error) {
	args := []string{"-l", "0-1", "-n", "4", "--no-pci", "--file-prefix=" + prefix, "--log-level=notice"}
	for _, v := range vdevs {
		args = append(args, "--vdev="+v)
	}
	args = append(args, "--", "--forward-mode="+mode, "--total-num-mbufs=8192")
	args = append(args, extra...)
	tp := &testpmd{prefix: prefix, log: &lockedBuffer{}, done: make(chan struct{})}
	// Line-buffered stdout, or the readiness line stays in stdio's buffer.
	tp.cmd = exec.Command("stdbuf", append([]string{"-oL", "dpdk-testpmd"}, args...)...)
	tp.cmd.Stdout = tp.log
	tp.cmd.Stderr = tp.log
	tp.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if tp.stdin, err = tp.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := tp.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dpdk-testpmd: %w", err)
	}
	go func() { tp.cmd.Wait(); close(tp.done) }()
	// Non-interactive testpmd forwards, then waits for a line on stdin.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(tp.log.String(), "Press enter to exit") {
		select {
		case <-tp.done:
			tp.cleanFiles()
			return nil, fmt.Errorf("dpdk-testpmd exited early: %s", tp.log.String())
		default:
		}
		if time.Now().After(deadline) {
			tp.stop()
			return nil, fmt.Errorf("dpdk-testpmd not ready after 30s: %s", tp.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return tp, nil
}

// stop ends testpmd (a line on stdin, then SIGTERM, then SIGKILL) and
// removes its hugepage and runtime files.
func (tp *testpmd) stop() {
	select {
	case <-tp.done:
		if !tp.killed {
			log := tp.log.String()
			if len(log) > 3000 {
				log = log[len(log)-3000:]
			}
			fmt.Fprintf(os.Stderr, "dpdk-testpmd %s had exited (%v); its log ends:\n%s\n", tp.prefix, tp.cmd.ProcessState, log)
		}
	default:
		tp.stdin.Write([]byte("\n"))
		tp.stdin.Close()
		select {
		case <-tp.done:
		case <-time.After(5 * time.Second):
			tp.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-tp.done:
			case <-time.After(5 * time.Second):
				tp.cmd.Process.Kill()
				<-tp.done
			}
		}
	}
	tp.cleanFiles()
}

// kill ends testpmd abruptly (the primary crashing).
func (tp *testpmd) kill() {
	tp.killed = true
	tp.cmd.Process.Kill()
	<-tp.done
}

func (tp *testpmd) cleanFiles() {
	files, _ := filepath.Glob("/dev/hugepages/" + tp.prefix + "map_*")
	for _, f := range files {
		os.Remove(f)
	}
	os.RemoveAll("/var/run/dpdk/" + tp.prefix)
}

// lines returns testpmd's output lines containing s.
func (tp *testpmd) lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(tp.log.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}
