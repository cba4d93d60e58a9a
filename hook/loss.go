package hook

import "github.com/bpfcap/bpfcap/pcapng"

// LossCounter follows a kernel's running count of records lost to a full
// ring and carries each increase on the next packet written
// (epb_dropcount), so a reader of the file sees where the losses
// happened. It is not safe for concurrent use: the goroutine that reads
// the ring owns it.
type LossCounter struct {
	base, seen, pending uint64
}

// NewLossCounter starts counting from total, the kernel's count when the
// capture starts: losses before it are not this capture's.
func NewLossCounter(total uint64) LossCounter {
	return LossCounter{base: total, seen: total}
}

// Observe takes the kernel's current total and schedules what is new for
// the next packet. A total below the last one seen changes nothing.
func (l *LossCounter) Observe(total uint64) {
	if total > l.seen {
		l.pending += total - l.seen
		l.seen = total
	}
}

// Lost returns the losses since the capture started.
func (l *LossCounter) Lost() uint64 { return l.seen - l.base }

// Take returns the losses not yet reported and marks them reported.
func (l *LossCounter) Take() uint64 {
	n := l.pending
	l.pending = 0
	return n
}

// Stamp reports the losses not yet reported on p (epb_dropcount).
func (l *LossCounter) Stamp(p *pcapng.Packet) {
	if n := l.Take(); n > 0 {
		p.Flags |= pcapng.HasDropCount
		p.DropCount = n
	}
}
