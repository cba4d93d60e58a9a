package probe

import (
	"fmt"
	"path"
	"strings"
)

// All is the hook word that asks for every hook point the running kernel
// lets bpfcap attach to: the kernel functions that take an sk_buff (with
// kprobes, or fentry where kprobes are missing) and the tracepoints that
// carry one.
const All = "all"

// globChars are the characters that make a hook name a glob.
const globChars = "*?["

// Pattern is one hook word of a trace command: a spec
// ("kprobe:kfree_skb"), a spec whose names are shell globs ("kprobe:tcp_*",
// "tracepoint:skb:*"), or [All]. [Resolver.Expand] turns patterns into
// targets.
type Pattern struct {
	// Spec is the spec as parsed; its Name (and a tracepoint's Category)
	// may be globs. Zero when All.
	Spec Spec
	// All is set for the word "all".
	All bool
}

// String returns the pattern in canonical form ("all", "kprobe:tcp_*").
func (p Pattern) String() string {
	if p.All {
		return All
	}
	return p.Spec.String()
}

// IsGlob reports whether the pattern can stand for more than one hook
// point: All, or a spec with a glob in its names.
func (p Pattern) IsGlob() bool {
	return p.All || strings.ContainsAny(p.Spec.Name, globChars) || strings.ContainsAny(p.Spec.Category, globChars)
}

// match reports whether the hook point called name ("cat:name" for a
// classic tracepoint) matches the pattern's names.
func (p Pattern) match(name string) bool {
	want := p.Spec.Name
	if p.Spec.Kind == KindTracepoint {
		want = p.Spec.Category + ":" + p.Spec.Name
	}
	ok, _ := path.Match(want, name)
	return ok
}

// ParsePattern parses one hook word: "all", or a hook spec whose
// category and name may be shell globs (*, ?, [...]). A glob takes no
// :argN (each hook point has its own sk_buff argument). Errors wrap
// [ErrBadSpec].
func ParsePattern(text string) (Pattern, error) {
	if text == All {
		return Pattern{All: true}, nil
	}
	if !strings.ContainsAny(text, globChars) {
		s, err := ParseSpec(text)
		return Pattern{Spec: s}, err
	}
	// Parse with every glob replaced by a valid name, then put the
	// globs back: the grammar is the same.
	kind, rest, _ := strings.Cut(text, ":")
	fields := strings.Split(rest, ":")
	plain := make([]string, len(fields))
	for i, f := range fields {
		if !strings.ContainsAny(f, globChars) {
			plain[i] = f
			continue
		}
		if _, err := path.Match(f, ""); err != nil {
			return Pattern{}, fmt.Errorf("%w %q: %q is not a valid glob: %v", ErrBadSpec, text, f, err)
		}
		if !validGlob(f) {
			return Pattern{}, fmt.Errorf("%w %q: invalid character in glob %q", ErrBadSpec, text, f)
		}
		plain[i] = "glob"
	}
	if _, known := kindAliases[kind]; !known {
		_, err := ParseSpec(text) // says which kind was meant
		return Pattern{}, err
	}
	s, err := ParseSpec(kind + ":" + strings.Join(plain, ":"))
	if err != nil {
		return Pattern{}, fmt.Errorf("%w %q: want KIND:GLOB or tracepoint:CATEGORY:GLOB, e.g. kprobe:'tcp_*', tracepoint:skb:'*'", ErrBadSpec, text)
	}
	if s.Arg != 0 {
		return Pattern{}, fmt.Errorf("%w %q: a glob takes no :arg%d: bpfcap finds each hook point's sk_buff argument", ErrBadSpec, text, s.Arg)
	}
	if s.Kind == KindTracepoint {
		s.Category, s.Name = fields[0], fields[1]
	} else {
		s.Name = fields[0]
	}
	return Pattern{Spec: s}, nil
}

// ParsePatterns parses several hook words, failing on the first bad one.
func ParsePatterns(texts []string) ([]Pattern, error) {
	out := make([]Pattern, 0, len(texts))
	for _, t := range texts {
		p, err := ParsePattern(t)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// LooksLikePattern reports whether a command-line word is meant as a hook
// word: "all" or a word [LooksLikeSpec] accepts.
func LooksLikePattern(word string) bool {
	return word == All || LooksLikeSpec(word)
}

// validGlob reports whether a glob holds only what a name may hold, the
// wildcards, and, in brackets, ranges and negation.
func validGlob(g string) bool {
	inClass := false
	for _, r := range g {
		switch {
		case r == '[':
			inClass = true
		case r == ']':
			inClass = false
		case r == '*' || r == '?':
		case inClass && (r == '-' || r == '^' || r == '!'):
		case !validName(string(r)):
			return false
		}
	}
	return true
}
