package ratebench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	xdpbench "github.com/bpfcap/bpfcap/bench/xdp"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

const (
	floodCPU   = 0
	captureCPU = 1
	// udpPort is the flood's destination port (discard); the filter both
	// tools use is "udp port 9".
	udpPort = 9
	filter  = "udp port 9"
	// burst is how many frames the generator sends between two looks at
	// the clock: 4096 frames of 1000 B payload are 4.6 MB of records, well
	// within bpfcap's default 8 MiB ring and the 8 MiB tcpdump gets.
	burst = 4096
	// slack is how many more packets than captured may have crossed the
	// device for a step to count as loss-free (IPv6 neighbour discovery
	// and the like cross it too).
	slack = 16
)

// rates is the ladder of offered rates, in packets per second.
var rates = []float64{50e3, 100e3, 150e3, 200e3, 300e3, 400e3, 500e3, 650e3, 800e3, 1e6, 1.25e6, 1.6e6, 2e6}

// stepTime is how long each step floods (BPFCAP_RATE_STEP, default 1s).
func stepTime(tb testing.TB) time.Duration {
	if s := os.Getenv("BPFCAP_RATE_STEP"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			tb.Fatalf("BPFCAP_RATE_STEP: %v", err)
		}
		return d
	}
	return time.Second
}

// udpFrame is an Ethernet/IPv4/UDP frame with payload bytes of payload,
// to port udpPort of a MAC address no interface has, so every stack on
// the way drops it early (PACKET_OTHERHOST). Checksums are left zero:
// nothing verifies them before the drop.
func udpFrame(payload int) []byte {
	f := make([]byte, 14+20+8+payload)
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 0xee})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	f[12], f[13] = 0x08, 0x00
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, unix.IPPROTO_UDP
	total := 20 + 8 + payload
	ip[2], ip[3] = byte(total>>8), byte(total)
	copy(ip[12:16], []byte{10, 250, 0, 1})
	copy(ip[16:20], []byte{10, 250, 0, 2})
	udp := ip[20:]
	udp[0], udp[1] = 0x9c, 0x40
	udp[2], udp[3] = 0, udpPort
	udp[4], udp[5] = byte((8+payload)>>8), byte(8+payload)
	return f
}

// testBed is the flood's path. The generator (xdpbench.Flooder: the XDP
// broadcast loop on this kernel) sends XDP frames out of the host end of a
// veth pair; the peer end ("in") receives them in XDP, where an XDP
// capture is measured. For tc egress and net_dev_xmit, a tc ingress
// program on "in" redirects every packet to the egress of "out", one end
// of a second veth pair in the peer namespace, whose other end drops it:
// so each packet is transmitted through the stack (__dev_queue_xmit) by
// "out", where tc egress, the net_dev_xmit tracepoint and tcpdump's tap
// see it.
type testBed struct {
	*testutils.VethPair
	out      string
	outIndex int
	flood    *xdpbench.Flooder
	pass     *ebpf.Program
	amp      map[int]*ebpf.Program // by copies (amplifier)
	passLink link.Link             // XDP_PASS on "in", when attached
	redLink  link.Link             // the amplifier on "in", when attached
	copies   int                   // the attached amplifier's copies
}

func newTestBed(b *testing.B) *testBed {
	b.Helper()
	p := testutils.NewVethPair(b)
	tb := &testBed{VethPair: p}
	b.Cleanup(tb.detach)
	tag := strings.TrimPrefix(p.PeerName, "bcp")
	tb.out = "bro" + tag
	err := testutils.Do(b, p.PeerNS, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: tb.out}, PeerName: "brd" + tag}); err != nil {
			return fmt.Errorf("create veth %s: %w", tb.out, err)
		}
		for _, name := range []string{tb.out, "brd" + tag} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
			l, err := h.LinkByName(name)
			if err == nil {
				err = h.LinkSetUp(l)
			}
			if err != nil {
				return fmt.Errorf("set %s up: %w", name, err)
			}
			if name == tb.out {
				tb.outIndex = l.Attrs().Index
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	tb.pass, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "bpfcap_rpass", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}, // XDP_PASS
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tb.pass.Close() })
	tb.amp = map[int]*ebpf.Program{}
	for _, k := range []int{1, maxCopies} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "bpfcap_ramp", Type: ebpf.SchedCLS, License: "Dual BSD/GPL",
			Instructions: amplifier(tb.outIndex, k),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { prog.Close() })
		tb.amp[k] = prog
	}
	err = testutils.Do(b, p.HostNS, func() error {
		tb.flood, err = xdpbench.NewFlooder(p.HostIndex)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tb.flood.Close() })
	return tb
}

// BenchmarkGeneratorRate floods each capture point flat out with nothing
// capturing and logs the rate that crossed it: what the generator can
// offer, against which BenchmarkMaxRate's loss-free rates are read (a tool
// that keeps everything up to this rate is generator-bound).
func BenchmarkGeneratorRate(b *testing.B) {
	testutils.RequireRoot(b)
	bed := newTestBed(b)
	gen, why := bed.flood.Generator()
	b.Logf("generator: %s (live frames: %v)", gen, why)
	for _, payload := range []int{64, 1000} {
		frame := udpFrame(payload)
		for _, egress := range []bool{true, false} {
			bed.setup(b, true, map[bool]int{true: maxCopies}[egress])
			var sum float64
			for range b.N {
				_, r := bed.send(b, frame, 2e6, stepTime(b)/2, egress)
				sum += r
			}
			where := map[bool]string{true: "out of " + bed.out + " (tc egress, net_dev_xmit)", false: "into " + bed.PeerName + " (XDP)"}[egress]
			b.Logf("%d B payload %s: %.0f pps", payload, where, sum/float64(b.N))
			b.ReportMetric(sum/float64(b.N), fmt.Sprintf("pps-%dB-%s", payload, map[bool]string{true: "egress", false: "xdp"}[egress]))
		}
	}
}

// maxCopies is how many times the tc program on "in" sends each packet
// out of "out" at most: the XDP loop's frames cost "in" an skb each, which
// a single redirect would leave the most expensive part of the path.
const maxCopies = 4

// amplifier is a tc program that sends each packet copies times out of
// ifindex (bpf_clone_redirect to its egress) and drops the original.
func amplifier(ifindex, copies int) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	for range copies {
		insns = append(insns,
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, int32(ifindex)),
			asm.Mov.Imm(asm.R3, 0), // egress
			asm.FnCloneRedirect.Call(),
		)
	}
	return append(insns, asm.Mov.Imm(asm.R0, 2), asm.Return()) // TC_ACT_SHOT
}

// setup attaches XDP_PASS on "in" (pass) and the amplifier sending each
// packet copies times out of "out" (0: none), detaching what is not asked
// for.
func (tb *testBed) setup(b *testing.B, pass bool, copies int) {
	b.Helper()
	tb.detach()
	err := testutils.Do(b, tb.PeerNS, func() error {
		var err error
		if pass {
			if tb.passLink, err = link.AttachXDP(link.XDPOptions{Program: tb.pass, Interface: tb.PeerIndex}); err != nil {
				return fmt.Errorf("attach XDP_PASS to %s: %w", tb.PeerName, err)
			}
		}
		if copies > 0 {
			if tb.redLink, err = link.AttachTCX(link.TCXOptions{Program: tb.amp[copies], Interface: tb.PeerIndex, Attach: ebpf.AttachTCXIngress}); err != nil {
				return fmt.Errorf("attach the amplifier to %s: %w", tb.PeerName, err)
			}
		}
		tb.copies = copies
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func (tb *testBed) detach() {
	for _, l := range []*link.Link{&tb.passLink, &tb.redLink} {
		if *l != nil {
			(*l).Close()
			*l = nil
		}
	}
}

// packets returns the packets "out" transmitted (egress) or "in" received.
func (tb *testBed) packets(b *testing.B, egress bool) uint64 {
	b.Helper()
	h, err := netlink.NewHandleAt(tb.PeerNS)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if egress {
		l, err := h.LinkByIndex(tb.outIndex)
		if err != nil {
			b.Fatal(err)
		}
		// Packets the peer's backlog refused count as dropped, not
		// sent, but tc egress and the taps saw them leave.
		st := l.Attrs().Statistics
		return st.TxPackets + st.TxDropped
	}
	l, err := h.LinkByIndex(tb.PeerIndex)
	if err != nil {
		b.Fatal(err)
	}
	return l.Attrs().Statistics.RxPackets
}

// send floods frame at pps for d and returns the packets that crossed the
// capture point and their rate.
func (tb *testBed) send(b *testing.B, frame []byte, pps float64, d time.Duration, egress bool) (uint64, float64) {
	b.Helper()
	// Through the amplifier, each frame the loop sends leaves "out"
	// copies times.
	k := 1.0
	if egress {
		k = float64(tb.copies)
	}
	n := uint32(pps * d.Seconds() / k)
	before := tb.packets(b, egress)
	var took time.Duration
	err := testutils.Do(b, tb.HostNS, func() error {
		var err error
		took, err = tb.flood.SendPaced(frame, n, pps/k, max(burst/uint32(k), 1), floodCPU)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	// The receiving end may still be working through its queue: read the
	// counter once it stops moving.
	got := tb.packets(b, egress)
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		now := tb.packets(b, egress)
		if now == got {
			break
		}
		got = now
	}
	got -= before
	return got, float64(got) / took.Seconds()
}

// hookCase is one capture point: the bpfcap command line (before -w), the
// device tcpdump listens on and which counter counts the packets there.
type hookCase struct {
	name   string
	bpfcap func(tb *testBed) []string
	dev    func(tb *testBed) string
	egress bool // packets crossing: out's transmit counter, else in's receive counter
	// tracepoint says bpfcap captures at a tracepoint of the transmit
	// path: a packet counts as lost only if it reached
	// net_dev_start_xmit (tapMeter counts those).
	tracepoint bool
	// copies is the amplifier's for egress cases. At net_dev_xmit, bpfcap
	// skipped about 0.2% of the packets of a 4-clone amplifier as having
	// no MAC header (tcpdump's tap sees them): the tracepoint fires after
	// the driver took the skb, which may be freed and reused by then (see
	// the package's doc). The tracepoint cases run with one copy.
	copies int
}

var hookCases = []hookCase{
	{"tc-egress", func(tb *testBed) []string { return []string{"tc", "dev", tb.out, "egress"} }, func(tb *testBed) string { return tb.out }, true, false, maxCopies},
	{"tp_btf-net_dev_xmit", func(tb *testBed) []string { return []string{"trace", "tp_btf:net_dev_xmit"} }, func(tb *testBed) string { return tb.out }, true, true, 1},
	{"tp_btf-net_dev_start_xmit", func(tb *testBed) []string { return []string{"trace", "tp_btf:net_dev_start_xmit"} }, func(tb *testBed) string { return tb.out }, true, true, 1},
	{"xdp", func(tb *testBed) []string { return []string{"xdp", "dev", tb.PeerName} }, func(tb *testBed) string { return tb.PeerName }, false, false, 0},
}

// tool is one capture process: bpfcap or tcpdump, in the peer namespace,
// bound to the capture CPU, writing to a file on /dev/shm.
type tool struct {
	name   string
	argv   []string
	ready  func(stderr string, file string) bool
	count  *regexp.Regexp // the packets written, from stderr
	bpf    bool           // sum the run time of the process's BPF programs
	limit  *cpuLimit      // the cgroup the process runs in (nil: none)
	file   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	bpfNs0 uint64
	miss0  uint64        // the programs' recursion misses once ready
	cpu0   time.Duration // the process's CPU time once it was ready
}

// result is what one tool did in one step.
type result struct {
	written uint64
	cpu     time.Duration // process user+system time, plus BPF run time for bpfcap
	proc    time.Duration // process user+system time
	bpf     time.Duration
	// tap is the time per packet the tool's packet tap added to the
	// transmit path (tapMeter; tcpdump's, bpfcap has none: ~0).
	tap     float64
	peakRSS uint64 // VmHWM in KiB
	// fileBytes is the size of the file written (headers and statistics
	// included: a few hundred bytes).
	fileBytes uint64
	// misses are the runs of bpfcap's programs the kernel skipped
	// because the program was already running on that CPU (a tracing
	// program interrupted by the softirq that transmits the next packet).
	misses uint64
}

func (t *tool) start(b *testing.B, ns string) {
	b.Helper()
	os.Remove(t.file)
	t.stderr.Reset()
	args := append([]string{"netns", "exec", ns, "taskset", "-c", strconv.Itoa(captureCPU)}, t.argv...)
	t.cmd = exec.Command("ip", args...)
	t.cmd.Stderr = &t.stderr
	if err := t.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if t.limit != nil {
		t.limit.add(b, t.cmd.Process.Pid)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !t.ready(t.stderr.String(), t.file) {
		if time.Now().After(deadline) || t.cmd.ProcessState != nil {
			t.cmd.Process.Kill()
			t.cmd.Wait()
			b.Fatalf("%s did not start: %s", t.name, t.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Let it settle (bpfcap writes its file before the last hook is
	// attached; tcpdump says it listens before its ring is mapped), then
	// take its CPU time so far: starting (BTF, the verifier) is not part
	// of the cost per packet.
	time.Sleep(300 * time.Millisecond)
	t.cpu0 = processCPU(b, t.cmd.Process.Pid)
	if t.bpf {
		t.bpfNs0 = bpfRunTime(t.cmd.Process.Pid)
		t.miss0 = bpfProgStat(t.cmd.Process.Pid, "recursion_misses:")
	}
}

// processCPU returns the user and system time process pid has used so far
// (/proc/PID/stat, in clock ticks of 10 ms).
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (which may hold spaces): utime
	// and stime are the 14th and 15th of the line.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func (t *tool) stop(b *testing.B) result {
	b.Helper()
	var r result
	r.peakRSS = peakRSS(t.cmd.Process.Pid)
	if t.bpf {
		r.bpf = time.Duration(bpfRunTime(t.cmd.Process.Pid) - t.bpfNs0)
		r.misses = bpfProgStat(t.cmd.Process.Pid, "recursion_misses:") - t.miss0
	} else {
		// tcpdump hands packets over in blocks that retire after up to a
		// second: give it that long before stopping it.
		time.Sleep(1500 * time.Millisecond)
	}
	t.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- t.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.Fatalf("%s: %v: %s", t.name, err, t.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.cmd.Process.Kill()
		<-done
		b.Fatalf("%s did not exit within 30s of SIGINT: %s", t.name, t.stderr.String())
	}
	m := t.count.FindStringSubmatch(t.stderr.String())
	if m == nil {
		b.Fatalf("no packet count from %s: %s", t.name, t.stderr.String())
	}
	r.written, _ = strconv.ParseUint(m[1], 10, 64)
	ru := t.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r.proc = time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) - t.cpu0
	r.cpu = r.proc + r.bpf
	if fi, err := os.Stat(t.file); err == nil {
		r.fileBytes = uint64(fi.Size())
	}
	os.Remove(t.file)
	return r
}

// peakRSS returns the peak resident set size (VmHWM) of process pid in
// KiB, 0 when it cannot be read.
func peakRSS(pid int) uint64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// bpfRunTime sums run_time_ns over the BPF programs process pid holds
// open (the kernel counts it while BPF run-time statistics are on).
func bpfRunTime(pid int) uint64 { return bpfProgStat(pid, "run_time_ns:") }

// bpfProgStat sums one fdinfo field over the BPF programs process pid
// holds open.
func bpfProgStat(pid int, field string) uint64 {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum uint64
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err != nil || l != "anon_inode:bpf-prog" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, field); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				sum += n
			}
		}
	}
	return sum
}

var (
	bpfcapWritten  = regexp.MustCompile(`bpfcap: (\d+) packets written`)
	tcpdumpWritten = regexp.MustCompile(`(\d+) packets captured`)
)

// buildBpfcap builds bpfcap from this tree, or returns BPFCAP_RATE_BIN
// (another build to measure, such as main's).
func buildBpfcap(b *testing.B) string {
	b.Helper()
	if bin := os.Getenv("BPFCAP_RATE_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(b.TempDir(), "bpfcap")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/bpfcap").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkMaxRate steps the offered rate up (rates, each step
// BPFCAP_RATE_STEP long) at each hook and payload size, running bpfcap
// (default buffer sizes, or BPFCAP_RATE_ARGS added to its command line;
// BPFCAP_RATE_BIN instead of this tree's build) and then tcpdump -w
// -B 8192 (the same 8 MiB) on the same device at each step, until both
// lost packets or the generator, flooding with no capture at each step,
// fell short of the step's rate. With
// BPFCAP_RATE_CPU=N each capture process runs in a cgroup that gives it N%
// of one CPU (cpuLimit): the same constraint for both, so that both lose
// packets below what the generator offers (at 64 B neither does
// otherwise); the kernel work done for them is not limited.
//
// At egress, each step also floods once with no capture running (the
// baseline) while a tapMeter times the transmit path of "out" with and
// without the tool.
//
// Reported per case, as ratios of the same run: lossfree-bpfcap/tcpdump
// (highest offered rate each kept at 100%; left out when neither lost a
// packet; with generator-bound=1 one of the two is a floor), and at the
// highest step both kept, CPU per captured packet two ways:
//
//   - cpu-*: the process's own time, plus for bpfcap its BPF programs' run
//     time (kernel statistics); tcpdump's kernel tap is not counted (the
//     earlier, unfair figure).
//   - fair-cpu-*: the process's own time plus, for both tools alike, the
//     kernel work done for it per packet in other tasks' softirqs
//     (kernel-ns/pkt): bpfcap's BPF programs' run time, and the time
//     its packet tap adds to the transmit path (tapMeter: tcpdump's
//     packet_rcv with its filter and copy; ~0 for bpfcap, which has no
//     tap). At XDP, where tcpdump's tap is on the receive path that no
//     tracepoint pair brackets, the tap time measured at tc egress in
//     the same run for the same payload is used. Not counted on either
//     side: wake-ups raised from the kernel (bpfcap's ring wakes its
//     reader once per MiB; tcpdump's TPACKET_V3 once per block).
//
// The bytes of each tool's file per packet at that step are reported too
// (file-B/pkt).
func BenchmarkMaxRate(b *testing.B) {
	testutils.RequireRoot(b)
	for _, need := range []string{"tcpdump", "taskset", "ip"} {
		if _, err := exec.LookPath(need); err != nil {
			b.Fatalf("%s is needed: %v", need, err)
		}
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	bin := buildBpfcap(b)
	bed := newTestBed(b)
	gen, why := bed.flood.Generator()
	b.Logf("generator: %s (live frames: %v)", gen, why)
	meter := newTapMeter(b, bed.outIndex)
	taps := map[int]float64{} // tcpdump's tap time per packet at egress, by payload
	var limit *cpuLimit
	if pct := cpuLimitPercent(b); pct > 0 {
		limit = newCPULimit(b, pct)
		fmt.Fprintf(os.Stderr, "constraint: %s\n", limit)
	} else {
		fmt.Fprintln(os.Stderr, "constraint: none (BPFCAP_RATE_CPU unset): each capture process has CPU 1 to itself")
	}
	step := stepTime(b)
	for _, hc := range hookCases {
		for _, payload := range []int{64, 1000} {
			b.Run(fmt.Sprintf("%s/%dB", hc.name, payload), func(b *testing.B) {
				for range b.N {
					runCase(b, bin, bed, hc, payload, step, limit, meter, taps)
				}
			})
		}
	}
}

func runCase(b *testing.B, bin string, bed *testBed, hc hookCase, payload int, step time.Duration, limit *cpuLimit, meter *tapMeter, taps map[int]float64) {
	frame := udpFrame(payload)
	dev := hc.dev(bed)
	file := func(ext string) string {
		return filepath.Join("/dev/shm", fmt.Sprintf("bpfcap-rate-%d.%s", os.Getpid(), ext))
	}
	argv := append([]string{bin}, hc.bpfcap(bed)...)
	argv = append(argv, strings.Fields(os.Getenv("BPFCAP_RATE_ARGS"))...)
	bp := &tool{
		name: "bpfcap", bpf: true, file: file("pcapng"), count: bpfcapWritten, limit: limit,
		argv:  append(argv, "-w", file("pcapng"), filter),
		ready: func(_ string, f string) bool { _, err := os.Stat(f); return err == nil },
	}
	td := &tool{
		name: "tcpdump", file: file("pcap"), count: tcpdumpWritten, limit: limit,
		argv:  []string{"tcpdump", "-Z", "root", "-n", "-B", "8192", "-s", "0", "-i", dev, "-w", file("pcap"), filter},
		ready: func(s string, _ string) bool { return strings.Contains(s, "listening on") },
	}
	type best struct {
		rate  float64 // highest loss-free arrived rate
		cpu   map[float64]float64
		fair  map[float64]float64 // process + kernel time, per packet
		kern  map[float64]float64 // kernel time done for the tool, per packet
		bytes map[float64]float64 // file bytes per packet written
	}
	newBest := func() *best {
		return &best{cpu: map[float64]float64{}, fair: map[float64]float64{}, kern: map[float64]float64{}, bytes: map[float64]float64{}}
	}
	bests := map[string]*best{"bpfcap": newBest(), "tcpdump": newBest()}
	lossy := map[string]bool{}
	bothKept := 0.0
	var peak uint64 // bpfcap's highest VmHWM, KiB
	for _, pps := range rates {
		short := false
		// The flood with no capture (XDP_PASS on "in" and the amplifier,
		// as the tools see it): whether the generator reaches the step's
		// rate at all, and the transmit path of "out" with no tap.
		bed.setup(b, true, hc.copies)
		m0 := meter.read(b)
		_, baseRate := bed.send(b, frame, pps, step, hc.egress)
		base := meter.read(b).since(m0)
		if baseRate < 0.9*pps {
			// The machine's other work slows the generator down too:
			// a tool's step that falls short alone says nothing of it.
			short = true
		}
		for _, t := range []*tool{bp, td} {
			if lossy[t.name] {
				continue
			}
			// bpfcap xdp dev attaches its own XDP program; every other
			// capture needs XDP_PASS on "in" to receive XDP frames.
			bed.setup(b, !(hc.name == "xdp" && t == bp), hc.copies)
			t.start(b, bed.PeerNSName)
			m0 := meter.read(b)
			arrived, rate := bed.send(b, frame, pps, step, hc.egress)
			r := t.stop(b)
			var reached uint64 // the device's packets that reached net_dev_start_xmit
			switch {
			case hc.egress:
				m1 := meter.read(b)
				r.tap = max(m1.since(m0)-base, 0)
				reached = m1.reached - m0.reached
				if t == td {
					taps[payload] = r.tap
				}
			case t == td:
				var ok bool
				if r.tap, ok = taps[payload]; !ok {
					fmt.Fprintf(os.Stderr, "%s %dB: tcpdump's tap time not measured (tc-egress/%dB did not run): fair CPU leaves it out\n", hc.name, payload, payload)
				}
			}
			if t == bp {
				peak = max(peak, r.peakRSS)
			}
			// At a tracepoint, packets the device counted but that never
			// reached it (the meter's program there did not run for
			// them either) are no tool's to capture: tcpdump's tap is
			// in the same function, just before net_dev_start_xmit.
			basis := arrived
			if hc.tracepoint && reached < basis {
				basis = reached
			}
			kept := r.written+slack >= basis
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(max(r.written, 1)) }
			kernPer := per(r.bpf) + r.tap
			cpuPer, fairPer := per(r.cpu), per(r.proc)+kernPer
			bytesPer := float64(r.fileBytes) / float64(max(r.written, 1))
			line := fmt.Sprintf("%s %dB %s: offered %.0f pps, %d arrived at %.0f pps, wrote %d (%.2f%%), CPU %.0f ns/pkt (BPF %.0f ns/pkt), fair CPU %.0f ns/pkt (process %.0f + BPF %.0f + tap %.0f), file %.1f B/pkt",
				hc.name, payload, t.name, pps, arrived, rate, r.written, 100*float64(r.written)/float64(max(arrived, 1)),
				cpuPer, per(r.bpf), fairPer, per(r.proc), per(r.bpf), r.tap, bytesPer)
			if reached > 0 {
				line += fmt.Sprintf(", %d reached net_dev_start_xmit", reached)
			}
			if r.misses > 0 {
				line += fmt.Sprintf(", %d runs skipped by the kernel (recursion misses)", r.misses)
			}
			if !kept {
				line += "; " + strings.Join(strings.Fields(t.stderr.String()), " ")
			}
			b.Log(line)
			fmt.Fprintln(os.Stderr, line)
			if !kept {
				lossy[t.name] = true
				continue
			}
			bs := bests[t.name]
			bs.rate = max(bs.rate, rate)
			bs.cpu[pps], bs.fair[pps], bs.kern[pps] = cpuPer, fairPer, kernPer
			bs.bytes[pps] = bytesPer
		}
		if !lossy["bpfcap"] && !lossy["tcpdump"] {
			bothKept = pps
		}
		if short {
			fmt.Fprintf(os.Stderr, "%s %dB: the generator fell short of %.0f pps: stepping stops\n", hc.name, payload, pps)
			break
		}
		if lossy["bpfcap"] && lossy["tcpdump"] {
			break
		}
	}
	b.ReportMetric(float64(peak)/1024, "peak-rss-MiB-bpfcap")
	bpf, tcp := bests["bpfcap"], bests["tcpdump"]
	b.ReportMetric(bpf.rate, "lossfree-pps-bpfcap")
	b.ReportMetric(tcp.rate, "lossfree-pps-tcpdump")
	// When neither tool lost a packet, both figures are what the
	// generator offered: their ratio says nothing about the tools.
	if tcp.rate > 0 && (lossy["bpfcap"] || lossy["tcpdump"]) {
		b.ReportMetric(bpf.rate/tcp.rate, "lossfree-bpfcap/tcpdump")
	}
	generatorBound := 0.0
	if !lossy["bpfcap"] || !lossy["tcpdump"] {
		generatorBound = 1 // a tool kept everything the generator offered: its figure is a floor
	}
	b.ReportMetric(generatorBound, "generator-bound")
	if bothKept > 0 {
		b.ReportMetric(bpf.cpu[bothKept], "cpu-ns/pkt-bpfcap")
		b.ReportMetric(tcp.cpu[bothKept], "cpu-ns/pkt-tcpdump")
		b.ReportMetric(bpf.fair[bothKept], "fair-cpu-ns/pkt-bpfcap")
		b.ReportMetric(tcp.fair[bothKept], "fair-cpu-ns/pkt-tcpdump")
		b.ReportMetric(bpf.kern[bothKept], "kernel-ns/pkt-bpfcap")
		b.ReportMetric(tcp.kern[bothKept], "kernel-ns/pkt-tcpdump")
		b.ReportMetric(bpf.bytes[bothKept], "file-B/pkt-bpfcap")
		b.ReportMetric(tcp.bytes[bothKept], "file-B/pkt-tcpdump")
		if tcp.cpu[bothKept] > 0 {
			b.ReportMetric(bpf.cpu[bothKept]/tcp.cpu[bothKept], "cpu-bpfcap/tcpdump")
		}
		if tcp.fair[bothKept] > 0 {
			b.ReportMetric(bpf.fair[bothKept]/tcp.fair[bothKept], "fair-cpu-bpfcap/tcpdump")
		}
	}
}

// BenchmarkStalledReader floods tc egress for BPFCAP_RATE_STEP × 5 while
// bpfcap writes its capture to a pipe nobody reads (a stalled reader: its
// writes block, the ring fills, the kernel counts losses) and reports
// bpfcap's peak resident set size (VmHWM), which must stay below 64 MiB.
func BenchmarkStalledReader(b *testing.B) {
	testutils.RequireRoot(b)
	bin := buildBpfcap(b)
	bed := newTestBed(b)
	bed.setup(b, true, maxCopies)
	frame := udpFrame(1000)
	var peak uint64
	for range b.N {
		pr, pw, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command("ip", "netns", "exec", bed.PeerNSName, "taskset", "-c", strconv.Itoa(captureCPU), bin, "tc", "dev", bed.out, "egress", "-w", "-", filter)
		cmd.Stdout, cmd.Stderr = pw, &stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pw.Close()
		// The pcapng header is written once the hook is attached: read
		// it, and nothing more.
		head := make([]byte, 4)
		if _, err := pr.Read(head); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			b.Fatalf("bpfcap did not start: %v: %s", err, stderr.String())
		}
		bed.send(b, frame, 300e3, 5*stepTime(b), true)
		peak = max(peak, peakRSS(cmd.Process.Pid))
		pr.Close() // bpfcap's next write fails with EPIPE: it ends
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		b.Logf("stalled reader: bpfcap peak RSS %d KiB; %s", peak, strings.TrimSpace(stderr.String()))
	}
	b.ReportMetric(float64(peak)/1024, "peak-rss-MiB")
	if peak >= 64<<10 {
		b.Errorf("peak RSS %d KiB with a stalled reader, want < 64 MiB", peak)
	}
}
