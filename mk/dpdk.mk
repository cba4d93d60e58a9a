# DPDK source: `bpfcap dpdk` is built only with the dpdk tag, so
# the default binary needs no DPDK. These targets install DPDK (apt) when
# it is missing.

.PHONY: build-dpdk test-dpdk bench-dpdk

# bin/bpfcap with the dpdk command.
build-dpdk: deps
	@. bench/dpdk/lib.sh && dpdk_install
	$(GO) build -tags dpdk -o $(BIN) ./cmd/bpfcap

# Integration tests against a dpdk-testpmd the script starts and stops
# (hugepages reserved for the run and released after, pass or fail).
test-dpdk: deps
	GO=$(GO) bench/dpdk/test.sh

# bpfcap dpdk vs dpdk-dumpcap on the same testpmd, to /dev/shm, as a ratio.
bench-dpdk: build-dpdk
	bench/dpdk/bench.sh $(BIN)

TEST_TARGETS += test-dpdk
