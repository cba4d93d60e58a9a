// Command bpfcap captures packets where tcpdump cannot see them: at kernel
// functions and tracepoints that handle an sk_buff, inside XDP programs, at
// tc, and in DPDK dataplanes. It writes pcapng with per-packet metadata.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdin, os.Stdout, os.Stderr, os.Args[1:])
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// run executes one bpfcap command line. It never calls os.Exit, so that
// every deferred close runs and tests can call it directly.
func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string) error {
	root := newRootCmd(&cliEnv{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// exitCode prints err and maps it to the process exit status: 0 for
// success, 2 for bad input or a refused capture (as tcpdump does), 1 for
// anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "bpfcap: %v\n", err)
	return 2
}
