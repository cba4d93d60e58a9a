package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/bpfcap/bpfcap/internal/kconfig"
)

// outcome of one test in one column.
type outcome int

const (
	missing outcome = iota // not reported at all: a failure
	pass
	fail
	skip
)

// testResult is one top-level test in one column.
type testResult struct {
	name    string
	outcome outcome
	elapsed float64
	reason  string      // skip reason, failure output, or why a skip was overruled
	subs    []subResult // subtests that did not pass
	overrun bool        // a skip the harness turned into a failure
}

// subResult is a subtest that failed or skipped.
type subResult struct {
	name    string // "TestX/sub"
	outcome outcome
	reason  string
}

// runResult is one test binary invocation in one column.
type runResult struct {
	label  string
	tests  map[string]*testResult
	order  []string
	exit   int    // binary's exit status, -1 when it never finished
	err    string // crash, timeout or missing END marker
	output string // whole raw output, for diagnosis
}

// column is one kernel (a guest, or the host).
type column struct {
	name     string // "6.1.0-57-cloud-amd64" or "host 6.18.44-..."
	host     bool
	config   *kconfig.Config
	runs     map[string]*runResult
	bootErr  string
	seconds  float64
	logFiles []string
	// Guests only: initramfs size and the guest's uptime line at /init.
	initrdBytes int64
	boot        string
}

// test2json event, as `go tool test2json` prints it.
type event struct {
	Action string
	Test   string
	Output string
}

// parseRun converts a test binary's -test.v=test2json output with
// `go tool test2json` and collects the top-level results.
func parseRun(ctx context.Context, label string, raw []byte, exit int) (*runResult, error) {
	r := &runResult{label: label, tests: map[string]*testResult{}, exit: exit, output: string(raw)}
	cmd := exec.CommandContext(ctx, "go", "tool", "test2json", "-p", label)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool test2json: %w", err)
	}
	outputs := map[string]*strings.Builder{} // by full test name, subtests too
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("decode test2json event: %w", err)
		}
		if ev.Test == "" {
			continue
		}
		top, _, isSub := strings.Cut(ev.Test, "/")
		t := r.tests[top]
		if t == nil {
			t = &testResult{name: top}
			r.tests[top] = t
			r.order = append(r.order, top)
		}
		if outputs[ev.Test] == nil {
			outputs[ev.Test] = &strings.Builder{}
		}
		switch ev.Action {
		case "output":
			if m := elapsedRE.FindStringSubmatch(ev.Output); m != nil && m[1] == ev.Test && !isSub {
				t.elapsed, _ = strconv.ParseFloat(m[2], 64)
			}
			if !strings.HasPrefix(ev.Output, "=== ") && !strings.HasPrefix(strings.TrimSpace(ev.Output), "--- ") {
				line := strings.TrimPrefix(ev.Output, "    ")
				outputs[ev.Test].WriteString(line)
				if isSub { // a subtest's lines belong to its parent's story too
					outputs[top].WriteString(line)
				}
			}
		case "pass", "fail", "skip":
			o := map[string]outcome{"pass": pass, "fail": fail, "skip": skip}[ev.Action]
			if isSub {
				if o != pass {
					t.subs = append(t.subs, subResult{name: ev.Test, outcome: o, reason: strings.TrimSpace(outputs[ev.Test].String())})
				}
				continue
			}
			t.outcome = o
		}
	}
	for name, t := range r.tests {
		t.reason = strings.TrimSpace(outputs[name].String())
	}
	return r, sc.Err()
}

// elapsedRE reads a test's duration from its "--- PASS: Name (1.23s)" line.
var elapsedRE = regexp.MustCompile(`^\s*--- (?:PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)

// skipRule says which config symbols a skip reason matching re claims are
// missing.
type skipRule struct {
	re   *regexp.Regexp
	syms []string
}

func skipRules() []skipRule {
	r := func(expr string, syms ...string) skipRule {
		return skipRule{re: regexp.MustCompile(`(?i)` + expr), syms: syms}
	}
	return []skipRule{
		r(`kprobe[._-]?multi|fprobe`, "CONFIG_FPROBE"),
		r(`kprobe|kretprobe`, "CONFIG_KPROBES"),
		r(`fentry|fexit|fmod_ret|trampoline`, "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"),
		r(`tp_btf|btf`, "CONFIG_DEBUG_INFO_BTF"),
		r(`raw_tp|raw.tracepoint|tracepoint`, "CONFIG_BPF_EVENTS"),
		r(`\btcx\b`, "CONFIG_NET_XGRESS"),
		r(`clsact|cls_bpf|sch_ingress`, "CONFIG_NET_SCH_INGRESS", "CONFIG_NET_CLS_BPF"),
		r(`\bxdp\b|ringbuf|perf.?event|bpffs|prog.?array`, "CONFIG_BPF_SYSCALL"),
		r(`\bveth\b`, "CONFIG_VETH"),
	}
}

var rootRE = regexp.MustCompile(`(?i)needs root|not root|as root`)

// needsLinuxRE reads the version out of kconfig.SkipOrFailFeature's
// "needs Linux 5.18" skip reasons.
var needsLinuxRE = regexp.MustCompile(regexp.QuoteMeta(kconfig.NeedsLinuxPrefix) + `(\d+\.\d+)`)

// kernelVersionRE finds "major.minor" in a column's name ("6.1.0-57-cloud-amd64",
// "host 6.18.44-...", or the series "5.10" of a guest that did not boot).
var kernelVersionRE = regexp.MustCompile(`\d+\.\d+`)

// versionLess reports whether "major.minor" a is older than b.
func versionLess(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	return am < bm || (am == bm && an < bn)
}

var notSetRE = regexp.MustCompile(`(CONFIG_[A-Z0-9_]+) is not set`)

// checkSkip returns why a skip with this reason contradicts the column's
// kernel, or "" when the skip is credible.
func checkSkip(col *column, reason string) string {
	if !col.host && rootRE.MatchString(reason) && !strings.Contains(reason, kconfig.PolicyEPERM) {
		return "the guest runs tests as root"
	}
	if !col.host && strings.Contains(reason, kconfig.PolicyEPERM) {
		return "the guests have no policy that refuses root: a refusal there is a failure"
	}
	if m := needsLinuxRE.FindStringSubmatch(reason); m != nil {
		// A feature that came with a kernel version (no config symbol
		// switches it): credible only on an older kernel.
		if have := kernelVersionRE.FindString(col.name); have != "" && !versionLess(have, m[1]) {
			return fmt.Sprintf("the skip says the feature %s%s but this kernel is %s", kconfig.NeedsLinuxPrefix, m[1], have)
		}
		return ""
	}
	if col.config == nil {
		return ""
	}
	for _, m := range notSetRE.FindAllStringSubmatch(reason, -1) {
		if st := col.config.State(m[1]); st.On() {
			return fmt.Sprintf("the skip says %s is not set but this kernel's config has %s=%s", m[1], m[1], st)
		}
	}
	if len(notSetRE.FindAllString(reason, -1)) > 0 {
		return "" // names the missing symbol, and the config agrees
	}
	if col.host && strings.Contains(reason, kconfig.PolicyEPERM) {
		return "" // this machine's policy refuses it as root: documented, cannot tell
	}
	for _, rule := range skipRules() {
		if !rule.re.MatchString(reason) {
			continue
		}
		var on []string
		for _, s := range rule.syms {
			if st := col.config.State(s); st.On() {
				on = append(on, s+"="+st.String())
			} else {
				on = nil
				break
			}
		}
		if len(on) > 0 {
			return fmt.Sprintf("skip mentions %q but this kernel's config has %s", rule.re.FindString(reason), strings.Join(on, ", "))
		}
		return "" // the first rule that matches decides
	}
	return ""
}

// markerRE finds the harness's markers in a guest's test output.
var markerRE = regexp.MustCompile(`^VMTEST-(BOOT|BEGIN|END|EXIT|MODULE-FAIL)\b ?(.*)$`)

// splitGuestOutput splits the guest's ttyS1 stream into per-run raw outputs
// and exit codes; done reports whether the guest reached VMTEST-EXIT.
func splitGuestOutput(data []byte) (runs map[string][]byte, exits map[string]int, notes []string, done bool) {
	runs, exits = map[string][]byte{}, map[string]int{}
	var cur string
	var buf bytes.Buffer
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimRight(line, "\r\n")
		m := markerRE.FindStringSubmatch(trimmed)
		if m == nil {
			if cur != "" {
				buf.WriteString(strings.TrimSuffix(line, "\r\n") + map[bool]string{true: "\n"}[strings.HasSuffix(line, "\r\n")])
			}
			continue
		}
		switch m[1] {
		case "BOOT":
			notes = append(notes, "booted "+m[2])
		case "MODULE-FAIL":
			notes = append(notes, "module failed to load: "+m[2])
		case "BEGIN":
			cur = m[2]
			buf.Reset()
		case "END":
			f := strings.Fields(m[2])
			if len(f) == 2 && f[0] == cur {
				exits[cur], _ = strconv.Atoi(f[1])
				runs[cur] = append([]byte(nil), buf.Bytes()...)
			}
			cur = ""
		case "EXIT":
			done = true
		}
	}
	if cur != "" {
		runs[cur] = append([]byte(nil), buf.Bytes()...) // unfinished: exit stays unset
	}
	return runs, exits, notes, done
}
