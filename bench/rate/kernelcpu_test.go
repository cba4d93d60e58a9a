package ratebench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// userHZ is the unit of /proc/stat's times (USER_HZ, 100 on Linux).
const userHZ = 100

// kernelTime returns the time all CPUs together have spent in hard and
// soft interrupts (/proc/stat's irq and softirq columns of the "cpu"
// line). Both tools' kernel work runs there: tcpdump's tap
// (packet_rcv/tpacket_rcv: its classic BPF filter, the copy into its
// mapped ring, the wake-up) and bpfcap's BPF programs, ring reservation
// and wake-ups run in the softirqs that send or receive the packet,
// mostly on the flood's CPU; none of it is in tcpdump's process time.
// Without CONFIG_IRQ_TIME_ACCOUNTING (this kernel) the figures are
// sampled at each tick (4 ms at HZ=250), so a step needs a few hundred
// milliseconds of interrupt time to be read to ~10%.
func kernelTime(tb testing.TB) time.Duration {
	tb.Helper()
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq ...
		irq, err1 := strconv.ParseUint(f[6], 10, 64)
		soft, err2 := strconv.ParseUint(f[7], 10, 64)
		if err1 != nil || err2 != nil {
			tb.Fatalf("/proc/stat: %q", sc.Text())
		}
		return time.Duration(irq+soft) * time.Second / userHZ
	}
	tb.Fatal("/proc/stat has no cpu line")
	return 0
}

// baseline is the interrupt time per packet that crossed the capture
// point with no capture running: the flood's own cost, which every
// capture step pays too.
type baseline struct {
	kern    time.Duration
	packets uint64
}

// perPacket returns the baseline's interrupt time per packet.
func (b baseline) perPacket() float64 {
	return float64(b.kern.Nanoseconds()) / float64(max(b.packets, 1))
}

// kernelExtra returns the interrupt time a capture added to a step in
// which packets crossed the capture point and kern was spent: kern less
// what the same packets cost without a capture (never below zero).
func (b baseline) kernelExtra(kern time.Duration, packets uint64) time.Duration {
	extra := float64(kern.Nanoseconds()) - b.perPacket()*float64(packets)
	return time.Duration(max(extra, 0))
}

// String says what the baseline measured.
func (b baseline) String() string {
	return fmt.Sprintf("%.0f ns/pkt of interrupt time with no capture (%d packets)", b.perPacket(), b.packets)
}
