package hook

import (
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/filter"
)

// userFilter runs the cBPF filter in userspace for hooks loaded
// unfiltered (libpcap semantics: `len` is the wire length).
type userFilter struct {
	m *filter.Matcher
}

func newUserFilter(prog []bpf.Instruction) (*userFilter, error) {
	m, err := filter.NewMatcher(prog)
	if err != nil {
		return nil, fmt.Errorf("build userspace filter: %w", err)
	}
	return &userFilter{m: m}, nil
}

// match reports whether the captured bytes data (of a packet wireLen long)
// pass the filter.
func (f *userFilter) match(data []byte, wireLen int) bool {
	return f.m.Match(data, wireLen)
}
