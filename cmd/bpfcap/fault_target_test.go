package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	example "github.com/bpfcap/bpfcap/examples/progcap"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/xdpcap"
)

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
