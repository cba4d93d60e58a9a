package ratebench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// cpuLimitPeriod is the CFS period of the capture processes' CPU quota:
// short, so that a process is never stopped for long while its ring
// fills (100 ms periods would make the test one of buffer size). The
// kernel's smallest quota is 1 ms: below 10%, the period grows instead.
const cpuLimitPeriod = 10000 // µs

// cpuQuota returns the CFS quota and period, in µs, for percent of a CPU.
func cpuQuota(percent int) (quota, period int) {
	quota, period = percent*cpuLimitPeriod/100, cpuLimitPeriod
	if quota < 1000 {
		quota, period = 1000, 1000*100/percent
	}
	return quota, period
}

// cpuLimit is a cgroup whose processes together get percent of one CPU
// (CFS quota), so that both capture processes can be held to the same
// CPU and their loss-free rates compared below the generator's limit.
// It holds the process only: the kernel work done for it in the
// softirqs of other tasks (tcpdump's tap, bpfcap's BPF programs) is not
// limited.
type cpuLimit struct {
	dir     string
	percent int
}

// cpuLimitPercent returns BPFCAP_RATE_CPU: the share of one CPU, in
// percent, each capture process gets (0: no limit).
func cpuLimitPercent(tb testing.TB) int {
	s := os.Getenv("BPFCAP_RATE_CPU")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 100 {
		tb.Fatalf("BPFCAP_RATE_CPU=%q: want a percentage of one CPU, 1-100 (0: no limit)", s)
	}
	return n
}

// newCPULimit creates the cgroup, in the cgroup v2 hierarchy where its cpu
// controller is enabled, else in the v1 cpu hierarchy; it is removed when
// the benchmark ends.
func newCPULimit(tb testing.TB, percent int) *cpuLimit {
	tb.Helper()
	name := fmt.Sprintf("bpfcap-rate-%d", os.Getpid())
	quota, period := cpuQuota(percent)
	var tried []error
	for _, v := range []struct {
		root  string
		files map[string]string
	}{
		{"/sys/fs/cgroup", map[string]string{"cpu.max": fmt.Sprintf("%d %d", quota, period)}},
		{"/sys/fs/cgroup/cpu", map[string]string{"cpu.cfs_period_us": strconv.Itoa(period), "cpu.cfs_quota_us": strconv.Itoa(quota)}},
	} {
		if _, err := os.Stat(filepath.Join(v.root, "cgroup.procs")); err != nil {
			tried = append(tried, err)
			continue
		}
		dir := filepath.Join(v.root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			tried = append(tried, err)
			continue
		}
		ok := true
		for _, f := range []string{"cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.max"} {
			val, want := v.files[f]
			if !want {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, f), []byte(val), 0); err != nil {
				tried = append(tried, fmt.Errorf("%s: %w", f, err))
				ok = false
				break
			}
		}
		if !ok {
			os.Remove(dir)
			continue
		}
		tb.Cleanup(func() { os.Remove(dir) })
		return &cpuLimit{dir: dir, percent: percent}
	}
	tb.Fatalf("no cgroup with a CPU quota: %v", errors.Join(tried...))
	return nil
}

// add moves process pid into the cgroup (its later children follow it).
func (c *cpuLimit) add(tb testing.TB, pid int) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		tb.Fatalf("limit the CPU of process %d: %v", pid, err)
	}
}

// String says what the limit is.
func (c *cpuLimit) String() string {
	quota, period := cpuQuota(c.percent)
	return fmt.Sprintf("each capture process limited to %d%% of one CPU (CFS quota %d µs per %d µs, cgroup %s; its kernel-side work is not limited)",
		c.percent, quota, period, c.dir)
}
