package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// TestNetnsResolveDevice: -i finds a device that only another namespace
// has; a name two namespaces have is an error naming both and the way
// out; IF@NETNS and --netns pick one.
func TestNetnsResolveDevice(t *testing.T) {
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	hostPath := "/run/netns/" + p.HostNSName
	name, path, err := resolveDevice(p.HostName, "")
	if err != nil || name != p.HostName || path != hostPath {
		t.Fatalf("resolveDevice(%s) = %q, %q, %v; want %s in %s", p.HostName, name, path, err, p.HostName, hostPath)
	}
	// The same name in the peer namespace makes -i ambiguous.
	if out, err := testutils.Exec(p.PeerNSName, "ip", "link", "add", p.HostName, "type", "veth", "peer", "name", p.HostName+"x"); err != nil {
		t.Fatal(out, err)
	}
	_, _, err = resolveDevice(p.HostName, "")
	var amb *ambiguousDeviceError
	if !errors.As(err, &amb) {
		t.Fatalf("a device in two namespaces: %v, want an ambiguity error", err)
	}
	for _, want := range []string{p.HostName + "@" + p.HostNSName, p.HostName + "@" + p.PeerNSName, "--netns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ambiguity error %q does not mention %s", err, want)
		}
	}
	if _, path, err := resolveDevice(p.HostName+"@"+p.PeerNSName, ""); err != nil || path != "/run/netns/"+p.PeerNSName {
		t.Fatalf("IF@NETNS: %q, %v", path, err)
	}
	if _, path, err := resolveDevice(p.HostName, hostPath); err != nil || path != hostPath {
		t.Fatalf("--netns: %q, %v", path, err)
	}
	if _, _, err := resolveDevice(p.PeerName, hostPath); err == nil {
		t.Fatalf("found %s in %s, which does not have it", p.PeerName, p.HostNSName)
	}
	if _, _, err := resolveDevice("bpfcap-nosuch0", ""); err == nil || !strings.Contains(err.Error(), "no other network namespace") {
		t.Fatalf("missing device: %v", err)
	}
	ino, err := netnsfind.Inode(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	if path, got, err := resolveNetns(strconv.FormatUint(uint64(ino), 10)); err != nil || got != ino || path == "" {
		t.Fatalf("resolveNetns(inode %d) = %q, %d, %v", ino, path, got, err)
	}
}

// TestNetnsPidCommTrace: bpfcap in the root namespace traces an end of a
// veth pair that lives in another namespace (found by -i alone), names
// the device as that namespace does, and keeps exactly the packets of the
// process picked by --comm or --pid: another process sending UDP from the host
// end, not the test's own datagrams; where the peer end receives them
// too, in softirq.
func TestNetnsPidCommTrace(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	const port = 9412
	for _, c := range []struct{ sel, hook, dev string }{
		{"comm", "tp_btf:net_dev_queue", p.HostName},
		{"pid", "tp_btf:net_dev_queue", p.HostName},
		// Received by the peer end in softirq: the current task there
		// is whichever the CPU interrupted; the socket names the owner.
		{"pid", "tp_btf:netif_receive_skb", p.PeerName},
		// tc at ingress of the peer end, attached in the peer's namespace.
		{"comm", "tc", p.PeerName},
	} {
		sel, dev := c.sel, c.dev
		t.Run(c.sel+"/"+c.hook, func(t *testing.T) {
			sender := testutils.StartUDPSender(t, p.HostNSName, p.PeerIP, port)
			cmd := sender.Cmd
			flag := []string{"--comm", testutils.SenderComm}
			if sel == "pid" {
				flag = []string{"--pid", strconv.Itoa(cmd.Process.Pid)}
			}
			out := filepath.Join(t.TempDir(), "out.pcapng")
			args := append([]string{"trace", c.hook, "-i", dev, "-w", out}, flag...)
			if c.hook == "tc" {
				args = append([]string{"tc", "-i", dev, "ingress", "-w", out}, flag...)
			}
			args = append(args, fmt.Sprintf("udp dst port %d", port))
			tr := startRun(t, args...)
			tr.waitAttached(t, out)
			sender.Send(t, 3)
			sendUDP(t, p, p.PeerIP, port, 2)
			time.Sleep(500 * time.Millisecond)
			if err := tr.stop(t); err != nil {
				t.Fatalf("bpfcap: %v; stderr:\n%s", err, tr.stderr)
			}
			_, pkts := readPcapng(t, out)
			if len(pkts) != 3 {
				t.Fatalf("%v kept %d packets, want the sender's 3; stderr:\n%s", flag, len(pkts), tr.stderr)
			}
			for _, pk := range pkts {
				pcapng.ParseComment(pk.Comment, pk)
				if pk.Flags&pcapng.HasPID == 0 || pk.PID != uint32(cmd.Process.Pid) || pk.Comm != testutils.SenderComm {
					t.Errorf("packet of pid %d comm %q, want %s %d", pk.PID, pk.Comm, testutils.SenderComm, cmd.Process.Pid)
				}
				if pk.Device != dev && c.hook != "tc" { // tc names its device in the hook
					t.Errorf("packet on device %q, want %s (named in its own namespace)", pk.Device, dev)
				}
			}
		})
	}
}

// TestNetnsHostPin: in a mount namespace whose /sys/fs/bpf is not the
// bpffs (as under `ip netns exec`), a pin is found through the root of a
// process that sees it (the parent) and opens.
func TestNetnsHostPin(t *testing.T) {
	testutils.RequireRoot(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pin := fmt.Sprintf("/sys/fs/bpf/bpfcap-hostpin-%d", os.Getpid())
	if err := m.Pin(pin); err != nil {
		t.Fatal(err)
	}
	defer m.Unpin()
	if got, moved := hostPin(pin); got != pin || moved {
		t.Fatalf("hostPin(%s) = %s, %v in the pin's own mount namespace", pin, got, moved)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked: it ends with the goroutine, and its
		// mount namespace with it.
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("unshare mount namespace: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make mounts private: %w", err)
			}
			if err := unix.Mount("none", "/sys/fs/bpf", "tmpfs", 0, ""); err != nil {
				return fmt.Errorf("hide /sys/fs/bpf: %w", err)
			}
			if _, err := os.Stat(pin); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("the pin is still visible: %v", err)
			}
			if !bpffsHidden(pin) {
				return errors.New("bpffsHidden: /sys/fs/bpf is a tmpfs here, not reported hidden")
			}
			got, moved := hostPin(pin)
			if !moved || !strings.HasPrefix(got, "/proc/") || !strings.HasSuffix(got, "/root"+pin) {
				return fmt.Errorf("hostPin(%s) = %s, %v; want it through another process's root", pin, got, moved)
			}
			pm, err := ebpf.LoadPinnedMap(got, nil)
			if err != nil {
				return fmt.Errorf("open %s: %w", got, err)
			}
			return pm.Close()
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestMarkPidCommFlags: --mark takes VALUE or VALUE/MASK, --comm at most
// 15 bytes, --cgroup a path under /sys/fs/cgroup or an id ("/" is the
// root cgroup, id 1), and the flags become the kernel filter.
func TestMarkPidCommFlags(t *testing.T) {
	for _, c := range []struct {
		in        string
		val, mask uint32
		ok        bool
	}{
		{"0x10", 0x10, 0xffffffff, true},
		{"16/0xff", 16, 0xff, true},
		{"0", 0, 0xffffffff, true},
		{"0x10/0", 0, 0, false},
		{"x", 0, 0, false},
		{"0x100000000", 0, 0, false},
	} {
		v, m, err := parseMark(c.in)
		if (err == nil) != c.ok || v != c.val || m != c.mask {
			t.Errorf("parseMark(%q) = %#x, %#x, %v; want %#x, %#x, ok %v", c.in, v, m, err, c.val, c.mask, c.ok)
		}
	}
	f, path, err := (&metaFlags{pid: 42, comm: "curl", mark: "7/0xf", cgroup: "/"}).filter()
	if err != nil || path != "" || f.PID != 42 || f.Comm != "curl" || f.Mark != 7 || f.MarkMask != 0xf || f.Cgroup != 1 {
		t.Fatalf("filter() = %+v, %q, %v", f, path, err)
	}
	if _, _, err := (&metaFlags{comm: "a-very-long-command-name"}).filter(); err == nil || !strings.Contains(err.Error(), "15") {
		t.Fatalf("a 24-byte --comm: %v", err)
	}
	if _, _, err := (&metaFlags{cgroup: "no/such/cgroup"}).filter(); err == nil || !strings.Contains(err.Error(), "/sys/fs/cgroup") {
		t.Fatalf("a missing --cgroup: %v", err)
	}
	if _, _, err := (&metaFlags{netns: "bpfcap-no-such-ns"}).filter(); err == nil || !strings.Contains(err.Error(), "ip netns list") {
		t.Fatalf("a missing --netns: %v", err)
	}
}

// TestUDPSenderChild is the child process of testutils.StartUDPSender.
func TestUDPSenderChild(t *testing.T) { testutils.UDPSenderChild(t) }

// TestNetnsSocketLayerDevice: at a socket-layer hook (TCP data copied to
// its reader, where the skb no longer has its device), the device is the
// one the packet came in on, named in the reader's namespace (its ifindex
// means another device, or none, in bpfcap's), with that namespace's
// inode, and the reader (process context) owns the packet.
func TestNetnsSocketLayerDevice(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	const port = 9414
	out := filepath.Join(t.TempDir(), "out.pcapng")
	tr := startRun(t, "trace", "tp_btf:skb_copy_datagram_iovec", "-w", out, fmt.Sprintf("tcp port %d", port))
	tr.waitAttached(t, out)
	var ln net.Listener
	err := testutils.Do(t, p.PeerNS, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(p.PeerIP.String(), strconv.Itoa(port)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		_, err = io.ReadFull(c, make([]byte, 5))
		got <- err
	}()
	err = testutils.Do(t, p.HostNS, func() error {
		c, err := net.Dial("tcp4", net.JoinHostPort(p.PeerIP.String(), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := tr.stop(t); err != nil {
		t.Fatalf("bpfcap: %v; stderr:\n%s", err, tr.stderr)
	}
	peerIno, err := netnsfind.Inode("/run/netns/" + p.PeerNSName)
	if err != nil {
		t.Fatal(err)
	}
	_, pkts := readPcapng(t, out)
	if len(pkts) == 0 {
		t.Fatalf("captured nothing; stderr:\n%s", tr.stderr)
	}
	for _, pk := range pkts {
		pcapng.ParseComment(pk.Comment, pk)
		if pk.Device != p.PeerName || pk.Netns != peerIno {
			t.Errorf("packet on dev %q netns %d, want %s in %d (%s)", pk.Device, pk.Netns, p.PeerName, peerIno, pk.Comment)
		}
		if pk.PID != uint32(os.Getpid()) {
			t.Errorf("packet of pid %d, want the reading test's %d (%s)", pk.PID, os.Getpid(), pk.Comment)
		}
	}
}
