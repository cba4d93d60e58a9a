package testutils

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// HoldInChild starts `sleep 30` with its own copy of fd, so that another
// process holds what fd refers to (a BPF program, a map), and returns it
// once it runs sleep (its comm is "sleep"). The child is killed by
// tb.Cleanup or earlier by the caller (Process.Kill, then Wait). The
// caller's fd stays its own: closing it leaves the child the only holder.
func HoldInChild(tb testing.TB, fd int) *exec.Cmd {
	tb.Helper()
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("dup fd %d: %v", fd, err)
	}
	f := os.NewFile(uintptr(dup), "held")
	child := exec.Command("sleep", "30")
	child.ExtraFiles = []*os.File{f}
	err = child.Start()
	f.Close()
	if err != nil {
		tb.Fatalf("start a child holding fd %d: %v", fd, err)
	}
	tb.Cleanup(func() {
		child.Process.Kill()
		child.Wait()
	})
	// On a slow single-CPU guest the child can show the test binary's name
	// for a moment; tests that name the holder need it to be sleep.
	WaitFor(tb, "the child to run sleep", 10*time.Second, func() bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child.Process.Pid))
		return err == nil && strings.TrimSpace(string(comm)) == "sleep"
	})
	return child
}
