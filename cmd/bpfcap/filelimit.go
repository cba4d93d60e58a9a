package main

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// raiseFileLimit lifts the open-file limit, soft and hard, to the system's
// most (fs.nr_open), as root may: a capture at hundreds or thousands of
// hooks holds a program and a link per hook, past the usual hard limit of
// 4096. It returns the limit now in force; failing to raise it is no
// error (the hooks past the limit are counted as refused).
func raiseFileLimit() uint64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	most := uint64(1 << 20)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			most = n
		}
	}
	if lim.Cur >= most {
		return lim.Cur
	}
	want := unix.Rlimit{Cur: most, Max: max(lim.Max, most)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
		// Not root (or no CAP_SYS_RESOURCE): up to the hard limit.
		want = unix.Rlimit{Cur: lim.Max, Max: lim.Max}
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &want) != nil {
			return lim.Cur
		}
	}
	return want.Cur
}
