package probe

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tracefsRoots are where tracefs is looked for, in order.
var tracefsRoots = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// findTracefs returns the mounted tracefs directory, or "" when there is
// none (classic tracepoints are then unavailable).
func findTracefs() string {
	for _, dir := range tracefsRoots {
		if _, err := os.Stat(filepath.Join(dir, "events")); err == nil {
			return dir
		}
	}
	return ""
}

// tpField is one field of a classic tracepoint's record.
type tpField struct {
	decl   string // "void * skbaddr"
	name   string // "skbaddr"
	offset int
	size   int
}

// isSkbField reports whether the field holds an sk_buff address: the
// kernel's tracepoints call it skbaddr, a few spell out the type.
func (f tpField) isSkbField() bool {
	if f.size != 8 {
		return false
	}
	typ := strings.TrimSpace(strings.TrimSuffix(f.decl, f.name))
	return f.name == "skbaddr" || f.name == "skb" && strings.Contains(typ, "*") ||
		strings.Contains(typ, "struct sk_buff *")
}

// isReasonField reports whether the field holds an enum skb_drop_reason.
func (f tpField) isReasonField() bool {
	return strings.HasPrefix(f.decl, "enum skb_drop_reason ")
}

// tracepointFields reads the non-common fields of tracepoint cat:name from
// its tracefs format file.
func tracepointFields(tracefs, cat, name string) ([]tpField, error) {
	if tracefs == "" {
		return nil, fmt.Errorf("tracepoint %s:%s: tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)", cat, name)
	}
	path := filepath.Join(tracefs, "events", cat, name, "format")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tracepoint %s:%s (no %s): %w", cat, name, path, errNotFound)
		}
		return nil, fmt.Errorf("read tracepoint format: %w", err)
	}
	defer f.Close()
	fields, err := parseFormat(bufio.NewScanner(f))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return fields, nil
}

// parseFormat parses the field lines of a tracefs format file, skipping the
// common_ fields every record starts with.
func parseFormat(sc *bufio.Scanner) ([]tpField, error) {
	var fields []tpField
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		var f tpField
		for part := range strings.SplitSeq(line, ";") {
			key, val, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				continue
			}
			switch key {
			case "field":
				f.decl = strings.TrimSpace(val)
				name := f.decl
				if i := strings.IndexByte(name, '['); i >= 0 {
					name = name[:i]
				}
				f.name = name[strings.LastIndexAny(name, " *")+1:]
			case "offset", "size":
				n, err := strconv.Atoi(val)
				if err != nil {
					return nil, fmt.Errorf("bad %s in %q", key, line)
				}
				if key == "offset" {
					f.offset = n
				} else {
					f.size = n
				}
			}
		}
		if strings.HasPrefix(f.name, "common_") {
			continue
		}
		fields = append(fields, f)
	}
	return fields, sc.Err()
}

// chooseSkbField picks the sk_buff field of a classic tracepoint: the
// requested 1-based field, checked, or the one that holds an skb.
func chooseSkbField(hook string, fields []tpField, want int) (tpField, error) {
	var found []int
	for i, f := range fields {
		if f.isSkbField() {
			found = append(found, i+1)
		}
	}
	list := func() string {
		parts := make([]string, len(fields))
		for i, f := range fields {
			parts[i] = fmt.Sprintf("arg%d %s", i+1, f.decl)
		}
		return strings.Join(parts, ", ")
	}
	if want == 0 {
		if len(found) == 0 {
			return tpField{}, &HookPointError{Err: fmt.Errorf("%s records no sk_buff address (%s)", hook, list())}
		}
		return fields[found[0]-1], nil
	}
	if want > len(fields) {
		return tpField{}, fmt.Errorf("%s has %d fields (%s), not %d", hook, len(fields), list(), want)
	}
	if fields[want-1].isSkbField() {
		return fields[want-1], nil
	}
	if len(found) == 0 {
		return tpField{}, fmt.Errorf("field %d of %s is %q, not an sk_buff address, and none is (%s)", want, hook, fields[want-1].decl, list())
	}
	return tpField{}, fmt.Errorf("field %d of %s is %q, not an sk_buff address: the sk_buff is arg%d (%s)",
		want, hook, fields[want-1].decl, found[0], fields[found[0]-1].decl)
}

// listTracepoints calls fn for every classic tracepoint in tracefs.
func listTracepoints(tracefs string, fn func(cat, name string)) error {
	if tracefs == "" {
		return nil
	}
	cats, err := os.ReadDir(filepath.Join(tracefs, "events"))
	if err != nil {
		return fmt.Errorf("list tracepoints: %w", err)
	}
	for _, c := range cats {
		if !c.IsDir() {
			continue
		}
		evs, err := os.ReadDir(filepath.Join(tracefs, "events", c.Name()))
		if err != nil {
			continue
		}
		for _, e := range evs {
			if e.IsDir() {
				fn(c.Name(), e.Name())
			}
		}
	}
	return nil
}

// isLocationField reports whether the field holds the address of the code
// that freed the skb (kfree_skb's and consume_skb's location).
func (f tpField) isLocationField() bool {
	return f.name == "location" && f.size == 8
}
