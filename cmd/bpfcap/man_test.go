package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestManPage: bpfcap man writes a roff page with every command and its
// flags; where groff is installed it formats without warnings.
func TestManPage(t *testing.T) {
	out, _, err := runCLI("man")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".TH BPFCAP 1 ", ".SH SYNOPSIS", `.SS "bpfcap trace"`, `.SS "bpfcap tc"`, `.SS "bpfcap read"`,
		`\fB\-i\fR, \fB\-\-interface\fR \fIdevice\fR`, `\fB\-\-version\fR`, ".BR tcpdump (8)"} {
		if !strings.Contains(out, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Logf("no groff: page not formatted")
		return
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("groff: %v\n%s", err, stderr.String())
	}
}
