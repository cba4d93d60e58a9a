package hook

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/pcapng"
)

// TestSessionTshark runs a real session: a capture program fed by
// BPF_PROG_TEST_RUN while bpfcap.Run writes a pcapng file, which tshark
// then reads: packets, comment, verdict, packet id, interface and filter.
func TestSessionTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (scripts/deps.sh installs it)")
	}
	src, prog := session(t, RingOptions{}, Options{Hook: 0, Filter: "udp port 53", Snaplen: 128})
	path := filepath.Join(t.TempDir(), "session.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapng.NewWriter(f, pcapng.WriterOptions{Application: "bpfcap-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Feed packets until the session has its count.
	fed := make(chan struct{})
	defer func() { cancel(); <-fed }()
	go func() {
		defer close(fed)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, pkt := range [][]byte{frame(17, 53, 200), frame(6, 80, 200)} {
				prog.Program.Run(&ebpf.RunOptions{Data: pkt})
			}
		}
	}()
	res, err := bpfcap.Run(ctx, w, []bpfcap.Source{src}, bpfcap.Options{Count: 25, Duration: 30 * time.Second})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != bpfcap.StopCount || res.Written != 25 {
		t.Fatalf("result %+v, want 25 packets", res)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tshark, "-r", path, "-T", "fields", "-E", "separator=|",
		"-e", "frame.interface_name", "-e", "frame.comment", "-e", "frame.verdict.ebpf_xdp",
		"-e", "frame.packet_id", "-e", "udp.dstport", "-e", "frame.len", "-e", "frame.cap_len",
		"-e", "frame.packet_flags_direction").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("tshark: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 25 {
		t.Fatalf("tshark shows %d packets, want 25:\n%s", len(lines), out)
	}
	for _, l := range lines {
		fs := strings.Split(l, "|")
		// The hook is the interface's name, the verdict (XDP_PASS) and the
		// direction (inbound) are epb_verdict and epb_flags; the comment
		// holds the rest, from the device on.
		if len(fs) != 8 || fs[0] != "xdp:test" || !strings.HasPrefix(fs[1], "dev=lo") ||
			fs[2] != "2" || fs[3] == "" || fs[4] != "53" || fs[5] != "200" || fs[6] != "128" || fs[7] != "0x00000001" {
			t.Fatalf("tshark line %q, want xdp:test|dev=lo...|2|ID|53|200|128|0x00000001", l)
		}
	}
}
