package xdpbench

import (
	"reflect"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestXDPMDLayout: xdpMD, the context of XDP test runs, has the running
// kernel's struct xdp_md layout.
func TestXDPMDLayout(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	kconfig.SkipOrFail(t, err, "CONFIG_DEBUG_INFO_BTF")
	testutils.CheckStructLayout(t, spec, "xdp_md", reflect.TypeFor[xdpMD]())
}
