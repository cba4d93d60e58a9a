package probe

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

func TestParseSpecForms(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, tc := range []struct {
		in   string
		want Spec
	}{
		{"kprobe:kfree_skb:arg1", Spec{Kind: KindKprobe, Name: "kfree_skb", Arg: 1}},
		{"kprobe:ip_rcv", Spec{Kind: KindKprobe, Name: "ip_rcv"}},
		{"fentry:ip_rcv:arg1", Spec{Kind: KindFentry, Name: "ip_rcv", Arg: 1}},
		{"fexit:__dev_queue_xmit", Spec{Kind: KindFexit, Name: "__dev_queue_xmit"}},
		{"tracepoint:net:net_dev_xmit", Spec{Kind: KindTracepoint, Category: "net", Name: "net_dev_xmit"}},
		{"tp:skb:kfree_skb:arg1", Spec{Kind: KindTracepoint, Category: "skb", Name: "kfree_skb", Arg: 1}},
		{"tp_btf:kfree_skb", Spec{Kind: KindTPBTF, Name: "kfree_skb"}},
		{"raw_tracepoint:net_dev_xmit:arg1", Spec{Kind: KindRawTracepoint, Name: "net_dev_xmit", Arg: 1}},
		{"raw_tp:net_dev_xmit", Spec{Kind: KindRawTracepoint, Name: "net_dev_xmit"}},
	} {
		got, err := ParseSpec(tc.in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseSpec(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseSpecCanonicalString(t *testing.T) {
	testutils.RunsInGuests(t)
	for in, want := range map[string]string{
		"tp:net:net_dev_xmit":   "tracepoint:net:net_dev_xmit",
		"raw_tp:kfree_skb:arg1": "raw_tracepoint:kfree_skb:arg1",
		"kprobe:kfree_skb:arg1": "kprobe:kfree_skb:arg1",
	} {
		s, err := ParseSpec(in)
		if err != nil {
			t.Fatal(err)
		}
		if s.String() != want {
			t.Errorf("%q -> %q, want %q", in, s.String(), want)
		}
	}
}

func TestParseSpecRejects(t *testing.T) {
	testutils.RunsInGuests(t)
	for in, wantMsg := range map[string]string{
		"kfree_skb":                   "want KIND:NAME",
		"kprobes:kfree_skb":           `unknown hook kind "kprobes"`,
		"kprobe:":                     "invalid name",
		"kprobe:kfree_skb:1":          "is not an argument",
		"kprobe:kfree_skb:arg0":       "N from 1",
		"kprobe:kfree_skb:arg13":      "N from 1 to 12",
		"kprobe:kfree_skb:arg1:x":     "too many fields",
		"tracepoint:net_dev_xmit":     "needs a category and a name",
		"tp:net:net dev":              "invalid name",
		"kretprobe:kfree_skb":         "use kprobe:kfree_skb or fexit:kfree_skb",
		"fentry:ip_rcv;rm":            "invalid name",
		"tp_btf:kfree_skb:arg1:arg2":  "too many fields",
		"raw_tp:kfree_skb:argument1":  "is not an argument",
		"tracepoint:net:xmit:arg1:ar": "too many fields",
	} {
		_, err := ParseSpec(in)
		if err == nil {
			t.Errorf("ParseSpec(%q) accepted a bad spec", in)
			continue
		}
		if !errors.Is(err, ErrBadSpec) {
			t.Errorf("ParseSpec(%q) error does not wrap ErrBadSpec: %v", in, err)
		}
		if !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("ParseSpec(%q) = %q, want it to say %q", in, err, wantMsg)
		}
	}
}

func TestLooksLikeSpec(t *testing.T) {
	testutils.RunsInGuests(t)
	for word, want := range map[string]bool{
		"kprobe:kfree_skb": true, "tp:net:x": true, "raw_tp:x": true,
		"tcp": false, "port": false, "ether[0:1]": false, "proto": false,
	} {
		if got := LooksLikeSpec(word); got != want {
			t.Errorf("LooksLikeSpec(%q) = %v, want %v", word, got, want)
		}
	}
}

const kfreeSkbFormat = `name: kfree_skb
ID: 2310
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:void * skbaddr;	offset:8;	size:8;	signed:0;
	field:void * location;	offset:16;	size:8;	signed:0;
	field:void * rx_sk;	offset:24;	size:8;	signed:0;
	field:unsigned short protocol;	offset:32;	size:2;	signed:0;
	field:enum skb_drop_reason reason;	offset:36;	size:4;	signed:0;

print fmt: "skbaddr=%p", REC->skbaddr
`

func TestParseFormatFindsSkbAndReason(t *testing.T) {
	testutils.RunsInGuests(t)
	fields, err := parseFormat(bufio.NewScanner(strings.NewReader(kfreeSkbFormat)))
	if err != nil {
		t.Fatal(err)
	}
	if len(fields) != 5 {
		t.Fatalf("got %d fields, want 5 (common_ ones skipped): %+v", len(fields), fields)
	}
	f, err := chooseSkbField("tracepoint:skb:kfree_skb", fields, 0)
	if err != nil || f.offset != 8 || f.name != "skbaddr" {
		t.Fatalf("skb field = %+v, %v; want skbaddr at 8", f, err)
	}
	if !fields[4].isReasonField() || fields[4].offset != 36 {
		t.Errorf("reason field = %+v, want enum skb_drop_reason at 36", fields[4])
	}
	_, err = chooseSkbField("tracepoint:skb:kfree_skb", fields, 2)
	if err == nil || !strings.Contains(err.Error(), "the sk_buff is arg1") {
		t.Errorf("arg2 (location) accepted or not explained: %v", err)
	}
	if _, err := chooseSkbField("tracepoint:skb:kfree_skb", fields, 9); err == nil || !strings.Contains(err.Error(), "has 5 fields") {
		t.Errorf("arg9 accepted or not explained: %v", err)
	}
}
