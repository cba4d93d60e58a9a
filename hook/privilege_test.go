package hook

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

const childEnv = "BPFCAP_HOOK_TEST_CHILD"

// TestNeedsPrivilege runs NewRing as nobody (a copy of this test binary
// run with uid/gid 65534): the error must say that privilege is missing,
// never that something is not supported.
func TestNeedsPrivilege(t *testing.T) {
	if os.Getenv(childEnv) == "nobody" {
		_, err := NewRing(testSpec(t), RingOptions{})
		fmt.Printf("CHILD-RESULT uid=%d is-perm=%v err=%v\n", os.Getuid(), errors.Is(err, ErrPermission), err)
		return
	}
	testutils.RequireRoot(t)
	bin := copyTestBinary(t)
	cmd := exec.Command(bin, "-test.run=^TestNeedsPrivilege$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=nobody")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	line := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "CHILD-RESULT") {
			line = l
		}
	}
	t.Log(line)
	if !strings.Contains(line, "uid=65534 is-perm=true") || !strings.Contains(line, "needs privilege (CAP_BPF") || strings.Contains(line, "not supported") {
		t.Errorf("as nobody: %q, want a privilege error", line)
	}
}

// copyTestBinary copies the running test binary where nobody can run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "hook.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestAfterDroppingPrivileges loads and runs a capture as root, then drops
// to nobody (as -Z does) in a child copy of this binary: the records must
// still be readable and the counters too (both through mmap, without bpf()
// calls, which older kernels refuse to unprivileged users; 6.1+ allow
// lookups on fds already open, as the logged note shows).
func TestAfterDroppingPrivileges(t *testing.T) {
	if os.Getenv(childEnv) == "drop" {
		src, prog := session(t, RingOptions{}, Options{Hook: 2})
		runPackets(t, prog.Program, 3, frame(17, 53, 100))
		if err := syscall.Setgroups([]int{65534}); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setgid(65534); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setuid(65534); err != nil {
			t.Fatal(err)
		}
		got := capture(t, src, 3)
		st := src.Stats()[0]
		// For the record: would a bpf() map lookup still work now?
		var v uint64
		lookupErr := src.ring.stats.Lookup(uint32(0), &v)
		fmt.Printf("CHILD-RESULT uid=%d packets=%d seen=%d captured=%d\n", os.Getuid(), len(got), st.Seen, st.Captured)
		fmt.Printf("CHILD-NOTE bpf() map lookup after the drop: %v\n", lookupErr)
		return
	}
	testutils.RequireRoot(t)
	bin := copyTestBinary(t)
	cmd := exec.Command(bin, "-test.run=^TestAfterDroppingPrivileges$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=drop")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "CHILD-RESULT uid=65534 packets=3 seen=3 captured=3") {
		t.Errorf("after dropping privileges:\n%s", out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "CHILD-NOTE") {
			t.Log(l)
		}
	}
}
