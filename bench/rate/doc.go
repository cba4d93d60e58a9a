// Package ratebench is the max-rate benchmark of bpfcap's capture paths
// (make bench-rate): for frames with 64 and 1000 bytes of UDP payload, at
// tc egress (bpfcap tc), at tp_btf:net_dev_start_xmit and
// tp_btf:net_dev_xmit (bpfcap trace) and at XDP entry (bpfcap xdp dev), it
// steps the offered rate of a rate-limited flood
// up and finds the highest rate at which bpfcap, and tcpdump -w on the same
// veth in the same run, write every packet to a file on /dev/shm; and the
// CPU each spends per captured packet: the process's own time plus the
// kernel work done for it in the sender's softirqs, counted alike for both
// (bpfcap's BPF programs' run time from the kernel's statistics, tcpdump's
// packet tap timed between two tracepoints of the transmit path), next to
// the earlier figure that left tcpdump's tap out. BPFCAP_RATE_CPU holds
// both capture processes to the same share of a CPU, so that rates are
// found below what the generator offers. Figures are ratios against
// tcpdump measured in the same run.
//
// net_dev_xmit fires after the driver took the packet, which may be freed
// or reused by then (bpfcap's trace globs pass it over); the bench
// measures it beside net_dev_start_xmit, which fires just before the
// driver. At both, a packet is lost only if it reached net_dev_start_xmit:
// on a loaded machine, with bpfcap running, "out" counted up to 1.5% more
// packets than passed that tracepoint, whose every run a second,
// independent program (tapMeter) counts; bpfcap wrote exactly that count
// in every such step, with no run of its program skipped (recursion
// misses 0). On a quiet machine all three counts agree.
package ratebench
