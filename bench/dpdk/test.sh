#!/bin/bash
# bench/dpdk/test.sh: what `make test-dpdk` runs. Installs DPDK when
# missing, reserves hugepages, starts dpdk-testpmd (txonly, a null and a
# ring port), runs the dpdk package's tests (which also run the bpfcap
# binary against it and start short-lived primaries of their own), then
# stops testpmd, removes its hugepage files and restores nr_hugepages,
# whether the tests pass or fail.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
GO=${GO:-go}
trap dpdk_teardown EXIT
trap 'exit 130' INT TERM

dpdk_install || { echo "test-dpdk: cannot install DPDK (apt-get install libdpdk-dev dpdk dpdk-dev)" >&2; exit 1; }
$GO vet -tags dpdk ./dpdk/ ./cmd/bpfcap/ || exit 1
dpdk_hugepages_up
dpdk_testpmd_start txonly --txonly-multi-flow || exit 1
BPFCAP_DPDK_TEST=1 BPFCAP_DPDK_PREFIX=$DPDK_PREFIX \
	timeout 600 $GO test -tags dpdk -count=1 -p 1 -timeout 8m ${TESTARGS:-} ./dpdk/
