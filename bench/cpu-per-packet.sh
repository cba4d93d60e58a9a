#!/bin/bash
# cpu-per-packet.sh: the CPU time a capture process spends per packet
# (user + system, from /proc/PID/stat) while a UDP flood of 64-byte
# payloads leaves a veth, captured at tc egress by bpfcap with its default
# settings, by bpfcap with GOMAXPROCS=2 (the runtime's choice on this
# machine) and by tcpdump -w, unpinned, files on /dev/shm, in one run.
# Kernel work (BPF programs, tcpdump's tap) is not counted here: make
# bench-rate counts it alike for both tools.
#
#   bench/cpu-per-packet.sh [BPFCAP_BINARY] [SECONDS]
set -euo pipefail
bin=${1:-bin/bpfcap}
secs=${2:-6}
a=bcpu-a$$ b=bcpu-b$$
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; rm -f /dev/shm/bcpu$$.*; }
trap cleanup EXIT
ip netns add "$a"; ip netns add "$b"
ip link add bcpu0 netns "$a" type veth peer name bcpu1 netns "$b"
ip -n "$a" addr add 10.78.0.1/24 dev bcpu0; ip -n "$b" addr add 10.78.0.2/24 dev bcpu1
ip -n "$a" link set bcpu0 up; ip -n "$b" link set bcpu1 up
ip netns exec "$a" ping -c1 -W1 10.78.0.2 >/dev/null

# run NAME CMD...: capture with CMD (in the sender's namespace) during the
# flood and print its CPU per written packet.
run() {
	local name=$1; shift
	ip netns exec "$a" "$@" 2>/dev/shm/bcpu$$.err & local pid=$!
	sleep 2
	local t0; t0=$(awk '{print $14+$15}' /proc/$pid/stat)
	ip netns exec "$a" python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b = b'x' * 64
end = time.time() + $secs
while time.time() < end:
    for i in range(1000):
        s.sendto(b, ('10.78.0.2', 9999))
"
	sleep 0.5
	local t1; t1=$(awk '{print $14+$15}' /proc/$pid/stat)
	kill -INT $pid; wait $pid || true
	local n; n=$(tcpdump -r /dev/shm/bcpu$$.out 2>/dev/null | wc -l)
	local hz; hz=$(getconf CLK_TCK)
	echo "$name: $n packets, $(( (t1 - t0) * 1000000000 / hz / (n > 0 ? n : 1) )) ns/pkt"
}
run "bpfcap (one processor once attached)" "$bin" tc dev bcpu0 egress -w /dev/shm/bcpu$$.out 'udp dst port 9999'
run "bpfcap GOMAXPROCS=2" env GOMAXPROCS=2 "$bin" tc dev bcpu0 egress -w /dev/shm/bcpu$$.out 'udp dst port 9999'
run "tcpdump -w" tcpdump -i bcpu0 -Q out -w /dev/shm/bcpu$$.out 'udp dst port 9999'
