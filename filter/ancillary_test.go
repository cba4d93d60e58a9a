package filter

import (
	"errors"
	"testing"
)

// TestAncillaryError: libpcap's programs for `inbound`, `outbound` and
// `ifindex` load socket ancillary data; Translate and NewMatcher refuse
// them with an AncillaryError that names the field and is ErrUnsupported.
func TestAncillaryError(t *testing.T) {
	for expr, field := range map[string]string{"inbound": "pkttype", "outbound": "pkttype", "ifindex 3": "ifindex"} {
		prog, err := Compile(expr, LinkEthernet, 262144)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		_, terr := Translate(prog, Options{})
		_, merr := NewMatcher(prog)
		for _, err := range []error{terr, merr} {
			var ae *AncillaryError
			if !errors.As(err, &ae) || !errors.Is(err, ErrUnsupported) || ae.Field() != field {
				t.Errorf("%s: error %v, want an AncillaryError for %s that is ErrUnsupported", expr, err, field)
			}
		}
	}
	prog, err := Compile("udp", LinkEthernet, 262144)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Translate(prog, Options{}); err != nil {
		t.Fatalf("udp: %v", err)
	}
}
