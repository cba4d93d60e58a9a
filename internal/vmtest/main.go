package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/kconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmtest: %v\n", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	kernels     []string
	pkgs        []string
	run         string
	cache       string
	repo        string
	jobs        int
	vm          vmOptions
	testTimeout time.Duration
	env         []string
	selftest    bool
}

type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, ",") }
func (e *envFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("-env %q: want KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("vmtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	kernels := fs.String("kernels", "5.10,6.1,6.12,host", "comma-separated kernels: Debian cloud kernel series (5.10, 6.1, 6.12; on request the next release's backports series, 7.3 on bookworm) and/or host")
	pkgs := fs.String("pkgs", "", "comma- or space-separated packages (./probe); empty: the default matrix")
	fs.StringVar(&o.run, "run", "", "-test.run pattern for every package (default: each package's matrix pattern)")
	fs.StringVar(&o.cache, "cache", ".cache/vmtest", "cache directory for kernels, apt lists and logs")
	fs.StringVar(&o.repo, "repo", "", "repository root (default: the directory holding go.mod above the working directory)")
	fs.IntVar(&o.jobs, "j", 2, "guests run in parallel")
	fs.StringVar(&o.vm.memory, "memory", "1G", "guest memory")
	// cx16=off: qemu 7.2's TCG corrupts state on `cmpxchg16b %gs:(...)`,
	// which 6.12's SLUB fast path uses: double faults / GPs in
	// kmem_cache_alloc_noprof in 3 of 3 boots; 0 of 2 with cx16 off (the
	// kernel then uses its cmpxchg16b emulation). la57=off keeps 4-level
	// paging (less for TCG to walk).
	fs.StringVar(&o.vm.cpu, "cpu", "max,la57=off,cx16=off", "qemu -cpu model (TCG)")
	fs.IntVar(&o.vm.smp, "smp", 1, "guest CPUs")
	fs.StringVar(&o.vm.cmdline, "cmdline", "", "extra kernel command line for the guests (e.g. loglevel=7 to see the boot)")
	fs.DurationVar(&o.vm.timeout, "timeout", 25*time.Minute, "limit for one guest's whole run (a hang guard; each binary also has -test-timeout)")
	fs.DurationVar(&o.testTimeout, "test-timeout", 15*time.Minute, "-test.timeout for each test binary (TCG runs 5-20x slower than the host; cmd/bpfcap takes about 8 min in the 6.12 guest)")
	fs.Var((*envFlag)(&o.env), "env", "KEY=VALUE for the test binaries (repeatable)")
	fs.BoolVar(&o.selftest, "selftest", false, "run the self-test: a broken probe name and a wrong skip must make the matrix fail")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: use -pkgs and -run", fs.Args())
	}
	o.kernels = splitList(*kernels)
	o.pkgs = splitList(*pkgs)
	if len(o.kernels) == 0 {
		return nil, errors.New("-kernels is empty: name at least one of 5.10, 6.1, 6.12, host")
	}
	if o.jobs < 1 || o.vm.smp < 1 {
		return nil, errors.New("-j and -smp must be at least 1")
	}
	return o, nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// findRepo returns the directory holding go.mod at or above the working
// directory.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the repository or pass -repo")
		}
		dir = parent
	}
}

// planned is one invocation, before binaries exist.
type planned struct {
	label, pkg, run string
	env             []string
	strict          bool     // zero matching tests is a failure
	tests           []string // tests that must report in every column (the matrix's guest tests)
}

// plan turns the options into invocations. The default matrix (no -pkgs)
// is every test that marked itself with testutils.RunsInGuests, found in
// the source by discoverMatrix; each must report in every column.
func plan(o *options, matrix []matrixEntry) []planned {
	if o.selftest {
		return []planned{
			{label: "guestcheck[broken-probe]", pkg: "./internal/vmtest/guestcheck", run: "^(TestKprobeDropFunction|TestFentryDropFunction)$", env: []string{"BPFCAP_VMTEST_BROKEN_PROBE=1"}, strict: true},
			{label: "guestcheck[lazy-skip]", pkg: "./internal/vmtest/guestcheck", run: "^TestKprobeDropFunction$", env: []string{"BPFCAP_VMTEST_LAZY_SKIP=1"}, strict: true},
			// The trace helper's tests honour the same switch.
			{label: "probe[broken-probe]", pkg: "./probe", run: "^(TestTraceFallbackChain|TestTraceDropNoSocket)$", env: []string{"BPFCAP_VMTEST_BROKEN_PROBE=1"}, strict: true},
			// A guest test the plan names but the binary no longer has (as
			// if renamed after planning) must count as missing.
			{label: "testutils[renamed]", pkg: "./internal/testutils", run: "^(TestVethPairPings|" + selftestRenamed + ")$", strict: true, tests: []string{"TestVethPairPings", selftestRenamed}},
		}
	}
	defaults := map[string]matrixEntry{}
	for _, e := range matrix {
		defaults[filepath.Clean(e.pkg)] = e
	}
	var out []planned
	add := func(pkg, run string, strict bool, tests []string) {
		rel := filepath.Clean(strings.TrimPrefix(pkg, "./"))
		out = append(out, planned{label: rel, pkg: "./" + rel, run: run, strict: strict, tests: tests})
	}
	if len(o.pkgs) == 0 {
		for _, e := range matrix {
			if o.run != "" {
				add(e.pkg, o.run, false, nil)
			} else {
				add(e.pkg, e.run(), true, e.tests)
			}
		}
		return out
	}
	for _, p := range o.pkgs {
		e, ok := defaults[filepath.Clean(p)]
		switch {
		case o.run != "":
			add(p, o.run, true, nil)
		case ok:
			add(p, e.run(), true, e.tests)
		default:
			add(p, ".", true, nil)
		}
	}
	return out
}

// selftestRenamed is a test name that no package has: the self-test plans
// it to prove that a planned test which does not run fails the matrix.
const selftestRenamed = "TestVethPairPingsRenamedAway"

func run(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	start := time.Now()
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.selftest && containsHostOnly(o.kernels) {
		return errors.New("-selftest needs a guest kernel (5.10, 6.1 or 6.12): the host has no kprobes")
	}
	if o.repo == "" {
		if o.repo, err = findRepo(); err != nil {
			return err
		}
	}
	var matrix []matrixEntry
	if !o.selftest && (len(o.pkgs) == 0 || o.run == "") {
		if matrix, err = discoverMatrix(o.repo); err != nil {
			return err
		}
	}
	if !filepath.IsAbs(o.cache) {
		o.cache = filepath.Join(o.repo, o.cache)
	}
	if err := os.MkdirAll(o.cache, 0o755); err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	var series []string
	host := false
	for _, k := range o.kernels {
		if k == "host" {
			host = true
		} else {
			series = append(series, k)
		}
	}
	if len(series) > 0 {
		if err := ensureHostTools(ctx, stderr); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp(o.cache, "run-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	defer os.RemoveAll(filepath.Join(work, "bin"))
	pruneOldRuns(o.cache, work)

	// Kernels download while the tests compile.
	kernels := make([]*kernel, len(series))
	kerrs := make([]error, len(series))
	var kwg sync.WaitGroup
	for i, s := range series {
		kwg.Add(1)
		go func() {
			defer kwg.Done()
			kernels[i], kerrs[i] = prepareKernel(ctx, o.cache, s, stderr)
		}()
	}
	plans := plan(o, matrix)
	var pkgs []string
	seen := map[string]bool{}
	for _, p := range plans {
		if !seen[p.pkg] {
			seen[p.pkg] = true
			pkgs = append(pkgs, p.pkg)
		}
	}
	buildStart := time.Now()
	bins, err := buildTests(ctx, o.repo, filepath.Join(work, "bin"), pkgs, stderr)
	kwg.Wait()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "vmtest: test binaries built in %.1fs\n", time.Since(buildStart).Seconds())
	rs := matchRuns(plans, bins, o.testTimeout)
	cols := runColumns(ctx, o, work, series, kernels, kerrs, rs.runs, host, stderr)
	for _, c := range cols {
		for label, err := range rs.buildErrs {
			c.runs[label] = &runResult{label: label, tests: map[string]*testResult{}, err: "build failed: " + err.Error()}
		}
		judge(c, rs.strict)
	}
	failed := report(stdout, cols, rs.all)
	fmt.Fprintf(stdout, "\ntotal %.1fs; logs in %s\n", time.Since(start).Seconds(), work)
	if o.selftest {
		return checkSelftest(stdout, cols, failed)
	}
	if failed > 0 {
		return fmt.Errorf("%d failure(s) in the kernel matrix", failed)
	}
	return nil
}

// runSet is the plan matched with the built binaries.
type runSet struct {
	runs      []guestRun // what the columns execute
	all       []guestRun // runs plus the packages that did not build
	strict    map[string]bool
	buildErrs map[string]error
}

func matchRuns(plans []planned, bins []testBinary, timeout time.Duration) runSet {
	binFor := map[string]testBinary{}
	for _, b := range bins {
		binFor[b.pkg] = b
	}
	rs := runSet{strict: map[string]bool{}, buildErrs: map[string]error{}}
	for _, p := range plans {
		b := binFor[p.pkg]
		r := guestRun{label: p.label, pkgDir: b.pkgDir, bin: b.path, run: p.run, env: p.env, timeout: timeout.String(), tests: p.tests}
		rs.all = append(rs.all, r)
		rs.strict[p.label] = p.strict
		if b.err != nil {
			rs.buildErrs[p.label] = b.err
			continue
		}
		rs.runs = append(rs.runs, r)
	}
	return rs
}

// runColumns runs the guests (o.jobs at a time) and, meanwhile, the host.
func runColumns(ctx context.Context, o *options, work string, series []string, kernels []*kernel, kerrs []error, runs []guestRun, host bool, stderr io.Writer) []*column {
	cols := make([]*column, len(series))
	sem := make(chan struct{}, o.jobs)
	var wg sync.WaitGroup
	for i := range series {
		if kerrs[i] != nil {
			cols[i] = &column{name: series[i], bootErr: "kernel: " + kerrs[i].Error(), runs: map[string]*runResult{}}
			continue
		}
		k := kernels[i]
		fmt.Fprintf(stderr, "vmtest: %s = %s %s (%s)\n", series[i], k.Package, k.Version, k.Release)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cols[i] = runGuest(ctx, o.repo, work, &guestPlan{kernel: k, env: o.env, runs: runs}, o.vm)
			fmt.Fprintf(stderr, "vmtest: %s finished in %.1fs (initramfs %.0f MiB, /init reached: %s)\n",
				k.Release, cols[i].seconds, float64(cols[i].initrdBytes)/(1<<20), cols[i].boot)
		}()
	}
	var hostCol *column
	if host {
		hostCol = runHost(ctx, o, runs)
		fmt.Fprintf(stderr, "vmtest: host finished in %.1fs\n", hostCol.seconds)
	}
	wg.Wait()
	if hostCol != nil {
		cols = append(cols, hostCol)
	}
	return cols
}

func containsHostOnly(kernels []string) bool {
	for _, k := range kernels {
		if k != "host" {
			return false
		}
	}
	return true
}

// pruneOldRuns keeps the logs of the last few runs (and any run of the
// last hour, which may still be going on) and removes the others.
func pruneOldRuns(cache, keep string) {
	dirs, _ := filepath.Glob(filepath.Join(cache, "run-*"))
	type dir struct {
		path string
		mod  time.Time
	}
	var old []dir
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && d != keep && time.Since(st.ModTime()) > time.Hour {
			old = append(old, dir{d, st.ModTime()})
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].mod.After(old[j].mod) })
	for i, d := range old {
		if i >= 5 {
			os.RemoveAll(d.path)
		}
	}
}

// runHost runs the same binaries on this machine, in their package
// directories, one at a time.
func runHost(ctx context.Context, o *options, runs []guestRun) *column {
	start := time.Now()
	var uts unix.Utsname
	unix.Uname(&uts)
	col := &column{name: "host " + unix.ByteSliceToString(uts.Release[:]), host: true, runs: map[string]*runResult{}}
	if cfg, err := kconfig.Load(); err == nil {
		col.config = cfg
	}
	if os.Geteuid() != 0 {
		col.bootErr = "not root: the privileged tests would all skip; run as root"
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, kconfig.EnvVMTest+"=") && !strings.HasPrefix(e, "BPFCAP_VMTEST_") {
			env = append(env, e)
		}
	}
	env = append(env, o.env...)
	for _, r := range runs {
		rctx, cancel := context.WithTimeout(ctx, o.testTimeout+30*time.Second)
		cmd := exec.CommandContext(rctx, r.bin, "-test.v=test2json", "-test.count=1", "-test.timeout="+r.timeout, "-test.run", r.run)
		cmd.Dir = filepath.Join(o.repo, r.pkgDir)
		cmd.Env = append(append([]string{}, env...), r.env...)
		out, err := cmd.CombinedOutput()
		cancel()
		exit := 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			exit = ee.ExitCode()
		case err != nil:
			exit = -1
		}
		raw := map[string][]byte{r.label: out}
		exits := map[string]int{}
		if exit >= 0 {
			exits[r.label] = exit
		}
		collect(ctx, col, r.label, raw, exits)
		if err != nil && exit < 0 {
			col.runs[r.label].err = fmt.Sprintf("run %s: %v", r.bin, err)
		}
	}
	col.seconds = time.Since(start).Seconds()
	return col
}

// judge overrules skips that contradict the column's kernel config and
// turns runs without results into failures.
func judge(c *column, strict map[string]bool) {
	for _, r := range c.runs {
		for _, t := range r.tests {
			if t.outcome == skip {
				if why := checkSkip(c, t.reason); why != "" {
					t.outcome, t.overrun = fail, true
					t.reason = t.reason + "\n=> counted as FAIL: " + why
				}
			}
			// A subtest's skip is judged the same way, and fails its parent.
			for i, sub := range t.subs {
				if sub.outcome != skip {
					continue
				}
				if why := checkSkip(c, sub.reason); why != "" {
					t.subs[i].outcome = fail
					t.outcome, t.overrun = fail, true
					t.reason = fmt.Sprintf("%s\n=> counted as FAIL: subtest %s skipped: %s", t.reason, sub.name, why)
				}
			}
		}
		if r.err == "" && len(r.tests) == 0 && strict[r.label] {
			r.err = "no tests matched the -run pattern"
			if r.exit != 0 {
				r.err = fmt.Sprintf("exit status %d and no test results", r.exit)
			}
		}
		if r.err == "" && r.exit != 0 {
			anyFail := false
			for _, t := range r.tests {
				anyFail = anyFail || t.outcome == fail
			}
			if !anyFail {
				r.err = fmt.Sprintf("exit status %d without a failing test (panic, timeout or TestMain)", r.exit)
			}
		}
	}
}

// checkSelftest passes when every guest column failed the broken-probe
// tests and overruled the lazy skip.
func checkSelftest(w io.Writer, cols []*column, failed int) error {
	var problems []string
	for _, c := range cols {
		if c.host {
			continue
		}
		want := map[string]func(*testResult) bool{
			"guestcheck[broken-probe].TestKprobeDropFunction": func(t *testResult) bool {
				return t.outcome == fail && strings.Contains(t.reason, "bpfcap_vmtest_no_such_function")
			},
			"guestcheck[broken-probe].TestFentryDropFunction": func(t *testResult) bool {
				return t.outcome == fail && strings.Contains(t.reason, "bpfcap_vmtest_no_such_function")
			},
			"guestcheck[lazy-skip].TestKprobeDropFunction": func(t *testResult) bool { return t.outcome == fail && t.overrun },
			"probe[broken-probe].TestTraceFallbackChain": func(t *testResult) bool {
				return t.outcome == fail && strings.Contains(t.reason, "bpfcap_vmtest_no_such_function")
			},
			"probe[broken-probe].TestTraceDropNoSocket": func(t *testResult) bool {
				return t.outcome == fail && strings.Contains(t.reason, "bpfcap_vmtest_no_such_function")
			},
		}
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			label, test, _ := strings.Cut(strings.Replace(name, "].", "]\x00", 1), "\x00")
			r := c.runs[label]
			var t *testResult
			if r != nil {
				t = r.tests[test]
			}
			if t == nil || !want[name](t) {
				problems = append(problems, fmt.Sprintf("%s: %s did not fail as it must", c.name, name))
			}
		}
	}
	for _, c := range cols {
		if c.host {
			continue
		}
		// The planned-but-absent test must be missing (a failure in the
		// report) while its real neighbour in the same binary passed.
		r := c.runs["testutils[renamed]"]
		if r == nil || r.tests["TestVethPairPings"] == nil || r.tests["TestVethPairPings"].outcome != pass || r.tests[selftestRenamed] != nil {
			problems = append(problems, fmt.Sprintf("%s: testutils[renamed]: want TestVethPairPings to pass and %s to be missing", c.name, selftestRenamed))
		}
	}
	if failed == 0 {
		problems = append(problems, "the matrix passed although the probes were broken")
	}
	if len(problems) > 0 {
		return fmt.Errorf("selftest FAILED:\n  %s", strings.Join(problems, "\n  "))
	}
	fmt.Fprintf(w, "selftest passed: a broken probe name, a wrong skip and a planned test that did not run made the matrix fail (%d failures) on every guest kernel\n", failed)
	return nil
}
