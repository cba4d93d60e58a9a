// Command bpfcap captures packets where tcpdump cannot see them: at kernel
// functions and tracepoints that handle an sk_buff, inside XDP programs, at
// tc, and in DPDK dataplanes. It writes pcapng with per-packet metadata.
//
// Exit status: 0 when the capture ran and ended (by -c, --duration, a
// closed output pipe, or a signal once capturing: tcpdump's convention),
// 2 for any error (bad input, a refused or failed capture, a full disk, a
// vanished target), and 128+N when signal N arrived before the capture
// started (for example while libpcap compiled the filter).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// terminatingSignals are the signals tcpdump cleans up on. Every one of
// them ends a capture the same way: detach everything, finish the file,
// print the statistics.
var terminatingSignals = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGPIPE}

func main() {
	ctx, stop := signalContext(context.Background())
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if os.Getenv("GOMAXPROCS") == "" {
		// One processor once attached, unless the user chose.
		env.captureProcs = 1
	}
	if self, err := os.Executable(); err == nil {
		env.self = self
	}
	err := runEnv(ctx, env, os.Args[1:])
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// signalContext returns a context cancelled by the first terminating
// signal, with a *signalError as its cause. The signals are caught from
// the very start, so none of them can kill bpfcap while it attaches.
//
// SIGPIPE is one of them, as in tcpdump: a write to a closed stdout or
// stderr (`2>&1 | head -1`) fails with EPIPE instead of killing bpfcap,
// and the signal ends the run through the same clean-up, even while
// bpfcap empties a hook's stale slots at start-up.
func signalContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, len(terminatingSignals))
	signal.Notify(ch, terminatingSignals...)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			cancel(&signalError{sig: sig.(syscall.Signal)})
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		signal.Stop(ch)
		// What is left to write (the error, the statistics) may go to
		// a closed stderr: EPIPE, never death by SIGPIPE.
		signal.Ignore(syscall.SIGPIPE)
		cancel(nil)
	}
}

// signalError is the cause of a context cancelled by a signal.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return "interrupted by " + signalName(e.sig) }

// signalName returns "SIGINT" etc.
func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	}
	return s.String()
}

// run executes one bpfcap command line. It never calls os.Exit, so that
// every deferred close runs and tests can call it directly.
func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string) error {
	return runEnv(ctx, &cliEnv{stdin: stdin, stdout: stdout, stderr: stderr}, args)
}

// runEnv is run with the whole environment.
func runEnv(ctx context.Context, env *cliEnv, args []string) error {
	root := newRootCmd(env)
	root.SetArgs(args)
	root.SetOut(env.stdout)
	root.SetErr(env.stderr)
	return root.ExecuteContext(ctx)
}

// Exit statuses (see the package comment).
const (
	// exitError is the status of every error but a signal's.
	exitError = 2
	// exitSignal plus the signal's number is the status when a signal
	// ended bpfcap before the capture started (the shell's convention).
	exitSignal = 128
)

// exitCode prints err and maps it to the process exit status (see the
// package comment): 0 for success, exitSignal+N for an error caused by
// signal N before the capture started, exitError for any other error.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "bpfcap: %v\n", err)
	if hint := errorHint(err); hint != "" {
		fmt.Fprintf(stderr, "bpfcap: %s\n", hint)
	}
	var se *signalError
	if errors.As(err, &se) {
		return exitSignal + int(se.sig)
	}
	return exitError
}
