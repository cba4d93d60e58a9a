#!/usr/bin/env bash
# bpfcap filter demo (the last part of `make demo`):
# compiles a tcpdump filter with libpcap, translates it to eBPF, runs it in
# the kernel on every packet of a shipped capture (BPF_PROG_TEST_RUN), and
# shows the matching packets with tcpdump. Run by `make demo`, as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=bin/bpfcap
in=testdata/filter-demo.pcap
expr='tcp port 80'
if [ ! -x "$bin" ]; then
	echo "demo: $bin is missing: run make build (or make demo)" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: loading BPF programs needs root: sudo make demo" >&2
	exit 1
fi
out=$(mktemp /tmp/bpfcap-demo.XXXXXX.pcapng)
trap 'rm -f "$out"' EXIT

echo "== the capture: tcpdump -nr $in"
tcpdump -nr "$in" 2>/dev/null
echo
echo "== $bin filter -d '$expr' (libpcap's cBPF, then our eBPF)"
"$bin" filter -d "$expr" | head -n 30
echo "   ..."
echo
echo "== $bin filter -r $in -w $out '$expr'"
"$bin" filter -r "$in" -w "$out" "$expr"
echo
echo "== tcpdump -nr $out (the packets the kernel matched)"
tcpdump -nr "$out" 2>/dev/null
echo
echo "== the same filter in tcpdump, for comparison: tcpdump -nr $in '$expr'"
tcpdump -nr "$in" "$expr" 2>/dev/null
