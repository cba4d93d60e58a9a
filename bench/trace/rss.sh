#!/usr/bin/env bash
# rss.sh: resident memory (VmRSS) of `bpfcap trace` at default buffer sizes
# while a UDP flood crosses a veth pair for DURATION seconds (default 60).
# Prints the peak and the median of the samples after the first 10 s.
#
#   sudo bench/trace/rss.sh            # or: DURATION=20 bench/trace/rss.sh
set -euo pipefail
DURATION=${DURATION:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
h=bpfrss-h$$ p=bpfrss-p$$ vh=brh$$ vp=brp$$
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	ip netns del "$h" 2>/dev/null || true
	ip netns del "$p" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/bpfcap" ./cmd/bpfcap && go build -o "$work/flood" ./bench/trace/flood)

ip netns add "$h"
ip netns add "$p"
ip -n "$h" link add "$vh" type veth peer name "$vp" netns "$p"
ip -n "$h" addr add 10.98.0.1/24 dev "$vh"
ip -n "$p" addr add 10.98.0.2/24 dev "$vp"
ip -n "$h" link set "$vh" up
ip -n "$p" link set "$vp" up
ip netns exec "$h" ping -c1 -W2 10.98.0.2 >/dev/null

# The capture: every flood packet matches; the output goes down a pipe.
mkfifo "$work/out"
"$work/bpfcap" trace tracepoint:net:net_dev_xmit proto eth "udp dst port 9999" >"$work/out" 2>"$work/stderr" &
bpfcap=$!
pids+=("$bpfcap")
# The pcapng header arrives once the hook is attached: that is readiness.
# One reader keeps the pipe open throughout (a gap would end bpfcap with
# EPIPE, as a closed pipe should).
{ head -c 4 >"$work/ready"; cat >/dev/null; } <"$work/out" &
pids+=("$!")
for ((i = 0; i < 200; i++)); do
	[ -s "$work/ready" ] && break
	kill -0 "$bpfcap" 2>/dev/null || break
	sleep 0.1
done
[ -s "$work/ready" ] || { echo "bpfcap did not start:" >&2; cat "$work/stderr" >&2; exit 1; }

ip netns exec "$h" "$work/flood" -dst 10.98.0.2 -port 9999 -duration "${DURATION}s" >"$work/flood.out" &
flood=$!
pids+=("$flood")

samples=()
for ((i = 0; i < DURATION; i++)); do
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$bpfcap/status" 2>/dev/null) ||
		{ echo "bpfcap ended early:" >&2; cat "$work/stderr" >&2; exit 1; }
	samples+=("$rss")
	sleep 1
done
wait "$flood"
kill -INT "$bpfcap"
wait "$bpfcap" || true

peak=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
median=$(printf '%s\n' "${samples[@]:10}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "flood: $(cat "$work/flood.out")"
echo "bpfcap stats:"; grep -v '^$' "$work/stderr" | sed 's/^/  /'
echo "VmRSS over ${DURATION}s: peak $((peak / 1024)) MiB ($peak KiB), steady-state median $((median / 1024)) MiB ($median KiB); goal < 64 MiB"
