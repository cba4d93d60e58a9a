package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// extcapSentence is one parsed line of extcap output.
type extcapSentence struct {
	kind   string
	fields map[string]string
}

var (
	extcapLineRE  = regexp.MustCompile(`^(extcap|interface|dlt|arg|value|control) (\{[A-Za-z0-9_-]+=[^{}]*\})+$`)
	extcapFieldRE = regexp.MustCompile(`\{([A-Za-z0-9_-]+)=([^{}]*)\}`)
)

// parseExtcap parses extcap output as Wireshark does, failing the test on
// any line that is not a well-formed sentence or repeats a field.
func parseExtcap(t *testing.T, out string) []extcapSentence {
	t.Helper()
	var ss []extcapSentence
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if !extcapLineRE.MatchString(line) {
			t.Fatalf("malformed extcap sentence %q", line)
		}
		s := extcapSentence{kind: strings.Fields(line)[0], fields: map[string]string{}}
		for _, m := range extcapFieldRE.FindAllStringSubmatch(line, -1) {
			if _, dup := s.fields[m[1]]; dup {
				t.Fatalf("field %s twice in %q", m[1], line)
			}
			s.fields[m[1]] = m[2]
		}
		ss = append(ss, s)
	}
	return ss
}

// extcapRun runs `bpfcap extcap ARGS` to completion and returns its
// stdout and error.
func extcapRun(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), strings.NewReader(""), &stdout, &stderr, append([]string{"extcap"}, args...))
	return stdout.String(), err
}

// TestExtcapProtocol reads every answer bpfcap gives Wireshark as
// Wireshark parses it: the interface list, each interface's DLT and
// options (numbered from 0 without gaps, unique calls, known types,
// values of existing selectors, defaults that pass their own validation),
// and checks that each interface's default command line is one bpfcap's
// capture commands accept.
func TestExtcapProtocol(t *testing.T) {
	out, err := extcapRun("--extcap-interfaces", "--extcap-version=4.0")
	if err != nil {
		t.Fatal(err)
	}
	ss := parseExtcap(t, out)
	if ss[0].kind != "extcap" || ss[0].fields["version"] == "" {
		t.Fatalf("first sentence %+v, want extcap {version=...}", ss[0])
	}
	names := map[string]string{}
	for _, s := range ss[1:] {
		if s.kind != "interface" {
			t.Fatalf("unexpected %s sentence in the interface list", s.kind)
		}
		v := s.fields["value"]
		if v == "" || s.fields["display"] == "" {
			t.Fatalf("interface without value or display: %+v", s.fields)
		}
		if _, dup := names[v]; dup {
			t.Fatalf("interface %s listed twice", v)
		}
		names[v] = s.fields["display"]
	}
	for _, want := range []string{"bpfcap-drops", "bpfcap-trace", "bpfcap-tc", "bpfcap-xdp", "bpfcap-prog"} {
		if names[want] == "" {
			t.Errorf("interface %s not offered; got %v", want, names)
		}
	}
	if d := names["bpfcap-drops"]; d != "bpfcap: kfree_skb drops" {
		t.Errorf("bpfcap-drops is displayed as %q", d)
	}

	knownTypes := map[string]bool{"integer": true, "unsigned": true, "long": true, "double": true, "string": true,
		"password": true, "boolean": true, "boolflag": true, "fileselect": true, "selector": true, "radio": true,
		"multicheck": true, "timestamp": true}
	for name := range names {
		t.Run(name, func(t *testing.T) {
			out, err := extcapRun("--extcap-dlts", "--extcap-interface", name)
			if err != nil {
				t.Fatal(err)
			}
			dlts := parseExtcap(t, out)
			if len(dlts) != 1 || dlts[0].kind != "dlt" || dlts[0].fields["name"] == "" || dlts[0].fields["display"] == "" {
				t.Fatalf("--extcap-dlts: %q, want one dlt sentence", out)
			}
			if _, err := strconv.Atoi(dlts[0].fields["number"]); err != nil {
				t.Fatalf("dlt number %q: %v", dlts[0].fields["number"], err)
			}

			out, err = extcapRun("--extcap-interface", name, "--extcap-config")
			if err != nil {
				t.Fatal(err)
			}
			args := map[string]map[string]string{} // by number
			calls := map[string]bool{}
			defaults := map[string]int{}
			for _, s := range parseExtcap(t, out) {
				switch s.kind {
				case "arg":
					n := s.fields["number"]
					if n != strconv.Itoa(len(args)) {
						t.Fatalf("arg number %s, want %d (numbers from 0, in order)", n, len(args))
					}
					args[n] = s.fields
					call := s.fields["call"]
					if !strings.HasPrefix(call, "--") || calls[call] {
						t.Fatalf("arg %s: call %q is not a new --option", n, call)
					}
					calls[call] = true
					if !knownTypes[s.fields["type"]] || s.fields["display"] == "" {
						t.Fatalf("arg %s: type %q display %q", n, s.fields["type"], s.fields["display"])
					}
					if def, re := s.fields["default"], s.fields["validation"]; def != "" && re != "" && !regexp.MustCompile(re).MatchString(def) {
						t.Fatalf("arg %s: default %q fails its own validation %s", call, def, re)
					}
					if r := s.fields["range"]; r != "" {
						lo, hi, _ := strings.Cut(r, ",")
						l, err1 := strconv.Atoi(lo)
						h, err2 := strconv.Atoi(hi)
						d, err3 := strconv.Atoi(s.fields["default"])
						if err1 != nil || err2 != nil || err3 != nil || d < l || d > h {
							t.Fatalf("arg %s: default %q outside range %s", call, s.fields["default"], r)
						}
					}
				case "value":
					a, ok := args[s.fields["arg"]]
					if !ok || (a["type"] != "selector" && a["type"] != "radio") {
						t.Fatalf("value %+v for arg %s, which is not a selector or radio", s.fields, s.fields["arg"])
					}
					if s.fields["value"] == "" || s.fields["display"] == "" {
						t.Fatalf("value without value or display: %+v", s.fields)
					}
					if s.fields["default"] == "true" {
						defaults[s.fields["arg"]]++
					}
				default:
					t.Fatalf("unexpected %s sentence in --extcap-config", s.kind)
				}
			}
			for n, c := range defaults {
				if c > 1 {
					t.Fatalf("arg %s has %d default values", n, c)
				}
			}
			if len(args) == 0 || !calls["--snaplen"] || !calls["--log-file"] {
				t.Fatalf("options %v: want at least --snaplen and --log-file", calls)
			}
			extcapCheckCommand(t, name)
		})
	}
}

// extcapCheckCommand checks that the command line interface name builds
// from its default options (plus what each needs) is one bpfcap's
// capture command parses, options and all.
func extcapCheckCommand(t *testing.T, name string) {
	t.Helper()
	ifc, err := findExtcapInterface(extcapInterfaces(), name)
	if err != nil {
		t.Fatal(err)
	}
	need := map[string]map[string]string{
		"bpfcap-tc":   {"dev": "lo", "direction": "ingress", "perf": "true"},
		"bpfcap-xdp":  {"pin": "/sys/fs/bpf/xdpcap_hook", "actions": "drop,pass"},
		"bpfcap-prog": {"prog-id": "42"},
		"bpfcap-dpdk": {"ports": "0 1"},
	}
	v := extcapValues{ifc: ifc, set: need[name]}
	if v.set == nil {
		v.set = map[string]string{}
	}
	flags, words, err := ifc.command(v)
	if err != nil {
		t.Fatalf("%s with default options: %v", name, err)
	}
	root := newRootCmd(&cliEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	sub, rest, err := root.Find(flags)
	if err != nil || sub == root {
		t.Fatalf("%s: bpfcap has no command %q: %v", name, flags[0], err)
	}
	if err := sub.ParseFlags(append(rest, "-w", "-")); err != nil {
		t.Fatalf("%s: bpfcap %s refuses %q: %v", name, sub.Name(), flags, err)
	}
	if len(words) == 0 {
		t.Fatalf("%s: no positional words", name)
	}
	for _, w := range append(append([]string{}, flags...), words...) {
		if strings.TrimSpace(w) == "" {
			t.Fatalf("%s: empty word in bpfcap %s -- %s", name, quoteArgs(flags), quoteArgs(words))
		}
	}
	t.Logf("%s: bpfcap %s -- %s", name, quoteArgs(flags), quoteArgs(words))
}

// TestExtcapFilterCheck: Wireshark's check of the capture filter box
// (--extcap-capture-filter without --capture) gets nothing on stdout for
// a valid tcpdump expression and one line with libpcap's message for an
// invalid one, with exit status 0 both times.
func TestExtcapFilterCheck(t *testing.T) {
	for _, ifc := range extcapInterfaces() {
		for _, c := range []struct {
			expr, want string
		}{
			{"udp port 53 and not host 10.0.0.1", ""},
			{"", ""},
			{"udp port", "syntax error"},
			{"tcp port 99999", "port 99999"},
		} {
			out, err := extcapRun("--extcap-capture-filter", c.expr, "--extcap-interface", ifc.name)
			if err != nil {
				t.Fatalf("%s filter %q: %v (the check must exit 0)", ifc.name, c.expr, err)
			}
			switch {
			case c.want == "" && out != "":
				t.Errorf("%s: valid filter %q reported as %q", ifc.name, c.expr, out)
			case c.want != "" && (!strings.Contains(out, c.want) || strings.Count(out, "\n") != 1):
				t.Errorf("%s: invalid filter %q: %q, want one line saying %q", ifc.name, c.expr, out, c.want)
			}
		}
	}
}

// TestExtcapArgs: the arguments Wireshark passes that bpfcap does not
// use are tolerated; mistakes a person makes by hand are named.
func TestExtcapArgs(t *testing.T) {
	// Wireshark 4.0's own extras, and an unknown future one with a value.
	out, err := extcapRun("--extcap-version=4.0", "--extcap-interfaces", "--extcap-control-in", "/tmp/x", "--extcap-control-out", "/tmp/y", "--extcap-future-thing", "value")
	if err != nil || !strings.Contains(out, "bpfcap-tc") {
		t.Fatalf("interfaces with extra args: %v\n%s", err, out)
	}
	missing := filepath.Join(t.TempDir(), "never-created.pcapng")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "nothing to do"},
		{[]string{"--extcap-dlts"}, "no --extcap-interface given"},
		{[]string{"--capture", "--extcap-interface", "bpfcap-nope", "--fifo", missing}, `unknown extcap interface "bpfcap-nope"`},
		{[]string{"--capture", "--extcap-interface", "bpfcap-tc", "--dev", "lo"}, "--capture needs --fifo PATH"},
		{[]string{"--capture", "--extcap-interface", "bpfcap-tc", "--fifo", missing}, "--dev: name the device"},
		{[]string{"--capture", "--extcap-interface", "bpfcap-tc", "--dev", "lo", "--hooks", "kprobe:ip_rcv", "--fifo", missing}, "--hooks: not an option of this interface"},
		{[]string{"--capture", "--extcap-interface", "bpfcap-tc", "--dev", "lo", "--snaplen", "0", "--fifo", missing}, `--snaplen "0": want a number from 1 to 65536`},
		{[]string{"--capture", "--extcap-interface", "bpfcap-xdp", "--fifo", missing}, "give either --pin"},
		{[]string{"--capture", "--extcap-interface", "bpfcap-xdp", "--xdp-dev", "lo", "--actions", "drop", "--fifo", missing}, "verdicts are known only with --pin"},
		{[]string{"--capture", "--extcap-interface", "bpfcap-prog", "--prog-id", "1", "--prog-name", "x", "--fifo", missing}, "give one of --prog-id"},
		{[]string{"--capture", "--extcap-interface", "bpfcap-trace", "--hooks", " ", "--fifo", missing}, "--hooks: name at least one hook"},
		{[]string{"--extcap-interfaces", "udp"}, `unexpected argument "udp"`},
	} {
		_, err := extcapRun(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("extcap %s: %v, want an error saying %q", strings.Join(c.args, " "), err, c.want)
			continue
		}
		var msg bytes.Buffer
		if code := exitCode(err, &msg); code != 2 {
			t.Errorf("exit status %d, want 2", code)
		}
		t.Logf("%s", strings.TrimSpace(msg.String()))
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("a refused capture created its output: %v", err)
	}
}

// TestExtcapInstall: --install writes an executable wrapper that runs
// this binary's extcap command with Wireshark's arguments, replacing an
// older one.
func TestExtcapInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "extcap")
	for range 2 {
		out, err := extcapRun("--install", dir)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, filepath.Join(dir, extcapWrapperName)) {
			t.Fatalf("install says %q", out)
		}
	}
	path := filepath.Join(dir, extcapWrapperName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Fatalf("wrapper mode %v, want 0755", st.Mode())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if want := fmt.Sprintf("exec %s extcap \"$@\"\n", shellQuote(exe)); !strings.HasSuffix(string(b), want) || !strings.HasPrefix(string(b), "#!/bin/sh\n") {
		t.Fatalf("wrapper:\n%s\nwant a sh script ending %q", b, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("extcap dir holds %d files, want only the wrapper (Wireshark runs every executable there)", len(ents))
	}
}
