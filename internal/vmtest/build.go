package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// testBinary is one package's compiled test binary.
type testBinary struct {
	pkg    string // "./probe"
	pkgDir string // "probe", relative to the repo root
	path   string // host path of the binary
	err    error  // the build failed: reported as a failure in every column
}

// buildTests compiles each package's tests with `go test -c` into dir.
// cgo stays on (libpcap); the guest gets the shared libraries the binaries
// need (see sharedLibs). A package that does not build gets a testBinary
// with err set, so the others still run.
func buildTests(ctx context.Context, repo, dir string, pkgs []string, log io.Writer) ([]testBinary, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("test binary dir: %w", err)
	}
	var bins []testBinary
	for _, pkg := range pkgs {
		rel := filepath.Clean(strings.TrimPrefix(pkg, "./"))
		if filepath.IsAbs(rel) || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("package %s: give a path relative to the repo root, like ./probe", pkg)
		}
		out := filepath.Join(dir, strings.ReplaceAll(rel, string(filepath.Separator), "_")+".test")
		os.Remove(out)
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", out, "./"+rel)
		cmd.Dir = repo
		b, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		tb := testBinary{pkg: "./" + rel, pkgDir: rel, path: out}
		if err != nil {
			tb.err = fmt.Errorf("go test -c ./%s: %w\n%s", rel, err, tail(string(b), 15))
		} else if _, serr := os.Stat(out); serr != nil {
			tb.err = fmt.Errorf("go test -c ./%s produced no binary (no test files?): %s", rel, strings.TrimSpace(string(b)))
		}
		if tb.err != nil {
			fmt.Fprintf(log, "vmtest: %v\n", tb.err)
		} else {
			fmt.Fprintf(log, "vmtest: built ./%s\n", rel)
		}
		bins = append(bins, tb)
	}
	return bins, nil
}
