//go:build dpdk

package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/bpfcap/bpfcap/dpdk"
)

// platformExtcapInterfaces returns the extcap interfaces that need
// optional libraries. This binary has DPDK: bpfcap-dpdk captures from the
// ports of a running DPDK application, through `bpfcap dpdk`.
func platformExtcapInterfaces() []extcapInterface {
	return []extcapInterface{{
		name:        "bpfcap-dpdk",
		display:     "bpfcap: DPDK ports",
		dlt:         ethernetDLT,
		filterProto: "eth",
		args: []extcapArg{
			{call: "ports", display: "Ports", typ: "string", required: true, placeholder: "0 1",
				tooltip: "DPDK port names or ids separated by spaces (bpfcap dpdk list shows them)"},
			{call: "file-prefix", display: "File prefix", typ: "string", def: dpdk.DefaultFilePrefix,
				tooltip: "the DPDK application's --file-prefix", validation: `^[^\s]+$`},
			{call: "direction", display: "Direction", typ: "radio", tooltip: "received (rx), transmitted (tx) or both",
				values: []extcapValue{{value: "both", display: "both", def: true}, {value: "rx", display: "rx"}, {value: "tx", display: "tx"}}},
			snaplenArg, logArg,
		},
		command: func(v extcapValues) ([]string, []string, error) {
			ports := strings.Fields(v.get("ports"))
			if len(ports) == 0 {
				return nil, nil, errors.New("--ports: name at least one DPDK port (bpfcap dpdk list shows them)")
			}
			snap, err := v.number("snaplen", 1, 65536)
			if err != nil {
				return nil, nil, err
			}
			flags := []string{"dpdk", "--file-prefix", v.get("file-prefix"), "-s", strconv.Itoa(snap)}
			return flags, append(ports, v.get("direction")), nil
		},
	}}
}
