#!/bin/bash
# bench/dpdk/bench.sh: bpfcap dpdk vs dpdk-dumpcap, capturing the same
# dpdk-testpmd (txonly, 64-byte UDP frames on net_null0) in the same run,
# one after the other, writing pcapng to tmpfs (/dev/shm). Prints packets
# written per second for each and the ratio bpfcap/dumpcap (median of
# ROUNDS alternating runs of SECONDS each).
#
#   bench/dpdk/bench.sh [BPFCAP_BINARY]     (make bench-dpdk builds it)
#
# testpmd busy-polls a CPU: it runs only while the benchmark runs and is
# stopped, and hugepages released, on every exit path.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
BPFCAP=${1:-bin/bpfcap}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
OUT=/dev/shm/bpfcap-dpdk-bench-$$
trap 'rm -f "$OUT".*; dpdk_teardown' EXIT
trap 'exit 130' INT TERM

[ -x "$BPFCAP" ] || { echo "bench: $BPFCAP not found: run make build-dpdk" >&2; exit 2; }
dpdk_install || exit 2
dpdk_hugepages_up
dpdk_testpmd_start txonly || exit 2

# dpdk-dumpcap is linked like any pkg-config DPDK application, so its
# mempool ops table is ordered differently from testpmd's (DPDK bug 1073)
# and testpmd would fail to allocate every packet it copies for it. bpfcap
# aligns the tables itself and says by how much they differ (-v); shift
# dumpcap's table by as many entries by preloading mempool drivers that
# register that many ops and need no bus (bucket: 1, stack: 2). Preloading
# testpmd's own first driver (mempool_dpaa) also aligns it, but brings the
# dpaa bus along, which made testpmd exit ("process_portal_map(): Unknown
# error -19").
pmds=$(dirname "$(ldd "$(command -v dpdk-testpmd)" | awk '/librte_mempool_dpaa/ {print $3}')")
notes=$("$BPFCAP" dpdk --file-prefix "$DPDK_PREFIX" net_null0 -c 1 -v -w /dev/null 2>&1)
shift_by=$(echo "$notes" | sed -n 's/.*index \([0-9]*\) here, \([0-9]*\) in the primary.*/\2 \1/p' | head -1 | awk '{print $1 - $2}')
DUMPCAP_PRELOAD=
case "$shift_by" in
0) ;;
1) DUMPCAP_PRELOAD=$pmds/librte_mempool_bucket.so.23 ;;
2) DUMPCAP_PRELOAD=$pmds/librte_mempool_stack.so.23 ;;
3) DUMPCAP_PRELOAD=$pmds/librte_mempool_bucket.so.23:$pmds/librte_mempool_stack.so.23 ;;
*) echo "bench: cannot align dpdk-dumpcap's mempool ops with testpmd's (shift '${shift_by}'): its figures will be 0" >&2 ;;
esac
echo "bench: mempool ops tables differ by ${shift_by:-?} entries; dpdk-dumpcap runs with LD_PRELOAD=${DUMPCAP_PRELOAD:-none}" >&2

run_bpfcap() {
	local err
	[ -n "${BENCH_VERIFY:-}" ] && trap 'capinfos -c -M "$OUT.bpfcap.pcapng" >&2; trap - RETURN' RETURN
	err=$("$BPFCAP" dpdk --file-prefix "$DPDK_PREFIX" net_null0 --duration "${SECONDS_PER_RUN}s" -s 2176 \
		-w "$OUT.bpfcap.pcapng" 2>&1 >/dev/null)
	echo "$err" | sed -n 's/^net_null0:.* captured \([0-9]*\),.*/\1/p'
	echo "$err" | grep -v 'seen\|dpdk accepted\|capturing at' >&2
}

run_dumpcap() {
	local err
	err=$(LD_PRELOAD=$DUMPCAP_PRELOAD dpdk-dumpcap --file-prefix="$DPDK_PREFIX" -i net_null0 \
		-a "duration:$SECONDS_PER_RUN" -w "$OUT.dumpcap.pcapng" 2>&1 >/dev/null)
	# "Packets received/dropped on interface 'net_null0': N/M": received
	# counts every copy pdump made, dropped those lost before the file.
	echo "$err" | sed -n "s/^Packets received\/dropped on interface 'net_null0': \([0-9]*\)\/\([0-9]*\).*/\1 \2/p" |
		awk '{print $1 - $2}'
	[ -n "${BENCH_VERIFY:-}" ] && capinfos -c -M "$OUT.dumpcap.pcapng" >&2
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# check_primary restarts testpmd if the run before ($1) brought it down
# (seen with dpdk-dumpcap, which frees its ring and pool right after
# rte_pdump_disable), so one crash does not void the other rounds.
check_primary() {
	if ! kill -0 "$_dpdk_tp_pid" 2>/dev/null; then
		echo "bench: dpdk-testpmd died during the $1 run; restarting it" >&2
		crashes=$((crashes + 1))
		dpdk_testpmd_stop
		dpdk_testpmd_start txonly || exit 2
	fi
}

crashes=0
b_runs=() d_runs=()
for r in $(seq "$ROUNDS"); do
	b=$(run_bpfcap)
	check_primary bpfcap
	d=$(run_dumpcap)
	check_primary dpdk-dumpcap
	bsz=$(stat -c %s "$OUT.bpfcap.pcapng" 2>/dev/null || echo 0)
	dsz=$(stat -c %s "$OUT.dumpcap.pcapng" 2>/dev/null || echo 0)
	echo "round $r: bpfcap ${b:-?} packets (${bsz} bytes), dumpcap ${d:-?} packets (${dsz} bytes) in ${SECONDS_PER_RUN}s" >&2
	rm -f "$OUT".*
	b_runs+=("${b:-0}") d_runs+=("${d:-0}")
done
bm=$(printf '%s\n' "${b_runs[@]}" | median)
dm=$(printf '%s\n' "${d_runs[@]}" | median)
[ "$crashes" -gt 0 ] && echo "bench: dpdk-testpmd crashed $crashes time(s) (see above which tool's run)" >&2
awk -v b="$bm" -v d="$dm" -v s="$SECONDS_PER_RUN" 'BEGIN {
	printf "bpfcap dpdk:  %.0f packets/s written to /dev/shm\n", b / s
	printf "dpdk-dumpcap: %.0f packets/s written to /dev/shm\n", d / s
	if (d > 0) printf "ratio bpfcap/dumpcap: %.2fx (target >= 1.5x)\n", b / d
	else print "ratio: dpdk-dumpcap captured nothing"
}'
