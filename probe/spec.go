package probe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadSpec is wrapped by every error that rejects the text of a hook spec
// (as opposed to a spec that names something the kernel lacks).
var ErrBadSpec = errors.New("malformed hook spec")

// specGrammar is what a user sees when a spec does not parse.
const specGrammar = "kprobe:FUNC[:argN], fentry:FUNC[:argN], fexit:FUNC[:argN], " +
	"tracepoint:CAT:NAME[:argN] (tp:), tp_btf:NAME[:argN], raw_tracepoint:NAME[:argN] (raw_tp:)"

// Spec is one parsed hook spec, e.g. "kprobe:kfree_skb:arg1". It says what
// the user asked for; [Resolver.Resolve] turns it into a [Target].
type Spec struct {
	// Kind is the hook kind as written (aliases folded).
	Kind Kind
	// Category is the tracepoint category of a KindTracepoint spec
	// ("net" in "tracepoint:net:net_dev_xmit"), empty otherwise.
	Category string
	// Name is the function or tracepoint name.
	Name string
	// Arg is the 1-based argument that holds the sk_buff, or 0 when the
	// spec leaves it to be found from BTF.
	Arg int
}

// String returns the spec in canonical form ("tracepoint:net:net_dev_xmit",
// "kprobe:kfree_skb:arg1").
func (s Spec) String() string {
	var b strings.Builder
	b.WriteString(s.Kind.String())
	b.WriteByte(':')
	if s.Category != "" {
		b.WriteString(s.Category)
		b.WriteByte(':')
	}
	b.WriteString(s.Name)
	if s.Arg > 0 {
		fmt.Fprintf(&b, ":arg%d", s.Arg)
	}
	return b.String()
}

// ParseSpec parses a hook spec. It checks the grammar only; whether the
// function or tracepoint exists is for [Resolver.Resolve]. Errors wrap
// [ErrBadSpec]. A kretprobe spec is rejected here: the return value of a
// function is not a packet.
func ParseSpec(text string) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("%w %q: %s (forms: %s)", ErrBadSpec, text, fmt.Sprintf(format, args...), specGrammar)
	}
	parts := strings.Split(text, ":")
	if len(parts) < 2 {
		return bad("want KIND:NAME")
	}
	kind, ok := kindAliases[parts[0]]
	if !ok {
		if k := SimilarKind(parts[0]); k != "" {
			return bad("unknown hook kind %q, did you mean %s?", parts[0], k)
		}
		return bad("unknown hook kind %q", parts[0])
	}
	s := Spec{Kind: kind}
	rest := parts[1:]
	if kind == KindTracepoint {
		if len(rest) < 2 {
			return bad("a tracepoint needs a category and a name, e.g. tracepoint:net:net_dev_xmit")
		}
		s.Category, rest = rest[0], rest[1:]
		if !validName(s.Category) {
			return bad("invalid tracepoint category %q", s.Category)
		}
	}
	s.Name, rest = rest[0], rest[1:]
	if !validName(s.Name) {
		return bad("invalid name %q", s.Name)
	}
	switch len(rest) {
	case 0:
	case 1:
		n, err := parseArg(rest[0])
		if err != nil {
			return bad("%v", err)
		}
		s.Arg = n
	default:
		return bad("too many fields")
	}
	if kind == KindKretprobe {
		return Spec{}, fmt.Errorf("%w %q: a kretprobe sees only the return value of %s, not its sk_buff argument: use kprobe:%s or fexit:%s",
			ErrBadSpec, text, s.Name, s.Name, s.Name)
	}
	return s, nil
}

// ParseSpecs parses several hook specs, failing on the first bad one.
func ParseSpecs(texts []string) ([]Spec, error) {
	specs := make([]Spec, 0, len(texts))
	for _, t := range texts {
		s, err := ParseSpec(t)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// LooksLikeSpec reports whether a command-line word is meant as a hook spec
// (it starts with a known kind and a colon), so that a command can split
// hook specs from the filter expression that follows them.
func LooksLikeSpec(word string) bool {
	kind, _, ok := strings.Cut(word, ":")
	if !ok {
		return false
	}
	_, known := kindAliases[kind]
	return known
}

func parseArg(field string) (int, error) {
	num, ok := strings.CutPrefix(field, "arg")
	if !ok {
		return 0, fmt.Errorf("%q is not an argument: want argN with N from 1", field)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > maxArgs {
		return 0, fmt.Errorf("%q is not an argument: want argN with N from 1 to %d", field, maxArgs)
	}
	return n, nil
}

// maxArgs is the highest argument a program can read: x86-64 and arm64
// kprobes see five register arguments portably; BTF programs see up to 12.
const maxArgs = 12

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}
