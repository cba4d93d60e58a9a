package tccap_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/tccap"
)

// TestUDPSenderChild is the child process of testutils.StartUDPSender.
func TestUDPSenderChild(t *testing.T) { testutils.UDPSenderChild(t) }

// TestOwnerAttribution: datagrams that another process in the peer namespace sends
// are seen at tc ingress of the host end (softirq: the current task there
// is whichever the CPU interrupted) and attributed to that process, by its
// socket; datagrams the test process sends are attributed to the test.
// The kernel's pid, comm, netns and mark filters keep exactly the
// packets they select.
func TestOwnerAttribution(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	const port = 9411
	peerNS := func(fn func() error) error { return testutils.Do(t, p.PeerNS, fn) }
	hostIno, err := netnsfind.Inode("/run/netns/" + p.HostNSName)
	if err != nil {
		t.Fatal(err)
	}
	self := filepath.Base(os.Args[0])
	if len(self) > 15 {
		self = self[:15]
	}

	capture := func(t *testing.T, want hook.MetaFilter, traffic func()) []pcapng.Packet {
		t.Helper()
		var c *tccap.Capture
		err := testutils.Do(t, p.HostNS, func() error {
			var err error
			c, err = tccap.Open(p.HostName, tccap.Options{
				CaptureOptions: hook.CaptureOptions{
					Filter: fmt.Sprintf("udp dst port %d", port),
					Ring:   testRing,
					Want:   want,
				},
				Directions: []tccap.Direction{tccap.Ingress},
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var col testutils.PacketCollector
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		var runErr error
		go func() { defer wg.Done(); runErr = c.Run(ctx, &col) }()
		traffic()
		time.Sleep(300 * time.Millisecond) // the ring's poll interval is 50 ms
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Fatal(runErr)
		}
		return col.Packets()
	}

	sender := testutils.StartUDPSender(t, p.PeerNSName, p.HostIP, port)
	senderPID := uint32(sender.Cmd.Process.Pid)
	traffic := func() {
		sender.Send(t, 3)
		for i := 0; i < 2; i++ {
			sendUDP(t, peerNS, p.PeerIP, p.HostIP, port, 20)
		}
	}

	t.Run("attribution", func(t *testing.T) {
		pkts := capture(t, hook.MetaFilter{}, traffic)
		sender, test := 0, 0
		for _, pk := range pkts {
			if pk.Flags&pcapng.HasPID == 0 {
				t.Errorf("packet without an owner: %+v", pk)
				continue
			}
			switch {
			case pk.PID == senderPID && pk.Comm == testutils.SenderComm:
				sender++
			case pk.PID == uint32(os.Getpid()) && pk.Comm == self:
				test++
			default:
				t.Errorf("packet attributed to pid %d comm %q; want the sender %d or the test %d (%s)", pk.PID, pk.Comm, senderPID, os.Getpid(), self)
			}
			if pk.Flags&pcapng.HasNetns == 0 || pk.Netns != hostIno {
				t.Errorf("packet netns %d (flags %#x), want the host end's %d", pk.Netns, pk.Flags, hostIno)
			}
		}
		if sender != 3 || test != 2 {
			t.Fatalf("attributed %d packets to the sender and %d to the test, want 3 and 2", sender, test)
		}
	})
	for _, c := range []struct {
		name string
		want hook.MetaFilter
		n    int
	}{
		{"pid", hook.MetaFilter{PID: senderPID}, 3},
		{"comm", hook.MetaFilter{Comm: testutils.SenderComm}, 3},
		{"other pid", hook.MetaFilter{PID: 1}, 0},
		{"cgroup", hook.MetaFilter{Cgroup: ownCgroup(t)}, 5}, // the sender inherits the test's
		{"other cgroup", hook.MetaFilter{Cgroup: ownCgroup(t) + 1<<40}, 0},
		{"netns", hook.MetaFilter{Netns: hostIno}, 5},
		{"other netns", hook.MetaFilter{Netns: hostIno + 1}, 0},
		{"mark 0", hook.MetaFilter{Mark: 0, MarkMask: ^uint32(0)}, 5},
		{"mark 7", hook.MetaFilter{Mark: 7, MarkMask: 0xff}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			pkts := capture(t, c.want, traffic)
			if len(pkts) != c.n {
				t.Fatalf("filter %+v kept %d packets, want %d", c.want, len(pkts), c.n)
			}
			for _, pk := range pkts {
				if c.want.PID != 0 && pk.PID != c.want.PID {
					t.Errorf("filter %+v kept a packet of pid %d", c.want, pk.PID)
				}
			}
		})
	}
}

// ownCgroup returns the id of the test's cgroup v2 (its directory's inode).
func ownCgroup(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join("/sys/fs/cgroup", rest), &st); err != nil {
				t.Fatal(err)
			}
			return st.Ino
		}
	}
	t.Skip("no cgroup v2 membership in /proc/self/cgroup")
	return 0
}
