package probe

import (
	"errors"
	"slices"
	"strings"
)

// ErrNotFound is wrapped by errors about a kernel function or tracepoint
// that the kernel's BTF does not have; such errors are *NotFoundError.
var ErrNotFound = errors.New("not found in the kernel's BTF")

// NotFoundError says that the function or tracepoint a spec names is not
// in the kernel's BTF. It matches ErrNotFound.
type NotFoundError struct {
	// Spec is the spec as parsed.
	Spec Spec
	// Detail is the sentence explaining it.
	Detail string
}

// Error returns the sentence explaining what is missing.
func (e *NotFoundError) Error() string { return e.Detail }

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Similar returns up to n hook specs of spec's kind whose names are
// closest to spec's name (by edit distance, within about a third of the
// name), closest first: the candidates for "did you mean".
func (r *Resolver) Similar(spec Spec, n int) []string {
	points, err := r.List("")
	if err != nil {
		return nil
	}
	kind := spec.Kind
	if kind == KindKretprobe {
		kind = KindKprobe
	}
	name := spec.Name
	if spec.Category != "" {
		name = spec.Category + ":" + spec.Name
	}
	limit := max(2, len(name)/3)
	type cand struct {
		spec string
		d    int
	}
	var cands []cand
	for _, p := range points {
		if !slices.Contains(p.Kinds, kind.String()) {
			continue
		}
		if d := editDistance(name, p.Name, limit); d <= limit {
			cands = append(cands, cand{kind.String() + ":" + p.Name, d})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.spec, b.spec)
	})
	var out []string
	for _, c := range cands {
		if len(out) == n {
			break
		}
		if !slices.Contains(out, c.spec) {
			out = append(out, c.spec)
		}
	}
	return out
}

// SimilarKind returns the hook kind closest to kind (within two edits),
// or "".
func SimilarKind(kind string) string {
	best, bestD := "", 3
	for k := range kindAliases {
		if d := editDistance(kind, k, 2); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit+1 once
// it is sure to exceed limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// SimilarPatterns returns up to n globs close to p that match hook points,
// closest first: the same glob under another kind of function or BTF
// tracepoint ("tp_btf:tcp_*" -> "kprobe:tcp_*"), then p with the literal
// start of its names corrected by a few edits ("kprobe:tpc_*" ->
// "kprobe:tcp_*").
func (r *Resolver) SimilarPatterns(p Pattern, n int) []string {
	points, err := r.hookPoints()
	if err != nil || p.All {
		return nil
	}
	var out []string
	tried := map[string]bool{p.String(): true}
	try := func(q Pattern) {
		if len(out) == n || tried[q.String()] {
			return
		}
		tried[q.String()] = true
		for _, hp := range points {
			if kindListed(hp.Kinds, q.Spec.Kind) && q.match(hp.Name) {
				out = append(out, q.String())
				return
			}
		}
	}
	// The same name under another kind (a tracepoint glob's category has
	// no counterpart elsewhere).
	if p.Spec.Kind != KindTracepoint {
		for _, k := range []Kind{KindKprobe, KindFentry, KindTPBTF} {
			q := p
			q.Spec.Kind = k
			try(q)
		}
	}
	// The literal start of the names, corrected.
	glob := p.Spec.Name
	if p.Spec.Kind == KindTracepoint {
		glob = p.Spec.Category + ":" + p.Spec.Name
	}
	if lit := glob[:strings.IndexAny(glob+"*", globChars)]; lit != "" {
		rest := glob[len(lit):]
		limit := max(2, len(lit)/3)
		type cand struct {
			glob string
			d    int
		}
		var cands []cand
		for _, hp := range points {
			if !kindListed(hp.Kinds, p.Spec.Kind) {
				continue
			}
			// The name's start of the same length, one longer and one
			// shorter (an insertion or a deletion).
			for l := len(lit) - 1; l <= len(lit)+1; l++ {
				if l < 1 || l > len(hp.Name) {
					continue
				}
				if d := editDistance(lit, hp.Name[:l], limit); d <= limit {
					cands = append(cands, cand{hp.Name[:l] + rest, d})
				}
			}
		}
		slices.SortFunc(cands, func(a, b cand) int {
			if a.d != b.d {
				return a.d - b.d
			}
			return strings.Compare(a.glob, b.glob)
		})
		for _, c := range cands {
			q := p
			if p.Spec.Kind == KindTracepoint {
				q.Spec.Category, q.Spec.Name, _ = strings.Cut(c.glob, ":")
			} else {
				q.Spec.Name = c.glob
			}
			try(q)
		}
	}
	return out
}
