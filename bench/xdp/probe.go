package xdpbench

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// LiveFramesFeature and LiveFramesMinLinux name the feature ProbeLiveFrames
// probes and the kernel that brought it, for skip reasons
// (kconfig.SkipOrFailFeature).
const (
	LiveFramesFeature  = "XDP live frames (BPF_F_TEST_XDP_LIVE_FRAMES)"
	LiveFramesMinLinux = "5.18"
)

// ProbeLiveFrames reports whether this process may run XDP programs in
// live-frames mode (BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, Linux
// 5.18), the mode LiveRun and the live-frames Flooder use. It tries: it
// loads an XDP program that drops every frame and runs it once over one
// live frame arriving on loopback (ifindex 1 of the caller's network
// namespace), so nothing leaves the host. The answer is computed once per
// process. It returns:
//   - nil: live frames work;
//   - an error wrapping ebpf.ErrNotSupported: the kernel does not know the
//     flag or the fields it needs (EINVAL, E2BIG or ENOTSUPP from the run:
//     a kernel older than 5.18);
//   - an error wrapping unix.EPERM: the kernel refused. As root that is a
//     security policy of the machine (this project's development host
//     refuses live frames, like fentry, while plain test runs work);
//     without privileges the probe cannot tell;
//   - any other error: the probe itself failed (loading the program).
func ProbeLiveFrames() error { return liveFramesOnce() }

var liveFramesOnce = sync.OnceValue(probeLiveFrames)

func probeLiveFrames() error {
	prog, err := xdpProg("bpfcap_lfprobe", 1) // XDP_DROP: nothing reaches lo's stack
	if err != nil {
		return fmt.Errorf("probe %s: load an XDP program: %w", LiveFramesFeature, err)
	}
	defer prog.Close()
	frame := make([]byte, 60)
	_, err = prog.Run(&ebpf.RunOptions{
		Data:    frame,
		Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: 1},
		Repeat:  1,
		Flags:   unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		// Non-zero, so that a kernel without the field (before 5.18)
		// refuses the attribute instead of ignoring the flag.
		BatchSize: 1,
	})
	switch {
	case err == nil:
		return nil
	// Kernels before 5.18 reject the unknown flag and batch_size field
	// with EINVAL (or E2BIG for a larger attribute than they know);
	// ENOTSUPP is what a kernel says for program types it cannot run
	// (cilium/ebpf turns that into ErrNotSupported itself).
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.EINVAL), errors.Is(err, unix.E2BIG), errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("probe %s: %w (%w)", LiveFramesFeature, ebpf.ErrNotSupported, err)
	default:
		// EPERM stays EPERM: a refusal is "could not tell", never "not
		// supported".
		return fmt.Errorf("probe %s: %w", LiveFramesFeature, err)
	}
}
