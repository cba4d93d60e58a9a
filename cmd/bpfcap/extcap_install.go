package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// extcapWrapperName is the file `bpfcap extcap --install DIR` writes:
// Wireshark runs every executable in its extcap folder.
const extcapWrapperName = "bpfcap-extcap"

// extcapWrapper returns the script that runs bin's extcap command with
// the arguments Wireshark passes.
func extcapWrapper(bin string) string {
	return "#!/bin/sh\n" +
		"# Wireshark extcap entry for bpfcap, written by `bpfcap extcap --install`.\n" +
		"exec " + shellQuote(bin) + " extcap \"$@\"\n"
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// installExtcapWrapper writes dir/bpfcap-extcap, running the executable
// that runs now, atomically (a Wireshark listing interfaces meanwhile sees
// the old wrapper or the new one, never half of one).
func installExtcapWrapper(dir string, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("extcap --install: find bpfcap's own path: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return fmt.Errorf("extcap --install: resolve %s: %w", exe, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("extcap --install: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+extcapWrapperName+"-*")
	if err != nil {
		return fmt.Errorf("extcap --install: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails once renamed
	_, werr := tmp.WriteString(extcapWrapper(exe))
	cerr := tmp.Close()
	if err := firstErr(werr, cerr, os.Chmod(tmp.Name(), 0o755)); err != nil {
		return fmt.Errorf("extcap --install: write %s: %w", tmp.Name(), err)
	}
	path := filepath.Join(dir, extcapWrapperName)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("extcap --install: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "installed %s (runs %s extcap)\n", path, exe)
	return err
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
