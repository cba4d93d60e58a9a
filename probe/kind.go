package probe

import "fmt"

// Kind is the kind of a tracing hook: how the program attaches.
type Kind int

// The hook kinds. KindKretprobe parses but never resolves: a function's
// return value is not a packet.
const (
	KindKprobe Kind = iota + 1
	KindKretprobe
	KindFentry
	KindFexit
	KindTracepoint
	KindTPBTF
	KindRawTracepoint
)

var kindNames = map[Kind]string{
	KindKprobe:        "kprobe",
	KindKretprobe:     "kretprobe",
	KindFentry:        "fentry",
	KindFexit:         "fexit",
	KindTracepoint:    "tracepoint",
	KindTPBTF:         "tp_btf",
	KindRawTracepoint: "raw_tracepoint",
}

// kindAliases maps every accepted spelling of a kind to the kind.
var kindAliases = map[string]Kind{
	"kprobe":         KindKprobe,
	"kretprobe":      KindKretprobe,
	"fentry":         KindFentry,
	"fexit":          KindFexit,
	"tracepoint":     KindTracepoint,
	"tp":             KindTracepoint,
	"tp_btf":         KindTPBTF,
	"raw_tracepoint": KindRawTracepoint,
	"raw_tp":         KindRawTracepoint,
}

// String returns the kind's canonical spec prefix, e.g. "tp_btf".
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}
