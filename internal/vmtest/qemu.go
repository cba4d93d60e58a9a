package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// vmOptions are the qemu settings shared by all guests.
type vmOptions struct {
	cpu     string        // -cpu
	cmdline string        // appended to the kernel command line
	memory  string        // -m
	smp     int           // -smp
	timeout time.Duration // whole guest run
}

// runGuest boots p.kernel with an initramfs holding the plan under qemu
// TCG and collects the results; work is a scratch directory for the
// initramfs and the logs.
func runGuest(ctx context.Context, repo, work string, p *guestPlan, vm vmOptions) *column {
	start := time.Now()
	col := &column{name: p.kernel.Release, runs: map[string]*runResult{}}
	defer func() { col.seconds = time.Since(start).Seconds() }()
	cfg, err := readConfig(p.kernel.config())
	if err != nil {
		col.bootErr = err.Error()
		return col
	}
	col.config = cfg
	initrd := filepath.Join(work, "initramfs-"+p.kernel.Release+".cpio")
	if err := buildInitramfs(ctx, repo, initrd, p); err != nil {
		col.bootErr = err.Error()
		return col
	}
	defer os.Remove(initrd)
	if st, err := os.Stat(initrd); err == nil {
		col.initrdBytes = st.Size()
	}
	console := filepath.Join(work, "console-"+p.kernel.Release+".log")
	tests := filepath.Join(work, "tests-"+p.kernel.Release+".log")
	col.logFiles = []string{console, tests}
	vctx, cancel := context.WithTimeout(ctx, vm.timeout)
	defer cancel()
	cmd := exec.CommandContext(vctx, "qemu-system-x86_64",
		"-accel", "tcg", "-cpu", vm.cpu, "-smp", fmt.Sprint(vm.smp), "-m", vm.memory,
		"-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none", "-nic", "none",
		"-kernel", p.kernel.vmlinuz(), "-initrd", initrd,
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 oops=panic quiet mitigations=off rdinit=/init "+vm.cmdline),
		"-serial", "file:"+console, "-serial", "file:"+tests)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	timedOut := errors.Is(vctx.Err(), context.DeadlineExceeded)
	data, rerr := os.ReadFile(tests)
	if rerr != nil {
		col.bootErr = fmt.Sprintf("qemu: %v: %s (no test output: %v)", err, strings.TrimSpace(string(out)), rerr)
		return col
	}
	raw, exits, notes, done := splitGuestOutput(data)
	for _, n := range notes {
		if strings.HasPrefix(n, "module failed") {
			col.bootErr += n + "; "
		}
		if b, ok := strings.CutPrefix(n, "booted "); ok {
			col.boot = b
		}
	}
	switch {
	case timedOut:
		col.bootErr += fmt.Sprintf("timed out after %v (see %s)", vm.timeout, tests)
	case err != nil:
		col.bootErr += fmt.Sprintf("qemu: %v: %s", err, strings.TrimSpace(string(out)))
	case len(notes) == 0:
		c, _ := os.ReadFile(console)
		col.bootErr += "the guest never reached /init:\n" + tail(string(c), 15)
	case !done:
		c, _ := os.ReadFile(console)
		col.bootErr += "the guest stopped before VMTEST-EXIT (crash or panic?):\n" + tail(string(c), 15)
	}
	for _, r := range p.runs {
		collect(ctx, col, r.label, raw, exits)
	}
	return col
}

// collect parses one run's output into col; a run with no END marker or a
// non-zero exit without a failing test is recorded as an error.
func collect(ctx context.Context, col *column, label string, raw map[string][]byte, exits map[string]int) {
	data, ok := raw[label]
	exit, finished := exits[label]
	if !ok {
		col.runs[label] = &runResult{label: label, tests: map[string]*testResult{}, exit: -1, err: "never started"}
		return
	}
	if !finished {
		exit = -1
	}
	r, err := parseRun(ctx, label, data, exit)
	if err != nil {
		r = &runResult{label: label, tests: map[string]*testResult{}, exit: exit, err: err.Error(), output: string(data)}
	}
	if !finished {
		r.err = "did not finish (timeout or crash)"
	}
	col.runs[label] = r
}
