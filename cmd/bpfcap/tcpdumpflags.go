package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// tcpdumpOptions are tcpdump's flags on a capture command: the ones that
// work, with tcpdump's meaning, and the flag set, to refuse the others
// with what to do instead.
type tcpdumpOptions struct {
	// NoNames is -n/-nn: bpfcap never resolves names, so it has no effect.
	NoNames int
	// LinkHeader is -e: print the link-level header on each line.
	LinkHeader bool
	// Lines is -l: one line per packet even when stdout is not a terminal.
	Lines bool
	// Number is -# (--number): print a packet number at the start of a line.
	Number bool
	// Time is -t's count: 0 time of day, 1 none, 2 seconds since the
	// epoch, 3 delta from the previous packet, 4 date and time of day, 5
	// delta from the first packet.
	Time int
	// Dump is -x, -X and -A (and -xx, -XX, -AA).
	Dump dumpOptions
	// Absolute is -S: absolute TCP sequence numbers.
	Absolute bool
	// NoChecksums is -K: do not verify checksums (with -v).
	NoChecksums bool
	// Direction is -Q in|out|inout (tc: the directions; xdp: in only).
	Direction string
	// directionUsed says the command took Direction into account.
	directionUsed bool

	fs *pflag.FlagSet
}

// tcpdumpFlag is one flag of tcpdump(1) that bpfcap does not implement
// under its own name: refused with the way to get the same result, or
// accepted as a no-op because bpfcap already behaves that way.
type tcpdumpFlag struct {
	short string // "" when tcpdump has only the long form
	long  string // tcpdump's long form, or a hidden name for bpfcap
	arg   string // the argument's name, "" for a boolean flag
	// refuse says what to do instead; "" accepts the flag as a no-op.
	refuse string
	// noop says why an accepted flag changes nothing.
	noop string
}

// pipeTo is the usual alternative for a display flag bpfcap lacks: the
// pcapng stream read by tcpdump itself.
func pipeTo(flag string) string {
	return "bpfcap writes pcapng that tcpdump reads: bpfcap COMMAND ... | tcpdump -nr - " + flag
}

// tcpdumpFlags lists every tcpdump 4.99 flag that a capture command does
// not already take (-c, -i, -s, -w, -B, -Z, -v, -h are bpfcap's own;
// -n, -e, -l, -#, -t, -Q are in tcpdumpOptions).
var tcpdumpFlags = []tcpdumpFlag{
	{short: "b", long: "tcpdump-b", refuse: "-b: BGP decoding is tcpdump's; " + pipeTo("-b")},
	{short: "C", long: "tcpdump-C", arg: "size", refuse: "-C: bpfcap writes one file; rotate with tcpdump: bpfcap COMMAND ... | tcpdump -r - -w FILE -C SIZE"},
	{short: "G", long: "tcpdump-G", arg: "seconds", refuse: "-G: bpfcap writes one file; rotate with tcpdump: bpfcap COMMAND ... | tcpdump -r - -w FILE -G SECONDS"},
	{short: "W", long: "tcpdump-W", arg: "count", refuse: "-W: bpfcap writes one file; rotate with tcpdump: bpfcap COMMAND ... | tcpdump -r - -w FILE -C SIZE -W COUNT"},
	{short: "z", long: "tcpdump-z", arg: "command", refuse: "-z: bpfcap writes one file; rotate with tcpdump: bpfcap COMMAND ... | tcpdump -r - -w FILE -C SIZE -z COMMAND"},
	{short: "d", long: "tcpdump-d", refuse: "-d: bpfcap filter -d EXPRESSION prints the cBPF (as tcpdump -d does) and the eBPF bpfcap runs"},
	{short: "D", long: "list-interfaces", refuse: "-D: bpfcap -D lists the devices; bpfcap list lists the kernel hook points"},
	{short: "E", long: "tcpdump-E", arg: "spi@ipaddr algo:secret", refuse: "-E: ESP decryption is tcpdump's; " + pipeTo("-E SECRET")},
	{short: "M", long: "tcpdump-M", arg: "secret", refuse: "-M: TCP-MD5 checking is tcpdump's; " + pipeTo("-M SECRET")},
	{short: "m", long: "tcpdump-m", arg: "module", refuse: "-m: SMI MIB modules are tcpdump's; " + pipeTo("-m MODULE")},
	{short: "T", long: "tcpdump-T", arg: "type", refuse: "-T: forced decoding is tcpdump's; " + pipeTo("-T TYPE")},
	{short: "u", long: "tcpdump-u", refuse: "-u: NFS handle decoding is tcpdump's; " + pipeTo("-u")},
	{short: "f", long: "tcpdump-f", refuse: "-f: bpfcap prints addresses numerically always; leave -f out"},
	{short: "H", long: "tcpdump-H", refuse: "-H: 802.11s decoding is tcpdump's; " + pipeTo("-H")},
	{short: "q", long: "tcpdump-q", refuse: "-q: quick output is tcpdump's; " + pipeTo("-q")},
	{short: "F", long: "tcpdump-F", arg: "file", refuse: "-F: give the expression as words: bpfcap COMMAND ... \"$(cat FILE)\""},
	{short: "I", long: "monitor-mode", refuse: "-I: bpfcap captures in the kernel, not from a device in monitor mode; set monitor mode with `iw dev DEV set monitor none` and capture at it with proto ieee802_11"},
	{short: "j", long: "time-stamp-type", arg: "type", refuse: "-j: bpfcap's time stamps are the kernel's monotonic clock, mapped to wall-clock time; there is no other type to pick"},
	{short: "J", long: "list-time-stamp-types", refuse: "-J: bpfcap's time stamps are the kernel's monotonic clock, mapped to wall-clock time; there is no other type to pick"},
	{short: "L", long: "list-data-link-types", refuse: "-L: trace picks where packets start with proto eth|ip|ip4|ip6|ieee802_11|auto; tc, xdp and prog packets are Ethernet"},
	{short: "y", long: "linktype", arg: "type", refuse: "-y: use bpfcap's proto keyword: -y EN10MB is proto eth, -y RAW is proto ip, -y IPV4 proto ip4, -y IPV6 proto ip6, -y IEEE802_11 proto ieee802_11"},
	{short: "O", long: "no-optimize", refuse: "-O: bpfcap always compiles with libpcap's optimizer; bpfcap filter -d EXPRESSION shows the program"},
	{short: "r", long: "tcpdump-r", arg: "file", refuse: "-r: bpfcap read FILE (or bpfcap -r FILE) prints a file's packets"},
	{short: "V", long: "tcpdump-V", arg: "file", refuse: "-V: read each file: while read f; do bpfcap read \"$f\"; done < FILE"},
	{long: "print", refuse: "--print: bpfcap writes the file or prints lines; for both: bpfcap COMMAND ... -w - | tee FILE | tcpdump -nr -"},
	{long: "time-stamp-precision", arg: "precision", refuse: "--time-stamp-precision: bpfcap writes nanosecond time stamps; tcpdump -r FILE --time-stamp-precision micro prints microseconds"},
	{long: "micro", refuse: "--micro: bpfcap writes nanosecond time stamps; tcpdump -r FILE --micro prints microseconds"},
	{long: "version", refuse: "--version: bpfcap --version"},
	{short: "U", long: "packet-buffered", noop: "bpfcap flushes its output after every batch it reads from the ring"},
	{long: "immediate-mode", noop: "bpfcap delivers packets as soon as it reads them from the ring"},
	{short: "p", long: "no-promiscuous-mode", noop: "bpfcap never puts a device into promiscuous mode"},
	{short: "N", long: "tcpdump-N", noop: "bpfcap prints no host names"},
	{long: "nano", noop: "bpfcap writes and prints nanosecond time stamps"},
}

// tcpdumpAliases maps tcpdump's long names to bpfcap's own.
var tcpdumpAliases = map[string]string{
	"snapshot-length": "snaplen",
}

// addTcpdumpFlags registers tcpdump's flags on a capture command's flag
// set: the ones bpfcap implements (tcpdumpOptions) and, hidden, every
// other one, so that validate refuses them with an alternative instead of
// pflag's bare "unknown shorthand flag".
func addTcpdumpFlags(fs *pflag.FlagSet, t *tcpdumpOptions) {
	t.fs = fs
	fs.CountVarP(&t.NoNames, "no-names", "n", "do not resolve names (bpfcap never does; -n and -nn are accepted)")
	fs.BoolVarP(&t.LinkHeader, "link-header", "e", false, "print the link-level header on each line")
	fs.BoolVarP(&t.Lines, "line-buffered", "l", false, "print one line per packet even when stdout is not a terminal (e.g. | grep)")
	fs.BoolVarP(&t.Number, "number", "#", false, "print a packet number at the beginning of each line")
	fs.CountVarP(&t.Time, "time", "t", "-t: no time stamp; -tt: seconds since 1970; -ttt: delta from the previous packet; -tttt: date and time; -ttttt: delta from the first packet")
	fs.CountVarP(&t.Dump.Hex, "hex", "x", "print each packet's data in hex after its line (-xx: with the link-level header)")
	fs.CountVarP(&t.Dump.HexASCII, "hex-ascii", "X", "print each packet's data in hex and ASCII after its line (-XX: with the link-level header)")
	fs.CountVarP(&t.Dump.ASCII, "ascii", "A", "print each packet's data in ASCII after its line (-AA: with the link-level header)")
	fs.BoolVarP(&t.Absolute, "absolute-tcp-sequence-numbers", "S", false, "print absolute TCP sequence numbers, not relative ones")
	fs.BoolVarP(&t.NoChecksums, "dont-verify-checksums", "K", false, "do not verify IP, TCP and UDP checksums (with -v)")
	fs.StringVarP(&t.Direction, "direction", "Q", "", "direction `in|out|inout` (tc: the directions to capture; xdp: in)")
	for _, f := range tcpdumpFlags {
		if fs.Lookup(f.long) != nil || (f.short != "" && fs.ShorthandLookup(f.short) != nil) {
			continue
		}
		usage := f.refuse
		if usage == "" {
			usage = "accepted for tcpdump's sake: " + f.noop
		}
		if f.arg != "" {
			fs.StringP(f.long, f.short, "", usage)
		} else {
			fs.BoolP(f.long, f.short, false, usage)
		}
		if f.refuse != "" || strings.HasPrefix(f.long, "tcpdump-") {
			fs.MarkHidden(f.long)
		}
	}
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := tcpdumpAliases[name]; ok {
			return pflag.NormalizedName(to)
		}
		return pflag.NormalizedName(name)
	})
}

// check refuses the tcpdump flags bpfcap does not implement, naming what
// to use instead, and checks the ones it does.
func (t *tcpdumpOptions) check() error {
	if t.fs == nil {
		return nil
	}
	for _, f := range tcpdumpFlags {
		if f.refuse != "" && t.fs.Changed(f.long) {
			// cobra names a command's flag set after the command.
			return fmt.Errorf("tcpdump's %s", strings.ReplaceAll(f.refuse, "bpfcap COMMAND", commandWords(t.fs.Name())))
		}
	}
	switch t.Direction {
	case "":
	case "in", "out", "inout":
		if !t.directionUsed {
			return fmt.Errorf("-Q %s: this command has no direction to pick: tc captures ingress, egress or both (bpfcap tc -i IF -Q in); trace picks it by hook (tp_btf:netif_receive_skb for received, tp_btf:net_dev_start_xmit for sent)", t.Direction)
		}
	default:
		return fmt.Errorf("-Q %s: want in, out or inout", t.Direction)
	}
	if t.Time > 5 {
		return fmt.Errorf("-%s: tcpdump's time formats go up to -ttttt", strings.Repeat("t", t.Time))
	}
	return nil
}

// checkTcpdump checks the tcpdump flags and applies `-i any`: every
// device, which is what a capture does without -i.
func (o *captureOptions) checkTcpdump() error {
	if o.Device == "any" {
		o.Device = ""
	}
	if err := trailingKeyword(o.Filter); err != nil {
		return err
	}
	return o.tcpdump.check()
}

// trailingKeyword refuses a bpftool-style keyword written after the
// filter expression (`'tcp port 1' proto ip`), which libpcap would only
// call a syntax error. `proto` counts only with a value libpcap's own
// `proto` does not take (eth, ip4, ...); `len` never (it is a filter word).
func trailingKeyword(filter string) error {
	words := strings.Fields(filter)
	for i := 1; i+1 < len(words); i++ {
		kw, val := words[i], words[i+1]
		bad := false
		switch kw {
		case "proto":
			bad = (val == "eth" || val == "ip4" || val == "ip6" || val == "ieee802_11" || val == "auto") ||
				(val == "ip" && i+2 == len(words) && words[i-1] != "ip" && words[i-1] != "ip6")
		case "dev", "pages", "data_out":
			bad = true
		}
		if bad {
			return fmt.Errorf("%s %s after the filter: keywords come before it: ... %s %s '%s'", kw, val, kw, val, strings.Join(words[:i], " "))
		}
	}
	return nil
}

// nearWord returns the word of words within two edits of w, if any.
func nearWord(w string, words ...string) string {
	for _, c := range words {
		if w != c && levenshtein(w, c) <= 2 {
			return c
		}
	}
	return ""
}

// levenshtein is the edit distance of two short words.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// linePrinter returns the one-line-per-packet sink with the display flags.
func (o *captureOptions) linePrinter(w io.Writer) *summaryPrinter {
	s := newSummaryPrinter(w, time.Local)
	s.opts = o.tcpdump.lineOptions()
	s.opts.Verbose = o.Verbose
	return s
}

// commandWords is how a refusal names the command the user ran.
func commandWords(fsName string) string {
	if fsName == "" || fsName == "bpfcap" {
		return "bpfcap trace|tc|xdp|prog"
	}
	return "bpfcap " + fsName
}

// lineOptions returns the display flags of the line printer.
func (t *tcpdumpOptions) lineOptions() lineOptions {
	return lineOptions{LinkHeader: t.LinkHeader, Number: t.Number, Time: t.Time, Dump: t.Dump, Absolute: t.Absolute, NoChecksums: t.NoChecksums}
}
