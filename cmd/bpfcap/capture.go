package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/pcapng"
)

// captureOptions are the flags and bpftool-style keywords every capture
// command (trace, xdp, tc, dpdk) shares. Parsing them has no side effects.
type captureOptions struct {
	// busyPolls says the source polls in a loop of its own (DPDK): it
	// keeps every processor while it captures (cliEnv.captureProcs).
	busyPolls bool
	// WriteFile is -w FILE or `data_out FILE` ("-" is stdout).
	WriteFile string
	// Count is -c: stop after this many packets (0: no limit).
	Count uint64
	// Snaplen is -s or `len N`: bytes per packet (0: the default, 65536).
	Snaplen int
	// Device is -i or `dev IFNAME`: capture only on this device.
	Device string
	// Duration is --duration: stop after this long (0: no limit).
	Duration time.Duration
	// Verbose is -v: statistics every few seconds on stderr.
	Verbose bool
	// User is -Z: drop to this user after attaching.
	User string
	// BufferSize is --buffer-size in KiB (tcpdump -B); Pages is `pages N`
	// (pages per CPU, as bpftool counts). 0: the default (8 MiB).
	BufferSize int
	Pages      int
	// Perf is --perf: use the perf buffer instead of the BPF ring buffer.
	Perf bool
	// Proto is `proto P` ("" = the command's default).
	Proto string
	// Filter is the tcpdump expression: every other word, joined.
	Filter string
	// tcpdump holds tcpdump's flags (tcpdumpflags.go).
	tcpdump tcpdumpOptions
	// Journey is --journey (trace): print each packet's journey, even
	// when stdout is not a terminal.
	Journey bool
	// Patterns are the hook words of `bpfcap trace` that stand for many
	// hook points (globs, all). With any, the capture is in pattern mode:
	// the journey view on a terminal, a short default snap length,
	// interfaces added as their hooks first capture, and the hook lists
	// on stderr summarised (-v lists every hook).
	Patterns []string
}

// defaultSnaplen is bpfcap's snap length when -s/len is not given.
const defaultSnaplen = 65536

// patternSnaplen is the snap length of pattern mode (hook globs, all)
// when -s/len is not given. A packet is copied at every hook it passes,
// tens of hooks per packet with all: 256 bytes hold the headers a journey
// is read by (Ethernet, VLAN tags, IPv6 with extension headers or IPv4
// with options, TCP with options, and those of one encapsulation such as
// VXLAN or GRE) while keeping the copy at each hook, the ring's use and
// the file small.
const patternSnaplen = 256

// maxBufferKiB bounds -B: a BPF ring buffer's size is a 32-bit count of
// bytes, and more than 1 GiB of locked kernel memory is never what a
// capture needs.
const maxBufferKiB = 1 << 20

// outputFlag is -w: given once, with a name ("-" for stdout).
type outputFlag struct {
	path *string
	set  bool
}

func (f *outputFlag) String() string {
	if f.path == nil {
		return ""
	}
	return *f.path
}

func (f *outputFlag) Set(v string) error {
	switch {
	case f.set:
		return fmt.Errorf("given twice (%q and %q): give one output file", *f.path, v)
	case v == "":
		return errors.New(`empty file name: give one ("-" for stdout)`)
	}
	*f.path, f.set = v, true
	return nil
}

func (f *outputFlag) Type() string { return "file" }

// addCaptureFlags registers the shared capture flags on fs.
func addCaptureFlags(fs *pflag.FlagSet, o *captureOptions) {
	fs.VarP(&outputFlag{path: &o.WriteFile}, "write", "w", "write packets to this pcapng `file` (\"-\": stdout)")
	fs.Uint64VarP(&o.Count, "count", "c", 0, "stop after this many packets")
	fs.IntVarP(&o.Snaplen, "snaplen", "s", 0, "capture at most this many `bytes` per packet (default 65536; trace with hook globs or all: 256)")
	fs.StringVarP(&o.Device, "interface", "i", "", "capture only packets on this `device`")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (e.g. 10s)")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "more detail in lines, as tcpdump -v (IP header, checksums); statistics every few seconds on stderr")
	fs.StringVarP(&o.User, "relinquish-privileges", "Z", "", "drop privileges to this `user` after attaching")
	fs.IntVarP(&o.BufferSize, "buffer-size", "B", 0, "ring buffer size in `KiB` (default 8192)")
	fs.BoolVar(&o.Perf, "perf", false, "use a perf buffer instead of the BPF ring buffer")
	addTcpdumpFlags(fs, &o.tcpdump)
}

// captureKeywords are the bpftool-style keywords parseKeywords takes.
var captureKeywords = []string{"proto", "len", "dev", "pages", "data_out"}

// parseKeywords takes the bpftool-style keywords (`proto P`, `len N`,
// `dev IFNAME`, `pages N`, `data_out FILE`) from the front of args and
// joins the remaining words into the filter expression. Keywords are only
// recognised before the first filter word, so filters such as
// `len > 100` or `ip proto 6` are left alone; `len` counts as a keyword
// only when a number follows.
func (o *captureOptions) parseKeywords(args []string) error {
	i := 0
	for ; i < len(args); i++ {
		kw := args[i]
		isKeyword := false
		for _, k := range captureKeywords {
			if kw == k {
				isKeyword = true
			}
		}
		if !isKeyword {
			break
		}
		if kw == "len" && (i+1 >= len(args) || !isNumber(args[i+1])) {
			break // the filter's own `len` primitive
		}
		if i+1 >= len(args) {
			return fmt.Errorf("keyword %q needs a value (e.g. %s)", kw, keywordExample(kw))
		}
		val := args[i+1]
		i++
		switch kw {
		case "proto":
			o.Proto = val
		case "len":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return fmt.Errorf("len %q: want a positive number of bytes (e.g. len 128)", val)
			}
			o.Snaplen = n
		case "dev":
			o.Device = val
		case "pages":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return fmt.Errorf("pages %q: want a positive number of pages per CPU (e.g. pages 64)", val)
			}
			o.Pages = n
		case "data_out":
			if o.WriteFile != "" {
				return fmt.Errorf("data_out %q and -w %q: give one output file", val, o.WriteFile)
			}
			if val == "" {
				return errors.New(`data_out "": give a file name ("-" for stdout)`)
			}
			o.WriteFile = val
		}
	}
	o.Filter = strings.Join(args[i:], " ")
	return o.validate()
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func keywordExample(kw string) string {
	switch kw {
	case "proto":
		return "proto eth"
	case "len":
		return "len 128"
	case "dev":
		return "dev eth0"
	case "pages":
		return "pages 64"
	}
	return "data_out /tmp/x.pcapng"
}

// validate checks the flag values.
func (o *captureOptions) validate() error {
	if err := o.checkTcpdump(); err != nil {
		return err
	}
	if o.Snaplen < 0 {
		return fmt.Errorf("snaplen %d: want a positive number of bytes (e.g. -s 128)", o.Snaplen)
	}
	if o.Snaplen > hook.MaxData {
		return fmt.Errorf("snaplen %d: bpfcap captures at most %d bytes per packet: use -s %d or less", o.Snaplen, hook.MaxData, hook.MaxData)
	}
	if o.BufferSize < 0 || o.Pages < 0 {
		return errors.New("buffer size: want a positive size")
	}
	if o.BufferSize > maxBufferKiB {
		return fmt.Errorf("-B %d KiB: the ring buffer holds at most %d KiB (1 GiB); try -B 65536", o.BufferSize, maxBufferKiB)
	}
	if o.Pages > 0 && uint64(o.Pages)*uint64(os.Getpagesize())*uint64(runtime.NumCPU()) > maxBufferKiB<<10 {
		return fmt.Errorf("pages %d: %d pages per CPU on %d CPUs is more than the 1 GiB a ring buffer holds; try pages 1024", o.Pages, o.Pages, runtime.NumCPU())
	}
	if o.Journey && o.WriteFile != "" {
		return fmt.Errorf("--journey prints to stdout and -w %s writes a file: give one (bpfcap journey %s shows the journeys of the file)", o.WriteFile, o.WriteFile)
	}
	if o.Journey && o.tcpdump.Lines {
		return errors.New("--journey and -l: give one (--journey: a block per packet; -l: a line per packet seen at a hook)")
	}
	if o.Duration < 0 {
		return fmt.Errorf("duration %v: want a positive duration (e.g. --duration 10s)", o.Duration)
	}
	// Checked before anything is attached; reading only.
	if o.User != "" {
		if _, err := user.Lookup(o.User); err != nil {
			return fmt.Errorf("-Z %s: no such user: give an existing one (e.g. -Z nobody): %w", o.User, err)
		}
	}
	if o.WriteFile != "" && o.WriteFile != "-" {
		dir := filepath.Dir(o.WriteFile)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("-w %s: directory %s does not exist: create it or write elsewhere", o.WriteFile, dir)
		}
	}
	return nil
}

// snaplen returns the snap length to use.
func (o *captureOptions) snaplen() int {
	switch {
	case o.Snaplen != 0:
		return o.Snaplen
	case len(o.Patterns) > 0:
		return patternSnaplen
	}
	return defaultSnaplen
}

// ringOptions returns the transport options for the hook loader; notices
// (such as the userspace filter fallback) go to stderr, with bpfcap's
// prefix.
func (o *captureOptions) ringOptions(stderr io.Writer) hook.RingOptions {
	ro := hook.RingOptions{Perf: o.Perf, Notices: newNoticeWriter(stderr)}
	switch {
	case o.BufferSize > 0:
		ro.Size = o.BufferSize << 10
	case o.Pages > 0:
		ro.Size = o.Pages * os.Getpagesize() * runtime.NumCPU()
	}
	return ro
}

// sourceOpener opens (loads and attaches) a capture source. It is called
// after the options were parsed and before any output file is created, so
// a bad hook or filter never clobbers an existing file.
type sourceOpener func(ctx context.Context) (bpfcap.Source, error)

// runCapture runs one capture command: it opens the source, drops
// privileges (-Z), picks the output (file, pcapng on a non-terminal
// stdout, one summary line per packet on a terminal), runs the session
// until a signal (ctx), -c, --duration or a closed pipe, and prints
// per-hook statistics on stderr. The output file is created only once the
// source is attached; once created it is always a complete pcapng file.
func runCapture(ctx context.Context, env *cliEnv, o *captureOptions, open sourceOpener) error {
	if err := o.validate(); err != nil {
		return err
	}
	src, err := open(ctx)
	if err != nil {
		// Ended by a signal (the filter compiler was killed): say so.
		if cause := context.Cause(ctx); ctx.Err() != nil && errors.Is(err, cause) {
			return fmt.Errorf("%w before the capture started: nothing attached", cause)
		}
		return withHint(err)
	}
	// detach is the one way out for the source: every return below goes
	// through it (Close is idempotent), on the thread that kept the
	// privilege to detach when -Z dropped it.
	detach := src.Close
	var keeper *capKeeper
	defer func() {
		detach()
		if keeper != nil {
			keeper.stop()
		}
	}()

	if o.User != "" {
		if keeper, err = startCapKeeper(); err != nil {
			return err
		}
		if err := dropPrivileges(o.User); err != nil {
			return err
		}
		if err := keeper.narrow(); err != nil {
			return err
		}
		if d, ok := src.(detachRunner); ok {
			// Run detaches by itself when it ends, Close when Run never
			// ran: both go through the privileged thread.
			d.DetachOn(keeper.do)
		} else {
			detach = func() error { return keeper.do(src.Close) }
		}
	}
	if env.captureProcs > 0 && !o.busyPolls {
		runtime.GOMAXPROCS(env.captureProcs)
	}
	// A signal that came while attaching ends the session at once, the
	// same way as one that comes later: a complete file, statistics,
	// everything detached.

	var (
		sink    bpfcap.Sink
		file    *os.File
		journey *journeyPrinter
	)
	switch {
	case o.WriteFile != "" && o.WriteFile != "-":
		file, err = os.OpenFile(o.WriteFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("open output file (choose a path you may write, or -w - for stdout): %w", err)
		}
		defer file.Close()
		w, err := pcapng.NewWriter(file, pcapng.WriterOptions{Application: "bpfcap"})
		if err != nil {
			return fmt.Errorf("write %s: %w", o.WriteFile, err)
		}
		sink = w
	case o.WriteFile == "-" || (!isTerminal(env.stdout) && !o.tcpdump.Lines && !o.Journey):
		w, err := pcapng.NewWriter(env.stdout, pcapng.WriterOptions{Application: "bpfcap"})
		if err != nil {
			if isClosedPipe(err) {
				return nil
			}
			return fmt.Errorf("write pcapng to stdout: %w", err)
		}
		sink = w
	case o.Journey || (len(o.Patterns) > 0 && !o.tcpdump.Lines):
		journey = newJourneyPrinter(env.stdout, journeyIdle)
		sink = journey
	default:
		sink = o.linePrinter(env.stdout)
	}

	printListening(env.stderr, src.Interfaces(), o.Patterns)

	sopts := bpfcap.Options{Count: o.Count, Duration: o.Duration, InterfacesOnFirstPacket: len(o.Patterns) > 0}
	everyHook := o.Verbose || len(o.Patterns) == 0
	live := file != nil && isTerminal(env.stderr)
	switch {
	case o.Verbose:
		sopts.ProgressInterval = 5 * time.Second
		sopts.Progress = func(p bpfcap.Progress) { printStats(env.stderr, p.Interfaces, p.Stats, true) }
	case live:
		sopts.ProgressInterval = 500 * time.Millisecond
		sopts.Progress = func(p bpfcap.Progress) { printCounter(env.stderr, p) }
	}
	res, err := bpfcap.Run(ctx, sink, []bpfcap.Source{src}, sopts)
	if journey != nil {
		if jerr := journey.Close(); jerr != nil && err == nil && !isClosedPipe(jerr) {
			err = fmt.Errorf("write journeys to stdout: %w", jerr)
		}
	}
	if live && !o.Verbose {
		fmt.Fprintln(env.stderr)
	}
	closeErr := detach()
	// Every hook of the source, whether the output got its interface or
	// not (pattern mode adds them as they first capture).
	ifaces, stats := src.Interfaces(), src.Stats()
	printStats(env.stderr, ifaces, stats, everyHook)
	if everyHook {
		printHeaderMisses(env.stderr, ifaces, stats)
	} else {
		printHeaderMissTotal(env.stderr, ifaces, stats)
	}
	if res.Reason == bpfcap.StopOutput {
		// Every packet the hooks captured and the file does not hold:
		// lost in the failed write, or still in the ring behind it.
		var captured uint64
		for _, st := range src.Stats() {
			captured += st.Captured
		}
		fmt.Fprintf(env.stderr, "bpfcap: %d packets written (%s), %d captured but not written\n", res.Written, stopText(res.Reason), max(captured, res.Written)-res.Written)
	} else {
		fmt.Fprintf(env.stderr, "bpfcap: %d packets written (%s)\n", res.Written, stopText(res.Reason))
	}
	if file != nil {
		if cerr := file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", o.WriteFile, cerr)
		}
	}
	if err != nil {
		return err
	}
	if closeErr != nil {
		return fmt.Errorf("detach: %w", closeErr)
	}
	return nil
}

// detachRunner is a source whose detach can be moved to another thread
// (hook sources: the privileged thread -Z keeps).
type detachRunner interface {
	DetachOn(run func(func() error) error)
}

// stopText says why a capture ended, in the user's terms.
func stopText(r bpfcap.StopReason) string {
	switch r {
	case bpfcap.StopCancelled:
		return "interrupted"
	case bpfcap.StopCount:
		return "-c count reached"
	case bpfcap.StopDuration:
		return "--duration elapsed"
	case bpfcap.StopSinkClose:
		return "output pipe closed"
	case bpfcap.StopSource:
		return "source ended"
	case bpfcap.StopOutput:
		return "the output failed"
	case bpfcap.StopGone:
		return "the capture target went away"
	}
	return "failed"
}

// printListening tells the user (and scripts waiting for readiness) that
// the capture runs, as tcpdump's "listening on" line does: one line on
// stderr naming every capture point, once the hooks are attached and the
// output is open. With hook patterns it counts the hooks and names the
// patterns instead ("capturing at 30 hooks (tp_btf:*, all)").
func printListening(w io.Writer, ifaces []pcapng.Interface, patterns []string) {
	names := hookNames(ifaces)
	snap := uint32(0)
	if len(ifaces) > 0 {
		snap = ifaces[0].SnapLen
	}
	at := strings.Join(names, ", ")
	if len(patterns) > 0 {
		at = fmt.Sprintf("%s (%s)", hooksText(len(names)), strings.Join(patterns, ", "))
	}
	if lt := linkTypesText(ifaces); lt != "" {
		at += ", " + lt
	}
	fmt.Fprintf(w, "bpfcap: capturing at %s, snapshot length %d bytes\n", at, snap)
}

// hookNames returns the names of ifaces, each once, in order.
func hookNames(ifaces []pcapng.Interface) []string {
	seen := map[string]bool{}
	var names []string
	for _, ifc := range ifaces {
		if !seen[ifc.Name] {
			seen[ifc.Name] = true
			names = append(names, ifc.Name)
		}
	}
	return names
}

// printStats writes the counters of the capture points (interfaces of
// the same hook with different link types are added up): with everyHook
// one line per hook, else (hook patterns, hundreds of hooks) a line per
// hook that matched or lost packets, and a line of totals.
func printStats(w io.Writer, ifaces []pcapng.Interface, stats []pcapng.InterfaceStats, everyHook bool) {
	var names []string
	sum := map[string]*pcapng.InterfaceStats{}
	for i, ifc := range ifaces {
		if i >= len(stats) {
			break
		}
		t := sum[ifc.Name]
		if t == nil {
			t = &pcapng.InterfaceStats{}
			sum[ifc.Name] = t
			names = append(names, ifc.Name)
		}
		addStats(t, stats[i])
		// A hook's interfaces of other link types carry no seen count.
		t.SeenCounted = t.SeenCounted || stats[i].SeenCounted
	}
	// The total's seen count stands only when every hook counts what it
	// sees (programs that serve many functions do not).
	total := pcapng.InterfaceStats{SeenCounted: len(names) > 0}
	quiet := 0
	for _, name := range names {
		st := sum[name]
		addStats(&total, *st)
		total.SeenCounted = total.SeenCounted && st.SeenCounted
		if !everyHook && st.Matched == 0 && st.Lost == 0 {
			quiet++
			continue
		}
		fmt.Fprintln(w, name+":"+statsText(st))
	}
	if everyHook {
		return
	}
	line := hooksText(len(names)) + ":" + statsText(&total)
	if quiet > 0 {
		line += fmt.Sprintf(" (%s matched nothing; -v lists every hook)", hooksText(quiet))
	}
	fmt.Fprintln(w, line)
}

// hooksText counts hooks in words ("1 hook", "30 hooks").
func hooksText(n int) string {
	if n == 1 {
		return "1 hook"
	}
	return fmt.Sprintf("%d hooks", n)
}

// addStats adds st's counters to t (the caller decides whether t's seen
// count stands: see printStats).
func addStats(t *pcapng.InterfaceStats, st pcapng.InterfaceStats) {
	t.Seen += st.Seen
	t.Matched += st.Matched
	t.Captured += st.Captured
	t.Lost += st.Lost
	t.Skipped += st.Skipped
	t.Shed += st.Shed
	t.NoHeader += st.NoHeader
	t.UserFiltered += st.UserFiltered
}

// statsText formats counters as the lines of printStats end
// (" matched 3, captured 3, lost 0").
func statsText(st *pcapng.InterfaceStats) string {
	line := ""
	if st.SeenCounted {
		line += fmt.Sprintf(" seen %d,", st.Seen)
	}
	line += fmt.Sprintf(" matched %d, captured %d, lost %d", st.Matched, st.Captured, st.Lost)
	if st.Skipped > 0 {
		line += fmt.Sprintf(", skipped %d", st.Skipped)
	}
	if st.Shed > 0 {
		line += fmt.Sprintf(", shed %d (--max-rate)", st.Shed)
	}
	if st.UserFiltered > 0 {
		line += fmt.Sprintf(", filtered in userspace %d", st.UserFiltered)
	}
	return line
}

// printHeaderMissTotal says, in one line for every hook, how many packets
// had none of the header the capture starts at (printHeaderMisses, per
// hook, is for -v and captures at a few hooks).
func printHeaderMissTotal(w io.Writer, ifaces []pcapng.Interface, stats []pcapng.InterfaceStats) {
	var (
		missed uint64
		hooks  int
		lt     pcapng.LinkType
	)
	for i, ifc := range ifaces {
		if i >= len(stats) || stats[i].NoHeader == 0 {
			continue
		}
		missed += stats[i].NoHeader
		hooks++
		lt = ifc.LinkType
	}
	if missed == 0 {
		return
	}
	hdr, other := headerName(lt)
	fmt.Fprintf(w, "bpfcap: %d packets at %s had no %s and were not captured: %s shows them (-v: per hook)\n", missed, hooksText(hooks), hdr, other)
}

// printCounter rewrites a one-line live counter (as dumpcap shows).
func printCounter(w io.Writer, p bpfcap.Progress) {
	var lost uint64
	for _, st := range p.Stats {
		lost += st.Lost
	}
	fmt.Fprintf(w, "\rcaptured %d, lost %d", p.Written, lost)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func isClosedPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// dropPrivileges switches every thread of the process to name's uid, gid
// and supplementary groups (Go's syscall.Setuid and friends apply to all
// threads on Linux), as tcpdump -Z does after opening its capture.
func dropPrivileges(name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("-Z %s: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("-Z %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return fmt.Errorf("-Z %s: gid %q: %w", name, u.Gid, err)
	}
	groups := []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil && n != gid {
				groups = append(groups, n)
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("-Z %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("-Z %s: setgid %d: %w", name, gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("-Z %s: setuid %d: %w", name, uid, err)
	}
	return nil
}
