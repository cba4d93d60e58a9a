package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// testutilsPath is the import path of the package that declares the
// marker function.
const testutilsPath = "github.com/bpfcap/bpfcap/internal/testutils"

// markerFunc is the function whose call marks a test as guest-capable
// (testutils.RunsInGuests).
const markerFunc = "RunsInGuests"

// matrixEntry is one package of the default matrix and the tests in it
// that marked themselves guest-capable.
type matrixEntry struct {
	pkg   string   // "./probe"
	tests []string // "TestTraceDropNoSocket", ... sorted
}

// run is the -test.run pattern that selects exactly the entry's tests.
func (e matrixEntry) run() string {
	return "^(" + strings.Join(e.tests, "|") + ")$"
}

// discoverMatrix reads every _test.go file under repo and returns, per
// package, the Test and Fuzz functions that call testutils.RunsInGuests as
// a statement of their own body. A marker call anywhere else (a helper, a
// closure, a subtest) is an error naming its position: the harness could
// not tell which test it marks.
func discoverMatrix(repo string) ([]matrixEntry, error) {
	byPkg := map[string][]string{}
	var problems []string
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != repo && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		tests, bad, err := markedTests(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repo, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, b := range bad {
			problems = append(problems, filepath.Join(rel, filepath.Base(path))+":"+b)
		}
		if len(tests) > 0 {
			pkg := "./" + filepath.ToSlash(rel)
			byPkg[pkg] = append(byPkg[pkg], tests...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find guest tests: %w", err)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("testutils.%s must be a statement of a Test or Fuzz function's own body, so the matrix knows which test it marks:\n  %s",
			markerFunc, strings.Join(problems, "\n  "))
	}
	if len(byPkg) == 0 {
		return nil, errors.New("no test calls testutils." + markerFunc + ": nothing for the guests to run")
	}
	entries := make([]matrixEntry, 0, len(byPkg))
	for pkg, tests := range byPkg {
		sort.Strings(tests)
		entries = append(entries, matrixEntry{pkg: pkg, tests: tests})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].pkg < entries[j].pkg })
	return entries, nil
}

// markedTests returns the marked tests of one file and the positions
// ("line: why") of marker calls that mark no test.
func markedTests(path string) (tests, bad []string, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", path, err)
	}
	isMarker := markerMatcher(f)
	if isMarker == nil {
		return nil, nil, nil
	}
	accepted := map[*ast.CallExpr]bool{}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil || fn.Recv != nil || !isTestFunc(fn.Name.Name) {
			continue
		}
		for _, st := range fn.Body.List {
			es, ok := st.(*ast.ExprStmt)
			if !ok {
				continue
			}
			if call, ok := es.X.(*ast.CallExpr); ok && isMarker(call) {
				accepted[call] = true
				tests = append(tests, fn.Name.Name)
				break
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok && isMarker(call) && !accepted[call] {
			bad = append(bad, strconv.Itoa(fset.Position(call.Pos()).Line)+": not a statement of a Test or Fuzz function")
		}
		return true
	})
	return tests, bad, nil
}

// markerMatcher returns a function that tells whether a call is the
// marker, as the file names it: testutils.RunsInGuests (or the import's
// alias) from other packages, RunsInGuests inside package testutils. It
// returns nil when the file cannot call the marker.
func markerMatcher(f *ast.File) func(*ast.CallExpr) bool {
	if f.Name.Name == "testutils" {
		return func(c *ast.CallExpr) bool {
			id, ok := c.Fun.(*ast.Ident)
			return ok && id.Name == markerFunc
		}
	}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != testutilsPath {
			continue
		}
		name := "testutils"
		if imp.Name != nil {
			name = imp.Name.Name
		}
		return func(c *ast.CallExpr) bool {
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != markerFunc {
				return false
			}
			id, ok := sel.X.(*ast.Ident)
			return ok && id.Name == name
		}
	}
	return nil
}

// isTestFunc reports whether name is a top-level test or fuzz target name
// that `go test` runs (TestX, FuzzX, X not starting with a lower-case
// letter).
func isTestFunc(name string) bool {
	for _, prefix := range []string{"Test", "Fuzz"} {
		rest, ok := strings.CutPrefix(name, prefix)
		if ok && (rest == "" || !('a' <= rest[0] && rest[0] <= 'z')) {
			return true
		}
	}
	return false
}
