package testutils

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// binaries caches the bpfcap command built per set of build tags, once
// per test process.
var binaries sync.Map // tags string -> *builtBinary

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// BuildBinary returns the path of the bpfcap command built with tags, for
// tests that need it as a process of its own (signals, pipes, a second
// capture, dropped privileges). It is built once per test process into a
// directory every user may read (tests of -Z run it as another user); the
// directory stays for later tests of the same process (a TestMain removes
// it with RemoveBuiltBinaries).
func BuildBinary(tb testing.TB, tags ...string) string {
	tb.Helper()
	key := strings.Join(tags, ",")
	v, _ := binaries.LoadOrStore(key, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "bpfcap-test-bin-")
		if err != nil {
			b.err = err
			return
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			b.err = err
			return
		}
		path := filepath.Join(dir, "bpfcap")
		args := []string{"build", "-o", path}
		if key != "" {
			args = append(args, "-tags", key)
		}
		args = append(args, "github.com/bpfcap/bpfcap/cmd/bpfcap")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		b.path = path
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// RemoveBuiltBinaries removes what BuildBinary built in this process; a
// TestMain calls it after m.Run.
func RemoveBuiltBinaries() {
	binaries.Range(func(_, v any) bool {
		if p := v.(*builtBinary).path; p != "" {
			os.RemoveAll(filepath.Dir(p))
		}
		return true
	})
}
