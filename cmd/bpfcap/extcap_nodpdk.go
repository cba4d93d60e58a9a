//go:build !dpdk

package main

// platformExtcapInterfaces returns the extcap interfaces that need
// optional libraries: none in a binary built without DPDK (`make
// build-dpdk` builds one that offers bpfcap-dpdk).
func platformExtcapInterfaces() []extcapInterface { return nil }
