package perfring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Ring buffer record header bits and size (include/uapi/linux/bpf.h).
const (
	ringBusyBit    = 1 << 31
	ringDiscardBit = 1 << 30
	ringHeaderSize = 8
)

// ringReader reads a BPF ring buffer map in place: records are decoded
// straight from the mapped ring (the kernel maps its data pages twice in a
// row, so a record that wraps is contiguous) and each one is consumed, its
// space given back to the kernel, only after the callback returns. Reading
// copies nothing: whoever keeps a record's bytes copies them once.
type ringReader struct {
	mu      sync.Mutex // held while the mapping is in use
	closed  atomic.Bool
	epfd    int
	wakefd  int      // an eventfd that Close writes to end a wait
	cons    []byte   // the consumer page (read-write)
	prod    []byte   // the producer page and the data pages, twice (read-only)
	consPos *uintptr // the kernel's unsigned longs
	prodPos *uintptr
	data    []byte
	mask    uintptr
	events  [2]unix.EpollEvent
}

func newRingReader(m *ebpf.Map) (_ *ringReader, err error) {
	size := int(m.MaxEntries())
	page := os.Getpagesize()
	r := &ringReader{epfd: -1, wakefd: -1}
	defer func() {
		if err != nil {
			r.release()
		}
	}()
	if r.cons, err = unix.Mmap(m.FD(), 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("map the ring's consumer page: %w", err)
	}
	if r.prod, err = unix.Mmap(m.FD(), int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("map the ring's data pages: %w", err)
	}
	r.consPos = (*uintptr)(unsafe.Pointer(&r.cons[0]))
	r.prodPos = (*uintptr)(unsafe.Pointer(&r.prod[0]))
	r.data = r.prod[page:]
	r.mask = uintptr(size - 1)
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("create epoll instance: %w", err)
	}
	if r.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	for _, fd := range []int{m.FD(), r.wakefd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, fmt.Errorf("add fd %d to epoll: %w", fd, err)
		}
	}
	return r, nil
}

// read calls fn for every record in the ring, waiting until deadline for
// more while the ring is empty, and returns after stop when records keep
// coming. It returns the number of records passed to fn.
func (r *ringReader) read(deadline, stop time.Time, fn func(raw []byte) error) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for {
		if r.closed.Load() {
			return n, ErrClosed
		}
		got, busy, err := r.consume(fn)
		n += got
		if err != nil {
			return n, err
		}
		now := time.Now()
		if got > 0 || busy {
			if now.After(stop) {
				return n, nil
			}
			if got == 0 {
				// A record still being written: let its producer finish.
				runtime.Gosched()
			}
			continue
		}
		if !now.Before(deadline) {
			return n, nil
		}
		if err := r.wait(deadline.Sub(now)); err != nil {
			return n, err
		}
	}
}

// giveBackBytes is how much record space consume lets fn finish with
// before it gives that space back to the kernel. The consumer position
// shares a cache line with the producer's every reservation: storing it
// after each record would move that line between the reader's CPU and the
// producers' once per record.
const giveBackBytes = 64 << 10

// consume passes every committed record to fn, giving the space of the
// records fn returned from back to the kernel every giveBackBytes and
// before it returns. It stops at a record the kernel has reserved but not
// committed yet (busy), and after 4096 records so the caller sees the
// clock.
func (r *ringReader) consume(fn func(raw []byte) error) (n int, busy bool, err error) {
	cons := atomic.LoadUintptr(r.consPos)
	given := cons
	defer func() {
		if cons != given {
			atomic.StoreUintptr(r.consPos, cons)
		}
	}()
	prod := atomic.LoadUintptr(r.prodPos)
	for cons < prod && n < 4096 {
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[cons&r.mask])))
		if hdr&ringBusyBit != 0 {
			return n, true, nil
		}
		l := uintptr(hdr &^ (ringBusyBit | ringDiscardBit))
		start := cons&r.mask + ringHeaderSize
		next := cons + (ringHeaderSize+l+7)&^7
		if next > prod {
			return n, false, fmt.Errorf("ring record of %d bytes runs past the producer position", l)
		}
		if hdr&ringDiscardBit == 0 {
			err = fn(r.data[start : start+l : start+l])
			n++
		}
		// The record is done with (fn copied what it keeps).
		cons = next
		if err != nil {
			return n, false, err
		}
		if cons-given >= giveBackBytes {
			atomic.StoreUintptr(r.consPos, cons)
			given = cons
		}
		if cons == prod {
			// Take the kernel's newer records in this pass too.
			prod = atomic.LoadUintptr(r.prodPos)
		}
	}
	return n, false, nil
}

// wait blocks until the kernel signals data, Close is called, or d passes.
func (r *ringReader) wait(d time.Duration) error {
	ms := int((d + time.Millisecond - 1) / time.Millisecond)
	for {
		_, err := unix.EpollWait(r.epfd, r.events[:], ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for ring records: %w", err)
		}
		return nil
	}
}

// close ends a wait in progress and, once no read uses the mapping,
// releases it.
func (r *ringReader) close() error {
	if r.closed.Swap(true) {
		return nil
	}
	var one [8]byte
	one[0] = 1
	unix.Write(r.wakefd, one[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.release()
}

func (r *ringReader) release() error {
	var errs []error
	for _, m := range []*[]byte{&r.cons, &r.prod} {
		if *m != nil {
			errs = append(errs, unix.Munmap(*m))
			*m = nil
		}
	}
	for _, fd := range []*int{&r.epfd, &r.wakefd} {
		if *fd >= 0 {
			errs = append(errs, unix.Close(*fd))
			*fd = -1
		}
	}
	return errors.Join(errs...)
}
