//go:build dpdk

package dpdk

// #cgo pkg-config: libdpdk
// #cgo CFLAGS: -O2 -DALLOW_EXPERIMENTAL_API -Wno-deprecated-declarations
// #include "dpdkcap.h"
import "C"
