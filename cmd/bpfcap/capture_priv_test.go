package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const dropChildEnv = "BPFCAP_CAPTURE_DROP_CHILD"

// TestDropPrivileges runs dropPrivileges("nobody") in a child copy of this
// test binary and checks every thread's credentials afterwards (-Z must
// not leave a thread running as root).
func TestDropPrivileges(t *testing.T) {
	if os.Getenv(dropChildEnv) != "" {
		if err := dropPrivileges("nobody"); err != nil {
			fmt.Println("CHILD-ERROR", err)
			return
		}
		tasks, _ := filepath.Glob("/proc/self/task/*/status")
		for _, st := range tasks {
			b, _ := os.ReadFile(st)
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") || strings.HasPrefix(l, "Groups:") {
					fmt.Println("CHILD-CRED", strings.Join(strings.Fields(l), " "))
				}
			}
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestDropPrivileges$", "-test.count=1")
	cmd.Env = append(os.Environ(), dropChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	creds := 0
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "CHILD-ERROR"):
			t.Fatal(l)
		case strings.HasPrefix(l, "CHILD-CRED Uid:"):
			creds++
			if l != "CHILD-CRED Uid: 65534 65534 65534 65534" {
				t.Errorf("thread still privileged: %s", l)
			}
		case strings.HasPrefix(l, "CHILD-CRED Gid:"):
			if l != "CHILD-CRED Gid: 65534 65534 65534 65534" {
				t.Errorf("thread kept its group: %s", l)
			}
		case strings.HasPrefix(l, "CHILD-CRED Groups:"):
			if strings.Contains(l, " 0") {
				t.Errorf("thread kept group root: %s", l)
			}
		}
	}
	if creds < 2 {
		t.Errorf("saw %d threads, want several:\n%s", creds, out)
	}
	if err := dropPrivileges("no-such-user-bpfcap"); err == nil || !strings.Contains(err.Error(), "-Z no-such-user-bpfcap") {
		t.Errorf("unknown user: %v", err)
	}
}
