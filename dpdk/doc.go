// Package dpdk captures packets from a running DPDK application (the
// "primary" process, e.g. a router or dpdk-testpmd) by joining it as a DPDK
// secondary process and enabling DPDK's packet-capture framework (pdump) on
// its ports. The tcpdump filter is compiled by libpcap, converted to DPDK
// eBPF with rte_bpf_convert and evaluated inside the dataplane; DPDK builds
// the pcapng Enhanced Packet Blocks in the primary, and this package only
// fixes their interface id and timestamp (in C, per burst) before handing
// them to the writer in bulk.
//
// Everything except the pure-Go pcapng decoding needs the build tag `dpdk`
// and libdpdk (pkg-config libdpdk, DPDK 22.11): `make build-dpdk` builds
// bpfcap with it. A process can attach to one primary once (DPDK allows one
// EAL per process).
package dpdk
