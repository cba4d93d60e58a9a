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
