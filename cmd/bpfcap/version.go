package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/gopacket/gopacket/pcap"
)

// version is bpfcap's version; `make build` sets it from git describe
// (-ldflags "-X main.version=..."), else the module's version is used.
var version = ""

// commit is the git commit bpfcap was built from, set by `make build`
// (-ldflags "-X main.commit=..."), for builds without Go's VCS stamp
// (-buildvcs=false).
var commit = ""

// versionText is what `bpfcap --version` prints, as tcpdump --version
// does: the version, the commit it was built from, the Go toolchain and
// the libpcap bpfcap compiles filters with.
func versionText() string {
	v, rev := version, commit
	if rev == "" {
		rev = "unknown"
	}
	var when string
	modified := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if when != "" {
		rev += " (" + when + ")"
	}
	if modified {
		rev += ", with local changes"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "bpfcap version %s\n", v)
	fmt.Fprintf(&b, "commit %s\n", rev)
	fmt.Fprintf(&b, "Go %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "%s\n", pcap.Version())
	return b.String()
}
