package testutils

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// SenderComm is the command name of the process StartUDPSender starts.
const SenderComm = "bpfcap-sender"

// senderEnv carries the address a sender child sends to.
const senderEnv = "BPFCAP_TEST_UDP_SENDER"

// UDPSender is a process other than the test, with its own pid and the
// command name SenderComm, that sends UDP datagrams from a network
// namespace: one per Send, each from a socket it opens for it.
type UDPSender struct {
	// Cmd is the running child; Cmd.Process.Pid is its pid.
	Cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// StartUDPSender starts the test binary again as SenderComm inside the
// named network namespace (with `ip netns exec`), sending to to:port. The
// package's tests must have a test named TestUDPSenderChild that calls
// UDPSenderChild. The child ends with tb.Cleanup.
func StartUDPSender(tb testing.TB, nsName string, to net.IP, port int) *UDPSender {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	link := filepath.Join(tb.TempDir(), SenderComm)
	if err := os.Symlink(self, link); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", nsName, link, "-test.run=^TestUDPSenderChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), senderEnv+"="+net.JoinHostPort(to.String(), strconv.Itoa(port)))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start the UDP sender: %v", err)
	}
	tb.Cleanup(func() { in.Close(); cmd.Wait() })
	return &UDPSender{Cmd: cmd, in: in, out: bufio.NewReader(out)}
}

// Send has the child send n datagrams and waits until it did.
func (s *UDPSender) Send(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		if _, err := fmt.Fprintln(s.in, "send"); err != nil {
			tb.Fatalf("UDP sender: %v", err)
		}
		line, err := s.out.ReadString('\n')
		if err != nil || line != "sent\n" {
			tb.Fatalf("UDP sender answered %q, %v", line, err)
		}
	}
}

// UDPSenderChild is the body of the child StartUDPSender starts: for each
// line of its input it opens a UDP socket, sends one datagram to the
// address it was given, closes the socket and prints "sent". Run by the
// test binary outside that child, it skips.
func UDPSenderChild(t *testing.T) {
	to := os.Getenv(senderEnv)
	if to == "" {
		t.Skip("runs only as the child of StartUDPSender")
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		c, err := net.Dial("udp4", to)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Write([]byte("bpfcap-owner"))
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("sent")
	}
}
