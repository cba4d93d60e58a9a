# Shared shell helpers for bpfcap's DPDK test and benchmark scripts: DPDK
# packages, hugepages and a dpdk-testpmd primary, each undone on exit.
# Source it, then call dpdk_setup and register dpdk_teardown with trap.

DPDK_PREFIX=${DPDK_PREFIX:-bpfcap-$$}
DPDK_RUNDIR=/var/run/dpdk
DPDK_HUGEPAGES=${DPDK_HUGEPAGES:-512}
_dpdk_old_nr=
_dpdk_mounted=
_dpdk_tp_pid=
_dpdk_tp_fifo=
_dpdk_tp_log=

# dpdk_install installs libdpdk-dev, dpdk and dpdk-dev (testpmd, dumpcap)
# when they are missing.
dpdk_install() {
	if pkg-config --exists libdpdk 2>/dev/null && command -v dpdk-testpmd >/dev/null && command -v dpdk-dumpcap >/dev/null; then
		return 0
	fi
	echo "dpdk: installing libdpdk-dev dpdk dpdk-dev (apt)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q libdpdk-dev dpdk dpdk-dev >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libdpdk-dev dpdk dpdk-dev >/dev/null; }
}

# dpdk_hugepages_up reserves DPDK_HUGEPAGES 2 MiB pages (if fewer are
# reserved) and mounts hugetlbfs on /dev/hugepages (if not mounted).
dpdk_hugepages_up() {
	_dpdk_old_nr=$(cat /proc/sys/vm/nr_hugepages)
	if [ "$_dpdk_old_nr" -lt "$DPDK_HUGEPAGES" ]; then
		echo "$DPDK_HUGEPAGES" >/proc/sys/vm/nr_hugepages
	fi
	if ! grep -q ' /dev/hugepages hugetlbfs ' /proc/mounts; then
		mkdir -p /dev/hugepages
		mount -t hugetlbfs nodev /dev/hugepages
		_dpdk_mounted=1
	fi
}

# dpdk_clean_prefix removes the hugepage and runtime files of a prefix.
dpdk_clean_prefix() {
	rm -f /dev/hugepages/"$1"map_* 2>/dev/null
	rm -rf "${DPDK_RUNDIR:?}/$1" 2>/dev/null
}

# dpdk_hugepages_down undoes dpdk_hugepages_up.
dpdk_hugepages_down() {
	dpdk_clean_prefix "$DPDK_PREFIX"
	if [ -n "$_dpdk_mounted" ]; then
		umount /dev/hugepages 2>/dev/null && _dpdk_mounted=
	fi
	if [ -n "$_dpdk_old_nr" ]; then
		echo "$_dpdk_old_nr" >/proc/sys/vm/nr_hugepages
		_dpdk_old_nr=
	fi
}

# dpdk_testpmd_start MODE [testpmd args...] starts dpdk-testpmd with file
# prefix DPDK_PREFIX, a null and a ring port, in forwarding MODE, and
# waits until it forwards.
dpdk_testpmd_start() {
	local mode=$1
	shift
	_dpdk_tp_fifo=$(mktemp -u /tmp/bpfcap-testpmd-in.XXXXXX)
	_dpdk_tp_log=$(mktemp /tmp/bpfcap-testpmd-log.XXXXXX)
	mkfifo "$_dpdk_tp_fifo"
	# Non-interactive testpmd forwards until a line arrives on stdin: keep
	# the fifo open (fd 9) so it never sees end of file.
	stdbuf -oL dpdk-testpmd -l 0-1 -n 4 --no-pci --file-prefix="$DPDK_PREFIX" --log-level=notice \
		--vdev=net_null0 --vdev=net_ring0 -- --forward-mode="$mode" --total-num-mbufs=8192 "$@" \
		<"$_dpdk_tp_fifo" >"$_dpdk_tp_log" 2>&1 &
	_dpdk_tp_pid=$!
	exec 9>"$_dpdk_tp_fifo"
	local i
	for i in $(seq 300); do
		if grep -q "Press enter to exit" "$_dpdk_tp_log"; then
			return 0
		fi
		if ! kill -0 "$_dpdk_tp_pid" 2>/dev/null; then
			echo "dpdk-testpmd exited:" >&2
			cat "$_dpdk_tp_log" >&2
			_dpdk_tp_pid=
			return 1
		fi
		sleep 0.1
	done
	echo "dpdk-testpmd not ready after 30 s" >&2
	return 1
}

# dpdk_testpmd_stop stops testpmd (newline, then TERM, then KILL). If
# testpmd had died by itself, its log goes to stderr.
dpdk_testpmd_stop() {
	# A dead testpmd leaves the fifo without a reader: writing to it must
	# not kill this script before it cleaned up.
	trap '' PIPE
	if [ -n "$_dpdk_tp_pid" ] && ! kill -0 "$_dpdk_tp_pid" 2>/dev/null; then
		echo "dpdk-testpmd (prefix $DPDK_PREFIX) had exited by itself; its log ends:" >&2
		tail -n 30 "$_dpdk_tp_log" >&2
	fi
	if [ -n "$_dpdk_tp_pid" ]; then
		echo >&9 2>/dev/null
		exec 9>&- 2>/dev/null
		local i
		for i in $(seq 50); do
			kill -0 "$_dpdk_tp_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -TERM "$_dpdk_tp_pid" 2>/dev/null && sleep 1
		kill -KILL "$_dpdk_tp_pid" 2>/dev/null
		wait "$_dpdk_tp_pid" 2>/dev/null
		_dpdk_tp_pid=
	fi
	rm -f "$_dpdk_tp_fifo" "$_dpdk_tp_log"
	dpdk_clean_prefix "$DPDK_PREFIX"
}

# dpdk_teardown undoes everything; use it in `trap dpdk_teardown EXIT`.
dpdk_teardown() {
	dpdk_testpmd_stop
	dpdk_hugepages_down
}
