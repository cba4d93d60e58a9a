package main

import (
	"github.com/spf13/pflag"

	"github.com/bpfcap/bpfcap/filter"
)

// netmaskFlagUsage is the help of --netmask on the capture commands.
const netmaskFlagUsage = "IPv4 `netmask` for `ip broadcast` (default: the capture device's, as tcpdump takes it; 0 without one)"

// addNetmaskFlag adds --netmask to a capture command's flags.
func addNetmaskFlag(fs *pflag.FlagSet, v *string) {
	fs.StringVar(v, "netmask", "", netmaskFlagUsage)
}

// liveNetmask returns the netmask a live capture compiles its filter
// with: --netmask when given, else the IPv4 netmask of dev as libpcap's
// pcap_lookupnet finds it (a live tcpdump's choice), else 0 (no device,
// or one without an IPv4 address: tcpdump then uses 0 too).
func liveNetmask(flag, dev string) (uint32, error) {
	if flag != "" {
		return parseNetmask(flag)
	}
	if dev == "" {
		return 0, nil
	}
	m, err := filter.DeviceNetmask(dev)
	if err != nil {
		return 0, nil
	}
	return m, nil
}
