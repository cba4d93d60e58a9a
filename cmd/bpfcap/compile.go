package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/hook"
)

// compileHelperCmd is the hidden subcommand a child bpfcap runs to compile
// one filter: libpcap's pcap_compile is a C call no signal can interrupt
// (a 2,000-term filter runs for many minutes), so the capture commands run
// it in a child they kill when a signal ends the run.
const compileHelperCmd = "__compile-filter"

// newCompileHelperCmd is `bpfcap __compile-filter LINKTYPE SNAPLEN NETMASK` with
// the expression on stdin: it prints one raw cBPF instruction per line
// ("op jt jf k"), or libpcap's error on stderr and exits 2.
func newCompileHelperCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    compileHelperCmd + " LINKTYPE SNAPLEN NETMASK",
		Hidden: true,
		Args:   cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			lt, err := strconv.ParseUint(args[0], 10, 32)
			if err != nil {
				return fmt.Errorf("link type %q: %w", args[0], err)
			}
			snap, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("snaplen %q: %w", args[1], err)
			}
			mask, err := strconv.ParseUint(args[2], 10, 32)
			if err != nil {
				return fmt.Errorf("netmask %q: %w", args[2], err)
			}
			var expr bytes.Buffer
			if _, err := expr.ReadFrom(env.stdin); err != nil {
				return fmt.Errorf("read filter: %w", err)
			}
			prog, err := filter.CompileNetmask(expr.String(), filter.LinkType(lt), snap, uint32(mask))
			if err != nil {
				return err
			}
			var out bytes.Buffer
			for i, ins := range prog {
				r, err := ins.Assemble()
				if err != nil {
					return fmt.Errorf("instruction %d: %w", i, err)
				}
				fmt.Fprintf(&out, "%d %d %d %d\n", r.Op, r.Jt, r.Jf, r.K)
			}
			_, err = env.stdout.Write(out.Bytes())
			return err
		},
	}
}

// compileKey is one compiled filter in a run's cache.
type compileKey struct {
	expr    string
	lt      filter.LinkType
	snaplen int
	netmask uint32
}

// compiler returns how this run compiles filters: in a child bpfcap
// (env.self) that ends when ctx does, each expression once per link type
// and snap length; or in this process (nil) when there is no binary to
// run (tests calling run directly).
func (env *cliEnv) compiler(ctx context.Context) filter.CompileFunc {
	if env.self == "" {
		return nil
	}
	var (
		mu    sync.Mutex
		cache = map[compileKey][]bpf.Instruction{}
	)
	return func(expr string, lt filter.LinkType, snaplen int, netmask uint32) ([]bpf.Instruction, error) {
		key := compileKey{expr, lt, snaplen, netmask}
		mu.Lock()
		defer mu.Unlock()
		if prog, ok := cache[key]; ok {
			return prog, nil
		}
		prog, err := compileInChild(ctx, env.self, expr, lt, snaplen, netmask)
		if err != nil {
			return nil, err
		}
		cache[key] = prog
		return prog, nil
	}
}

// compileInChild runs `self __compile-filter` and reads its program. A
// cancelled ctx kills the child at once and returns ctx's cause (the
// signal).
func compileInChild(ctx context.Context, self, expr string, lt filter.LinkType, snaplen int, netmask uint32) ([]bpf.Instruction, error) {
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("compile filter: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, compileHelperCmd, strconv.FormatUint(uint64(lt), 10), strconv.Itoa(snaplen), strconv.FormatUint(uint64(netmask), 10))
	cmd.Stdin = strings.NewReader(expr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		// The binary cannot be run again (after -Z it may not be
		// executable by the user bpfcap became): compile here.
		return filter.CompileNetmask(expr, lt, snaplen, netmask)
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("compile filter: %w", context.Cause(ctx))
	}
	if err != nil {
		msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "bpfcap: "))
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 && msg != "" {
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("compile filter in a child bpfcap: %w (%s)", err, msg)
	}
	var raw []bpf.RawInstruction
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var r bpf.RawInstruction
		if _, err := fmt.Sscanf(line, "%d %d %d %d", &r.Op, &r.Jt, &r.Jf, &r.K); err != nil {
			return nil, fmt.Errorf("compile filter in a child bpfcap: read %q: %w", line, err)
		}
		raw = append(raw, r)
	}
	return filter.FromRaw(raw), nil
}

// kernelCapture returns the options every kernel capture (trace, tc,
// xdp) takes: o's filter, snap length and ring with this run's filter
// compiler, the netmask mask and the --count-seen flag (countSeen).
func (env *cliEnv) kernelCapture(ctx context.Context, o *captureOptions, mask uint32, countSeen bool) hook.CaptureOptions {
	return hook.CaptureOptions{
		Filter:    o.Filter,
		Netmask:   mask,
		Snaplen:   o.snaplen(),
		CountSeen: countSeen,
		SeenHint:  countSeenHint,
		Ring:      env.ringOptions(ctx, o),
	}
}

// ringOptions are o's ring options with this run's filter compiler.
func (env *cliEnv) ringOptions(ctx context.Context, o *captureOptions) hook.RingOptions {
	ro := o.ringOptions(env.stderr)
	ro.Compile = env.compiler(ctx)
	return ro
}
