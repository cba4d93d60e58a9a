package main

import (
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// capKeeper is one OS thread that keeps CAP_NET_ADMIN when -Z drops every
// other thread to an unprivileged user, so the detach steps that need it
// still work at the end: a clsact filter is deleted over rtnetlink, and
// the kernel checks the capability of the sending thread as well as of
// the socket's opener, so a socket opened as root is not enough.
//
// Only the detach runs on that thread; the capture itself (ring reads,
// file writes) runs unprivileged. The thread exits, taking the capability
// with it, when stop is called.
type capKeeper struct {
	work chan func()
	done chan struct{}

	mu      sync.Mutex
	stopped bool
}

// startCapKeeper starts the thread and asks the kernel to keep its
// permitted capabilities across the coming setuid (PR_SET_KEEPCAPS,
// which applies to the calling thread only).
func startCapKeeper() (*capKeeper, error) {
	k := &capKeeper{work: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer close(k.done)
		// Never unlocked: the thread ends with this goroutine, and the
		// capability with the thread.
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			ready <- fmt.Errorf("keep capabilities across -Z: %w", err)
			return
		}
		ready <- nil
		for f := range k.work {
			f()
		}
	}()
	if err := <-ready; err != nil {
		<-k.done
		return nil, err
	}
	return k, nil
}

// narrow runs after the setuid: it leaves the thread CAP_NET_ADMIN alone
// (effective and permitted) and turns PR_SET_KEEPCAPS off again.
func (k *capKeeper) narrow() error {
	return k.do(func() error {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		bit := uint32(1) << (unix.CAP_NET_ADMIN % 32)
		data[unix.CAP_NET_ADMIN/32].Effective = bit
		data[unix.CAP_NET_ADMIN/32].Permitted = bit
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("keep CAP_NET_ADMIN for the detach after -Z: %w", err)
		}
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
			return fmt.Errorf("keep capabilities across -Z: %w", err)
		}
		return nil
	})
}

// do runs f on the thread and returns its error; after stop, or when the
// thread could not start, it runs f where it is called.
func (k *capKeeper) do(f func() error) error {
	k.mu.Lock()
	defer k.mu.Unlock() // one call at a time; stop waits for it
	if k.stopped {
		return f()
	}
	errc := make(chan error, 1)
	select {
	case k.work <- func() { errc <- f() }:
		return <-errc
	case <-k.done:
		return f()
	}
}

// stop ends the thread.
func (k *capKeeper) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped {
		k.stopped = true
		close(k.work)
		<-k.done
	}
}
