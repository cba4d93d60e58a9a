//go:build dpdk

package dpdk

// #include "dpdkcap.h"
import "C"

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// Port is one ethdev port of the primary.
type Port struct {
	// ID is the DPDK port id.
	ID uint16
	// Name is the device name, e.g. "net_null0" or "0000:3b:00.0".
	Name string
	// Driver is the poll-mode driver, e.g. "net_null".
	Driver string
	// IfName is the kernel interface behind the port, if any.
	IfName string
	// MAC is the port's address (nil if unknown).
	MAC net.HardwareAddr
	// Speed is the link speed in bits per second (0: unknown or down).
	Speed uint64
	// LinkUp says whether the link is up.
	LinkUp bool
	// RxQueues and TxQueues are the configured queue counts.
	RxQueues, TxQueues int
}

// Ports lists the primary's ports.
func (p *Process) Ports() ([]Port, error) {
	var ports []Port
	err := p.do(func() error {
		for id := C.bc_next_port(-1); id >= 0; id = C.bc_next_port(id) {
			port, err := portInfo(uint16(id))
			if err != nil {
				return err
			}
			ports = append(ports, port)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ports, nil
}

func portInfo(id uint16) (Port, error) {
	var info C.struct_bc_port_info
	if rc := C.bc_get_port_info(C.uint16_t(id), &info); rc < 0 {
		return Port{}, fmt.Errorf("read DPDK port %d: %w", id, syscall.Errno(-rc))
	}
	port := Port{
		ID:       id,
		Name:     C.GoString(&info.name[0]),
		Driver:   C.GoString(&info.driver[0]),
		IfName:   C.GoString(&info.ifname[0]),
		Speed:    uint64(info.speed_mbps) * 1e6,
		LinkUp:   info.link_up != 0,
		RxQueues: int(info.nb_rx_queues),
		TxQueues: int(info.nb_tx_queues),
	}
	if info.has_mac != 0 {
		port.MAC = net.HardwareAddr(C.GoBytes(unsafe.Pointer(&info.mac[0]), 6))
	}
	return port, nil
}

// FindPort returns the port named name (a device name such as
// "net_null0", or a port id). ErrNoPort lists the ports there are.
func FindPort(ports []Port, name string) (Port, error) {
	for _, p := range ports {
		if p.Name == name {
			return p, nil
		}
	}
	if id, err := strconv.ParseUint(name, 10, 16); err == nil {
		for _, p := range ports {
			if uint64(p.ID) == id {
				return p, nil
			}
		}
	}
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = fmt.Sprintf("%s (port %d)", p.Name, p.ID)
	}
	have := "it has no ports"
	if len(names) > 0 {
		have = "it has " + strings.Join(names, ", ")
	}
	return Port{}, fmt.Errorf("port %q: %w in the primary (%s): see `bpfcap dpdk list`", name, ErrNoPort, have)
}
