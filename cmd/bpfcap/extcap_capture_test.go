package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// extcapSend sends the datagrams "extcap FIRST".."extcap FIRST+n-1" from
// the host end of p to the peer's port.
func extcapSend(t *testing.T, p *testutils.VethPair, port, first, n int) []string {
	t.Helper()
	var sent []string
	err := testutils.Do(t, p.HostNS, func() error {
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		for i := first; i < first+n; i++ {
			msg := fmt.Sprintf("extcap %d", i)
			if _, err := c.WriteToUDP([]byte(msg), &net.UDPAddr{IP: p.PeerIP, Port: port}); err != nil {
				return err
			}
			sent = append(sent, msg)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send UDP: %v", err)
	}
	return sent
}

// extcapWaitLog waits until the log file holds want, or fails.
func extcapWaitLog(t *testing.T, path, want string, ended func() (error, bool)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if err, done := ended(); done {
			t.Fatalf("ended (%v) before logging %q; log:\n%s", err, want, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q after 20 s:\n%s", want, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExtcapCaptureFifo runs an extcap capture as Wireshark does, into a
// fifo it reads: the packets arrive as pcapng; stderr stays empty while
// the log file gets the notices and statistics; and when the reader
// closes the fifo the capture ends by itself, cleanly, with nothing left
// attached.
func TestExtcapCaptureFifo(t *testing.T) {
	p := testutils.NewVethPair(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "log")
	r := xdpStart(t, &p.HostNS, "extcap", "--capture", "--extcap-interface", "bpfcap-tc",
		"--fifo", fifo, "--dev", p.HostName, "--direction", "egress", "--tc-mode", "clsact",
		"--extcap-capture-filter", "udp port 4500", "--log-file", logPath, "--extcap-version=4.0")
	ended := func() (error, bool) {
		select {
		case err := <-r.done:
			r.once.Do(func() { r.err = err })
			return err, true
		default:
			return nil, false
		}
	}

	// The reader opens the fifo after the capture started, as dumpcap may.
	rf, err := os.Open(fifo) // blocks until the capture opens it
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	rd, err := pcapng.NewReader(rf)
	if err != nil {
		t.Fatalf("read pcapng from the fifo: %v", err)
	}
	extcapWaitLog(t, logPath, "bpfcap: capturing at tc:"+p.HostName+":egress", ended)
	sent := extcapSend(t, p, 4500, 0, 3)
	extcapSend(t, p, 4501, 100, 2) // filtered out
	for i, want := range sent {
		pk, err := rd.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !strings.HasSuffix(string(pk.Data), want) || pk.Direction != pcapng.DirectionOutbound {
			t.Fatalf("packet %d: %q (%s), want the datagram %q sent", i, pk.Data, pk.Direction, want)
		}
	}
	if got := rd.Interfaces(); len(got) != 1 || got[0].Name != "tc:"+p.HostName+":egress" {
		t.Fatalf("interfaces %+v", got)
	}

	// The reader goes away: the next packets' writes fail with EPIPE and
	// the capture ends without being told to.
	rf.Close()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		if err, done := ended(); done {
			if err != nil {
				t.Fatalf("capture ended with %v after its reader left", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("capture still running 15 s after its reader left")
		}
		extcapSend(t, p, 4500, 1000+i, 1)
		time.Sleep(20 * time.Millisecond)
	}
	if s := r.stderr.String(); s != "" {
		t.Fatalf("stderr (which Wireshark shows as an error) is not empty:\n%s", s)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "(output pipe closed)") || !strings.Contains(string(log), "tc:"+p.HostName+":egress: ") {
		t.Fatalf("log lacks the statistics and the stop reason:\n%s", log)
	}
	t.Logf("log:\n%s", log)
	if left := tcLeftovers(t, p); len(left) != 0 {
		t.Fatalf("left attached: %v", left)
	}
}

// TestExtcapCaptureStop: a capture Wireshark stops (here: the context,
// as SIGTERM cancels it in main) before anyone opened the fifo detaches
// and ends cleanly. One that cannot start says why (exit status 2),
// writes nothing into the fifo, and opens it so that a reader blocked
// opening it (dumpcap) wakes up, rather than waiting forever.
func TestExtcapCaptureStop(t *testing.T) {
	p := testutils.NewVethPair(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "log")
	r := xdpStart(t, &p.HostNS, "extcap", "--capture", "--extcap-interface", "bpfcap-tc",
		"--fifo", fifo, "--dev", p.HostName, "--log-file", logPath)
	// Attached, waiting for a reader: TCX links or a clsact qdisc exist.
	testutils.WaitFor(t, "the capture to attach", 15*time.Second, func() bool { return len(tcLeftovers(t, p)) > 0 })
	if err := r.stop(t); err != nil {
		t.Fatalf("stopped capture: %v\n%s", err, r.stderr)
	}
	if left := tcLeftovers(t, p); len(left) != 0 {
		t.Fatalf("left attached: %v", left)
	}

	for i, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad filter", []string{"--dev", p.HostName, "--extcap-capture-filter", "udp port"}, "syntax error"},
		{"no device", []string{"--dev", "bpfcapnosuch0"}, `interface "bpfcapnosuch0" does not exist`},
		{"bad option", []string{"--dev", p.HostName, "--snaplen", "x"}, `--snaplen "x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			fifo := filepath.Join(dir, fmt.Sprintf("fifo%d", i))
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			opened := make(chan *os.File, 1)
			go func() {
				f, err := os.Open(fifo) // blocks until a writer opens it
				if err != nil {
					t.Error(err)
				}
				opened <- f
			}()
			args := append([]string{"extcap", "--capture", "--extcap-interface", "bpfcap-tc", "--fifo", fifo}, c.args...)
			r := xdpStart(t, &p.HostNS, args...)
			var err error
			select {
			case err = <-r.done:
				r.once.Do(func() { r.err = err })
			case <-time.After(15 * time.Second):
				t.Fatal("a capture that cannot start is still running")
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "bpfcap-tc: ") {
				t.Fatalf("%v, want an error naming bpfcap-tc and saying %q", err, c.want)
			}
			var msg strings.Builder
			if code := exitCode(err, &msg); code != 2 {
				t.Fatalf("exit status %d, want 2", code)
			}
			t.Logf("stderr: %s", strings.TrimSpace(msg.String()))
			select {
			case f := <-opened:
				defer f.Close()
				// The failed capture keeps its end open until its process
				// exits (after printing the error): nothing to read yet.
				f.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if n, err := f.Read(make([]byte, 16)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("the fifo holds %d bytes (%v)", n, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the reader is still blocked opening the fifo: the failed capture never opened it")
			}
			if left := tcLeftovers(t, p); len(left) != 0 {
				t.Fatalf("left attached: %v", left)
			}
		})
	}
}
