package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// report prints the kernel x test table, the skip reasons and the failures,
// and returns the number of failures (failed, missing or overruled tests,
// broken runs, guests that did not finish).
func report(w io.Writer, cols []*column, runs []guestRun) int {
	type row struct{ label, test string }
	var rows []row
	seen := map[row]bool{}
	for _, r := range runs {
		// Planned tests are rows even when no column reported them: a
		// test that ran nowhere is MISSING everywhere, never just absent.
		for _, t := range r.tests {
			k := row{r.label, t}
			if !seen[k] {
				seen[k] = true
				rows = append(rows, k)
			}
		}
		for _, c := range cols {
			rr := c.runs[r.label]
			if rr == nil {
				continue
			}
			for _, t := range rr.order {
				k := row{r.label, t}
				if !seen[k] {
					seen[k] = true
					rows = append(rows, k)
				}
			}
		}
	}
	failures := 0
	var notes, fails []string
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprint(tw, "TEST")
	for _, c := range cols {
		fmt.Fprintf(tw, "\t%s", c.name)
	}
	fmt.Fprintln(tw)
	for _, rw := range rows {
		fmt.Fprintf(tw, "%s.%s", rw.label, rw.test)
		for _, c := range cols {
			cell := "-"
			rr := c.runs[rw.label]
			var t *testResult
			if rr != nil {
				t = rr.tests[rw.test]
			}
			switch {
			case rr == nil && c.bootErr != "":
				cell = "NOT RUN"
			case t == nil:
				cell = "MISSING"
				failures++
				fails = append(fails, fmt.Sprintf("%s / %s.%s: test did not run (renamed or removed since planning, or a crash or timeout of its binary)", c.name, rw.label, rw.test))
			case t.outcome == pass:
				cell = fmt.Sprintf("pass %.1fs", t.elapsed)
			case t.outcome == skip:
				notes = append(notes, fmt.Sprintf("[%d] %s / %s.%s: %s", len(notes)+1, c.name, rw.label, rw.test, oneLine(t.reason)))
				cell = fmt.Sprintf("skip[%d]", len(notes))
			case t.outcome == fail && t.overrun:
				failures++
				notes = append(notes, fmt.Sprintf("[%d] %s / %s.%s: %s", len(notes)+1, c.name, rw.label, rw.test, oneLine(t.reason)))
				cell = fmt.Sprintf("FAIL(skip)[%d]", len(notes))
			case t.outcome == fail:
				failures++
				cell = "FAIL"
				fails = append(fails, fmt.Sprintf("%s / %s.%s:\n%s", c.name, rw.label, rw.test, indent(excerpt(t.reason))))
			case t.outcome == missing:
				failures++
				cell = "INCOMPLETE"
				fails = append(fails, fmt.Sprintf("%s / %s.%s: started but never reported a result", c.name, rw.label, rw.test))
			}
			if t != nil && len(t.subs) > 0 {
				cell += "*"
				var subs []string
				for _, s := range t.subs {
					word := map[outcome]string{fail: "FAIL", skip: "skip"}[s.outcome]
					if s.outcome == skip {
						word += " (" + oneLine(s.reason) + ")"
					}
					subs = append(subs, s.name+": "+word)
				}
				notes = append(notes, fmt.Sprintf("    * %s / %s.%s subtests: %s", c.name, rw.label, rw.test, strings.Join(subs, "; ")))
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprint(tw, "(time)")
	for _, c := range cols {
		fmt.Fprintf(tw, "\t%.0fs", c.seconds)
	}
	fmt.Fprintln(tw)
	tw.Flush()
	for _, c := range cols {
		if c.bootErr != "" {
			failures++
			fails = append(fails, fmt.Sprintf("%s: %s", c.name, c.bootErr))
		}
		for _, r := range runs {
			rr := c.runs[r.label]
			if rr != nil && rr.err != "" {
				failures++
				fails = append(fails, fmt.Sprintf("%s / %s: %s\n%s", c.name, r.label, rr.err, indent(excerpt(rr.output))))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nskip reasons:")
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	if len(fails) > 0 {
		fmt.Fprintln(w, "\nfailures:")
		for _, f := range fails {
			fmt.Fprintln(w, "- "+f)
		}
	}
	fmt.Fprintf(w, "\n%d test rows x %d kernels, %d failure(s)\n", len(rows), len(cols), failures)
	return failures
}

// excerpt keeps the first lines of a failure's output (where the error
// usually is) and its last lines (where a panic or summary is).
func excerpt(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") { // a crash or -test.timeout: show it and what follows
			lines = lines[i:]
			break
		}
	}
	if len(lines) <= 16 {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:10], "\n") + fmt.Sprintf("\n... (%d lines left out: see the log) ...\n", len(lines)-15) + strings.Join(lines[len(lines)-5:], "\n")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
