package hook

import (
	"time"

	"golang.org/x/sys/unix"
)

// Clock converts bpf_ktime_get_ns() timestamps (CLOCK_MONOTONIC) to
// wall-clock time, with the offset between the two clocks measured once,
// when the capture starts: every source of a session stamps its packets
// the same way.
type Clock struct {
	// offset is wall-clock minus CLOCK_MONOTONIC, in ns.
	offset int64
}

// NewClock measures the offset between the wall clock and
// CLOCK_MONOTONIC, taking the monotonic reading halfway between two.
func NewClock() Clock {
	a := MonoNow()
	now := time.Now().UnixNano()
	b := MonoNow()
	return Clock{offset: now - int64((a+b)/2)}
}

// WallTime converts a bpf_ktime_get_ns() timestamp to wall-clock time.
func (c Clock) WallTime(mono uint64) time.Time {
	return time.Unix(0, int64(mono)+c.offset)
}

// MonoNow returns CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns().
func MonoNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
