#!/usr/bin/env bash
# make demo: a live capture on two network namespaces this script creates.
#
#   bpfcap-demo-a (10.203.0.1) <-veth-> bpfcap-demo-b (10.203.0.2)
#
# In bpfcap-demo-b a netfilter rule drops TCP to port 6666. bpfcap attaches
# to the kernel's drop point (`kprobe:kfree_skb:arg1`, falling back to
# whatever this kernel offers), captures the dropped SYNs with their drop
# reason, and tshark reads the pcapng it wrote. Then bpfcap captures at tc
# on the veth while a ping crosses it, and inside the example XDP firewall
# (examples/firewall) through its xdpcap hook, with each packet's verdict,
# and the packets an XDP program of its author's emits with bpfcap_output()
# (examples/progcap, bpf/bpfcap.h), with the ids it chose.
# Everything is removed on exit. Last, scripts/demo-filter.sh runs a
# translated filter in the kernel over a shipped capture file.
set -euo pipefail
cd "$(dirname "$0")/.."

BPFCAP=${BPFCAP:-bin/bpfcap}
A=bpfcap-demo-a B=bpfcap-demo-b
out=$(mktemp -d /tmp/bpfcap-demo.XXXXXX)
hookpin=/sys/fs/bpf/bpfcap-demo-hook
progpin=/sys/fs/bpf/bpfcap-demo-prog
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -f "$hookpin" "$progpin"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: bpfcap needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN); run: sudo make demo" >&2
	exit 1
fi

# wait_ready FILE PID: wait until bpfcap says it is capturing (its
# "capturing at" line on stderr), or fail if it exits first.
wait_ready() {
	for _ in $(seq 100); do
		grep -q 'capturing at' "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || { cat "$1" >&2; return 1; }
		sleep 0.1
	done
	echo "demo: bpfcap did not start in 10 s" >&2
	cat "$1" >&2
	return 1
}

echo "== creating namespaces $A and $B joined by a veth pair"
cleanup
ip netns add "$A"
ip netns add "$B"
ip -n "$A" link add demo-a type veth peer name demo-b netns "$B"
ip -n "$A" addr add 10.203.0.1/24 dev demo-a
ip -n "$B" addr add 10.203.0.2/24 dev demo-b
ip -n "$A" link set demo-a up
ip -n "$B" link set demo-b up
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip netns exec "$B" iptables -A INPUT -p tcp --dport 6666 -j DROP

echo
echo "== bpfcap trace kprobe:kfree_skb:arg1 proto ip 'tcp port 6666' -c 3"
"$BPFCAP" trace kprobe:kfree_skb:arg1 proto ip -c 3 --duration 20s -w "$out/drops.pcapng" 'tcp port 6666' 2>"$out/trace.err" &
pid=$!
pids+=("$pid")
wait_ready "$out/trace.err" "$pid"
for _ in 1 2 3; do
	ip netns exec "$A" nc -z -w 1 10.203.0.2 6666 >/dev/null 2>&1 || true
done
wait "$pid"
cat "$out/trace.err"
echo "-- tshark reads what bpfcap wrote (the interface is the hook; the comment holds drop reason, device, process, netns):"
tshark -r "$out/drops.pcapng" -T fields -e frame.number -e ip.src -e ip.dst -e tcp.dstport -e frame.interface_name -e frame.comment \
	-E separator=' | ' 2>/dev/null

echo
echo "== bpfcap tc dev demo-a both icmp -c 4 (ping 10.203.0.2, in namespace $A)"
ip netns exec "$A" "$BPFCAP" tc dev demo-a both -c 4 --duration 20s -w "$out/tc.pcapng" icmp 2>"$out/tc.err" &
pid=$!
pids+=("$pid")
wait_ready "$out/tc.err" "$pid"
ip netns exec "$A" ping -c 2 -i 0.2 -W 1 10.203.0.2 >/dev/null
wait "$pid"
cat "$out/tc.err"
echo "-- tcpdump reads it:"
tcpdump -nn -r "$out/tc.pcapng" 2>/dev/null

echo
echo "== bpfcap xdp PIN -c 4: the example XDP firewall on demo-b passes UDP 53 and drops UDP 9"
go build -o bin/xdpfirewall ./examples/firewall/cmd/xdpfirewall
# nsenter keeps our mounts (bpffs), unlike ip netns exec.
nsenter --net=/run/netns/"$B" bin/xdpfirewall -dev demo-b -hook "$hookpin" -rule 53=pass -rule 9=drop 2>"$out/fw.err" &
fwpid=$!
pids+=("$fwpid")
for _ in $(seq 100); do [ -e "$hookpin" ] && break; kill -0 "$fwpid" 2>/dev/null || break; sleep 0.1; done
[ -e "$hookpin" ] || { echo "demo: the example firewall did not start" >&2; cat "$out/fw.err" >&2; exit 1; }
"$BPFCAP" xdp "$hookpin" -c 4 --duration 20s -w "$out/xdp.pcapng" udp 2>"$out/xdp.err" &
pid=$!
pids+=("$pid")
wait_ready "$out/xdp.err" "$pid"
for port in 53 9 53 9; do
	echo demo | ip netns exec "$A" nc -u -w 0 10.203.0.2 "$port" || true
done
wait "$pid"
cat "$out/xdp.err"
echo "-- tshark shows each packet's XDP verdict (1 = drop, 2 = pass) and direction (1 = in):"
tshark -r "$out/xdp.pcapng" -T fields -e frame.number -e ip.dst -e udp.dstport -e frame.verdict.ebpf_xdp -e frame.packet_flags_direction -e frame.interface_name -e frame.comment \
	-E separator=' | ' 2>/dev/null
kill "$fwpid" 2>/dev/null || true
wait "$fwpid" 2>/dev/null || true

echo
echo "== bpfcap prog pinned PIN -c 4: an XDP program emits UDP 53 (id 0x35) and UDP 9 (id 0x9, then dropped) with bpfcap_output()"
go build -o bin/progcapxdp ./examples/progcap/cmd/progcapxdp
nsenter --net=/run/netns/"$B" bin/progcapxdp -dev demo-b -pin "$progpin" -rule 53=0x35 -rule 9=0x9:drop 2>"$out/progcapxdp.err" &
ppid=$!
pids+=("$ppid")
for _ in $(seq 100); do [ -e "$progpin" ] && break; kill -0 "$ppid" 2>/dev/null || break; sleep 0.1; done
[ -e "$progpin" ] || { echo "demo: the example program did not start" >&2; cat "$out/progcapxdp.err" >&2; exit 1; }
"$BPFCAP" prog pinned "$progpin" -c 4 --duration 20s -w "$out/prog.pcapng" 2>"$out/prog.err" &
pid=$!
pids+=("$pid")
wait_ready "$out/prog.err" "$pid"
for port in 53 9 53 9; do
	echo demo | ip netns exec "$A" nc -u -w 0 10.203.0.2 "$port" || true
done
wait "$pid"
cat "$out/prog.err"
echo "-- tshark shows the id each packet was emitted with (frame.packet_id):"
tshark -r "$out/prog.pcapng" -T fields -e frame.number -e ip.dst -e udp.dstport -e frame.packet_id -e frame.interface_name \
	-E separator=' | ' 2>/dev/null
kill "$ppid" 2>/dev/null || true
wait "$ppid" 2>/dev/null || true

echo
echo "demo: files kept in $out"
echo
scripts/demo-filter.sh
