package xdpbench

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// testRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr.
type testRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

// LiveRun runs prog over n live frames made from frame, arriving on
// ifindex (BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18):
// the kernel acts on each verdict, so XDP_TX frames leave through ifindex.
// It returns the kernel's own measure of the time per frame: building the
// frame, running prog and acting on its verdict (transmitting, for
// XDP_TX), without the run's setup. cilium/ebpf's Program.Run does not
// return that duration, hence the raw syscall.
func LiveRun(prog *ebpf.Program, frame []byte, ifindex int, n, batch uint32) (time.Duration, error) {
	ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	attr := testRunAttr{
		progFD:     uint32(prog.FD()),
		dataSizeIn: uint32(len(frame)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&frame[0]))),
		repeat:     n,
		ctxSizeIn:  uint32(unsafe.Sizeof(ctx)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&ctx))),
		flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		batchSize:  batch,
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, fmt.Errorf("live-frames test run: %w", errno)
		}
		return time.Duration(attr.duration), nil
	}
}
