package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/internal/kconfig"
)

func TestCPIOReadableByCpio(t *testing.T) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (make vmtest installs busybox-static)")
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.bytes("/init", 0o755, []byte("#!/bin/sh\n"))
	c.copyFile("/src/pkg/data.txt", src, 0)
	c.symlink("/bin/sh", "busybox")
	c.charDev("/dev/console", 0o600, 5, 1)
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%512 != 0 {
		t.Fatalf("archive is %d bytes, not padded to 512", buf.Len())
	}
	cmd := exec.Command(busybox, "cpio", "-t", "-v")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v\n%s", err, out)
	}
	for _, want := range []string{"init", "src/pkg/data.txt", "bin/sh -> busybox", "dev/console", "src/pkg"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	cmd = exec.Command(busybox, "cpio", "-i", "-d")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "console") {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "src/pkg/data.txt"))
	if err != nil || string(got) != "hello from the host\n" {
		t.Fatalf("extracted data.txt = %q, %v", got, err)
	}
}

func TestSplitGuestOutput(t *testing.T) {
	data := "VMTEST-BOOT 6.1.0-57-cloud-amd64\r\n" +
		"VMTEST-MODULE-FAIL veth.ko\n" +
		"VMTEST-BEGIN probe\n\x16=== RUN   TestA\r\n\x16--- PASS: TestA (0.10s)\nPASS\n\nVMTEST-END probe 0\n" +
		"VMTEST-BEGIN hook\n\x16=== RUN   TestB\n"
	runs, exits, notes, done := splitGuestOutput([]byte(data))
	if done {
		t.Error("done without VMTEST-EXIT")
	}
	if exits["probe"] != 0 || !strings.Contains(string(runs["probe"]), "--- PASS: TestA") {
		t.Errorf("probe run: exit %d output %q", exits["probe"], runs["probe"])
	}
	if strings.Contains(string(runs["probe"]), "\r") {
		t.Errorf("carriage returns kept: %q", runs["probe"])
	}
	if _, ok := exits["hook"]; ok || !strings.Contains(string(runs["hook"]), "TestB") {
		t.Errorf("unfinished hook run: exits %v output %q", exits, runs["hook"])
	}
	if len(notes) != 2 || !strings.Contains(notes[1], "veth.ko") {
		t.Errorf("notes %q", notes)
	}
}

func TestParseRunWithTest2JSON(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command for go tool test2json")
	}
	// What a go1.26 test binary prints with -test.v=test2json.
	raw := "\x16=== RUN   TestA\n" +
		"    a_test.go:1: kernel config: CONFIG_KPROBES is not set (/boot/config-x)\n" +
		"\x16--- SKIP: TestA (0.25s)\n\x16=== NAME  \n" +
		"\x16=== RUN   TestB\n\x16=== RUN   TestB/sub\n" +
		"    b_test.go:9: boom\n" +
		"\x16--- FAIL: TestB/sub (0.00s)\n\x16=== NAME  TestB\n\x16--- FAIL: TestB (1.50s)\n\x16=== NAME  \n\x16FAIL\n"
	r, err := parseRun(context.Background(), "pkg", []byte(raw), 1)
	if err != nil {
		t.Fatal(err)
	}
	a, b := r.tests["TestA"], r.tests["TestB"]
	if a == nil || a.outcome != skip || a.elapsed != 0.25 || !strings.Contains(a.reason, "CONFIG_KPROBES is not set") {
		t.Fatalf("TestA = %+v", a)
	}
	if b == nil || b.outcome != fail || b.elapsed != 1.5 || len(b.subs) != 1 || !strings.Contains(b.reason, "boom") {
		t.Fatalf("TestB = %+v", b)
	}
	if s := b.subs[0]; s.name != "TestB/sub" || s.outcome != fail || s.reason != "b_test.go:9: boom" {
		t.Fatalf("TestB/sub = %+v", s)
	}
	if strings.Join(r.order, ",") != "TestA,TestB" {
		t.Fatalf("order %v", r.order)
	}
}

func testConfig(t *testing.T, text string) *kconfig.Config {
	t.Helper()
	c, err := kconfig.Parse(strings.NewReader(text), "test-config")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckSkip(t *testing.T) {
	k61 := &column{name: "6.1", config: testConfig(t, "CONFIG_KPROBES=y\n# CONFIG_FPROBE is not set\nCONFIG_BPF_EVENTS=y\nCONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\n")}
	k510 := &column{name: "5.10.0-35-cloud-amd64", config: testConfig(t, "CONFIG_KPROBES=y\nCONFIG_BPF_SYSCALL=y\n")}
	host := &column{name: "host 6.18.44", host: true, config: testConfig(t, "# CONFIG_KPROBES is not set\nCONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\nCONFIG_NET_XGRESS=y\n")}
	for _, tc := range []struct {
		col       *column
		reason    string
		overruled bool
	}{
		{k61, "kernel config: CONFIG_KPROBES is not set (/proc/config.gz)", true},
		{k61, "kernel config: CONFIG_NET_XGRESS is not set (/boot/config-6.1)", false},
		{k61, "kprobe not supported", true},
		{k61, "kprobe_multi not supported by this kernel", false}, // FPROBE is off
		{k61, "fentry: not supported", true},
		{k61, "tcx: not supported", false}, // no CONFIG_NET_XGRESS in 6.1
		{k61, "needs root", true},
		{k61, "tshark not installed", false},
		{host, "kernel config: CONFIG_KPROBES is not set (/proc/config.gz)", false},
		{host, "needs root", false},
		{host, "load fentry: operation not permitted: " + kconfig.PolicyEPERM, false},
		{k61, "load fentry: operation not permitted: " + kconfig.PolicyEPERM, true},
		{host, "tcx link not supported", true},
		// Features that came with a kernel version: judged by the column's.
		{k510, "XDP live frames: not supported by this kernel (needs Linux 5.18): invalid argument", false},
		{k61, "XDP live frames: not supported by this kernel (needs Linux 5.18): invalid argument", true},
		{host, "XDP live frames: not supported by this kernel (needs Linux 5.18): invalid argument", true},
		{host, "XDP live frames: run program: operation not permitted: " + kconfig.PolicyEPERM, false},
		{k61, "XDP live frames: run program: operation not permitted: " + kconfig.PolicyEPERM, true},
	} {
		why := checkSkip(tc.col, tc.reason)
		if (why != "") != tc.overruled {
			t.Errorf("%s: skip %q: overruled=%v (%s), want %v", tc.col.name, tc.reason, why != "", why, tc.overruled)
		}
	}
}

func TestJudgeSubtestSkip(t *testing.T) {
	col := &column{name: "6.12", config: testConfig(t, "CONFIG_NET_XGRESS=y\nCONFIG_BPF_SYSCALL=y\n"), runs: map[string]*runResult{
		"tccap": {label: "tccap", tests: map[string]*testResult{
			"TestDirections": {name: "TestDirections", outcome: pass, subs: []subResult{{name: "TestDirections/tcx", outcome: skip, reason: "tcx not supported"}}},
			"TestOther":      {name: "TestOther", outcome: pass, subs: []subResult{{name: "TestOther/eth", outcome: skip, reason: "tshark not installed"}}},
		}},
	}}
	judge(col, map[string]bool{"tccap": true})
	if d := col.runs["tccap"].tests["TestDirections"]; d.outcome != fail || !d.overrun {
		t.Errorf("a subtest skipping tcx on a kernel with NET_XGRESS must fail its parent: %+v", d)
	}
	if o := col.runs["tccap"].tests["TestOther"]; o.outcome != pass {
		t.Errorf("an unrelated subtest skip must stay a skip: %+v", o)
	}
}

func TestInitScriptQuotesPatterns(t *testing.T) {
	p := &guestPlan{
		kernel: &kernel{Release: "6.1.0-57-cloud-amd64", Modules: []string{"veth.ko"}},
		env:    []string{"A=b c"},
		runs:   []guestRun{{label: "probe", pkgDir: "probe", bin: "/x/probe.test", run: "^Test(A|B)$'x", timeout: "3m0s"}},
	}
	s := initScript(p)
	for _, want := range []string{
		"insmod /lib/modules/vmtest/veth.ko",
		"export 'A=b c'",
		"BPFCAP_KCONFIG=/boot/config-6.1.0-57-cloud-amd64",
		`-test.run '^Test(A|B)$'\''x'`,
		"VMTEST-END probe $?",
		"reboot -f",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
}

func TestPlan(t *testing.T) {
	matrix := []matrixEntry{{pkg: "./hook", tests: []string{"TestA", "TestB"}}, {pkg: "./probe", tests: []string{"TestC"}}}
	got := plan(&options{pkgs: []string{"./probe", "hook"}}, matrix)
	if len(got) != 2 || got[0].label != "probe" || got[1].pkg != "./hook" || got[1].run != "^(TestA|TestB)$" || !got[0].strict {
		t.Fatalf("plan = %+v", got)
	}
	if len(got[1].tests) != 2 {
		t.Fatalf("a matrix package's planned tests must all report: %+v", got[1])
	}
	got = plan(&options{run: "TestX"}, matrix)
	if len(got) != len(matrix) || got[0].run != "TestX" || got[0].strict || got[0].tests != nil {
		t.Fatalf("plan with -run = %+v", got)
	}
	got = plan(&options{pkgs: []string{"./internal/vmtest/not-in-matrix"}}, matrix)
	if got[0].run != "." {
		t.Fatalf("package outside the matrix should run all its tests, got %q", got[0].run)
	}
}

// writeModule writes files (path -> content) under a new directory.
func writeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const guestTestFile = `package probe

import (
	"testing"

	tu "github.com/bpfcap/bpfcap/internal/testutils"
)

func TestGuest(t *testing.T) {
	tu.RunsInGuests(t)
	t.Log("x")
}

func TestHostOnly(t *testing.T) { t.Log("tshark") }

func FuzzGuest(f *testing.F) {
	tu.RunsInGuests(f)
}
`

// TestDiscoverMatrix: the matrix is what the source marks, under whatever
// names the tests have; a rename moves the test, it does not drop it.
func TestDiscoverMatrix(t *testing.T) {
	dir := writeModule(t, map[string]string{
		"probe/a_test.go":              guestTestFile,
		"internal/testutils/x_test.go": "package testutils\n\nimport \"testing\"\n\nfunc TestPings(t *testing.T) {\n\tRunsInGuests(t)\n}\n",
		"testdata/skip_test.go":        guestTestFile, // not a package the matrix runs
	})
	got, err := discoverMatrix(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].pkg != "./internal/testutils" || got[1].pkg != "./probe" ||
		strings.Join(got[1].tests, ",") != "FuzzGuest,TestGuest" || got[1].run() != "^(FuzzGuest|TestGuest)$" {
		t.Fatalf("discoverMatrix = %+v", got)
	}
	renamed := strings.Replace(guestTestFile, "TestGuest(", "TestGuestRenamed(", 1)
	if err := os.WriteFile(filepath.Join(dir, "probe/a_test.go"), []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = discoverMatrix(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got[1].tests, ",") != "FuzzGuest,TestGuestRenamed" {
		t.Fatalf("after a rename the matrix runs %v, want the renamed test", got[1].tests)
	}
}

// TestDiscoverMatrixRefusesHiddenMarker: a marker the harness cannot tie
// to a test (in a helper, a closure or a subtest) stops the matrix.
func TestDiscoverMatrixRefusesHiddenMarker(t *testing.T) {
	for name, body := range map[string]string{
		"helper":  "func helper(t *testing.T) { testutils.RunsInGuests(t) }\nfunc TestX(t *testing.T) { helper(t) }\n",
		"subtest": "func TestX(t *testing.T) {\n\tt.Run(\"a\", func(t *testing.T) { testutils.RunsInGuests(t) })\n}\n",
		"nested":  "func TestX(t *testing.T) {\n\tif true {\n\t\ttestutils.RunsInGuests(t)\n\t}\n}\n",
	} {
		dir := writeModule(t, map[string]string{"hook/x_test.go": "package hook\n\nimport (\n\t\"testing\"\n\n\t\"github.com/bpfcap/bpfcap/internal/testutils\"\n)\n\n" + body})
		_, err := discoverMatrix(dir)
		if err == nil || !strings.Contains(err.Error(), "hook/x_test.go:") {
			t.Errorf("%s: discoverMatrix error = %v, want one naming hook/x_test.go", name, err)
		}
	}
}

// TestReportPlannedTestMissing: a planned test that no column reports (it
// was renamed or removed after planning, or its binary crashed first) is a
// MISSING row and a failure in every column, not an absent row.
func TestReportPlannedTestMissing(t *testing.T) {
	col := &column{name: "6.12", runs: map[string]*runResult{
		"hook": {label: "hook", order: []string{"TestA"}, tests: map[string]*testResult{"TestA": {name: "TestA", outcome: pass}}},
	}}
	var out strings.Builder
	failed := report(&out, []*column{col}, []guestRun{{label: "hook", tests: []string{"TestA", "TestGone"}}})
	if failed != 1 || !strings.Contains(out.String(), "hook.TestGone  MISSING") {
		t.Fatalf("report failures = %d, want 1 with hook.TestGone MISSING:\n%s", failed, out.String())
	}
}

// TestRepoMatrix: this repository's own markers are readable, and every
// package the matrix runs has guest tests.
func TestRepoMatrix(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	got, err := discoverMatrix(repo)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range got {
		n += len(e.tests)
	}
	t.Logf("%d packages, %d guest tests", len(got), n)
	if len(got) < 10 || n < 80 {
		t.Fatalf("the matrix found only %d tests in %d packages: markers lost?", n, len(got))
	}
}

func TestParseOptionsErrors(t *testing.T) {
	var stderr bytes.Buffer
	for _, args := range [][]string{{"-kernels", ""}, {"extra"}, {"-env", "NOEQUALS"}, {"-j", "0"}} {
		if _, err := parseOptions(args, &stderr); err == nil {
			t.Errorf("parseOptions(%q) accepted", args)
		}
	}
}
