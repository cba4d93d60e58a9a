package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fifoWriter is the output of an extcap capture: the fifo Wireshark made
// (or, run by hand, a file). It opens the path on the first write, which
// the capture makes once its hooks are attached, so that
//   - nothing reaches the reader before the capture runs: an error before
//     that (bad filter, unknown device) ends in release;
//   - waiting for a reader never blocks in open(2), where SIGTERM could
//     not interrupt it: the open polls, and gives up when ctx is done.
type fifoWriter struct {
	ctx    context.Context
	path   string
	f      *os.File
	opened bool
}

// fifoPollInterval is how often an open of a fifo without a reader is
// retried.
const fifoPollInterval = 10 * time.Millisecond

// Write opens the output on first use, then writes p to it.
func (w *fifoWriter) Write(p []byte) (int, error) {
	if w.opened && w.f == nil {
		return 0, os.ErrClosed
	}
	if w.f == nil {
		f, err := openOutput(w.ctx, w.path)
		if err != nil {
			return 0, err
		}
		w.f, w.opened = f, true
	}
	return w.f.Write(p)
}

// failTimeout bounds how long a failed capture waits for the fifo's
// reader in release.
const failTimeout = 5 * time.Second

// release is called when the capture failed. If the output is a fifo
// bpfcap never opened, it waits (up to failTimeout) for the reader and
// opens the fifo, and leaves it open until the process exits, after
// printing its error: the reader (dumpcap, perhaps blocked opening the
// fifo) then sees end of file and Wireshark shows bpfcap's stderr.
// Measured with tshark 4.0: when dumpcap opens the fifo after the extcap
// exited without opening it, tshark waits forever. The descriptor is a
// bare one, deliberately never closed (no finalizer closes it early).
func (w *fifoWriter) release() {
	if w.opened {
		return
	}
	if st, err := os.Stat(w.path); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(w.ctx, failTimeout)
	defer cancel()
	openFifo(ctx, w.path) // the descriptor stays open until exit
}

// Close closes the output if it was opened.
func (w *fifoWriter) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// openOutput opens path for writing: a fifo once it has a reader (an
// error wrapping EPIPE if ctx ends first: nobody will read), anything else
// created or truncated.
func openOutput(ctx context.Context, path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open --fifo %s: %w", path, err)
		}
		return f, nil
	}
	fd, err := openFifo(ctx, path)
	if err != nil {
		return nil, err
	}
	// The fd stays non-blocking: os.NewFile hands it to the runtime
	// poller, which parks a writer the reader is behind.
	return os.NewFile(uintptr(fd), path), nil
}

// openFifo opens the fifo at path for writing, non-blocking, once a
// reader has it open, polling (an open that blocked in the kernel could
// not be interrupted); it fails wrapping EPIPE when ctx ends first.
func openFifo(ctx context.Context, path string) (int, error) {
	for {
		// O_NONBLOCK: fails with ENXIO while no reader has the fifo open
		// instead of blocking.
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.ENXIO) {
			return -1, fmt.Errorf("open fifo %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("fifo %s: stopped before a reader opened it: %w", path, syscall.EPIPE)
		case <-time.After(fifoPollInterval):
		}
	}
}
