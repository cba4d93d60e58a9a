# XDP and tc capture: the xdpcap hook (bpf/xdpcap.h, xdpcap/),
# the example firewall (examples/firewall), bpfcap xdp and bpfcap tc.
# `make unit` runs these tests too; these targets run just them (as root).
#   make test-xdp          # all xdp/tc tests (host: tshark, tcpdump, go toolchain)
#   make test-xdp-guest    # the ones that also run in minimal VM guests (no tshark/tcpdump)
#   make bench-xdp         # veth flood: bpfcap xdp vs tcpdump -w; hook cost vs no hook when forwarding and per program run (ratios)
.PHONY: test-xdp test-xdp-guest bench-xdp

test-xdp: deps
	$(GO) test $(TESTFLAGS) ./xdpcap/ ./tccap/ ./bench/xdp/
	$(GO) test $(TESTFLAGS) -run '^Test(XDP|TC)' ./cmd/bpfcap/

# The tests marked testutils.RunsInGuests, run by the matrix harness on
# this machine (the guests run the same set).
test-xdp-guest: deps
	$(GO) run ./internal/vmtest -kernels host -pkgs ./xdpcap,./tccap,./bench/xdp,./cmd/bpfcap

# About two minutes: capture rates at rising flood rates (CPU0 floods, CPU1
# captures, files on /dev/shm), the hook's cost on XDP_TX forwarding (live
# frames) and on the program alone (BPF_PROG_TEST_RUN).
bench-xdp: deps
	$(GO) test -count=1 -timeout 20m -run '^$$' -bench 'FloodRate|XDPCaptureVsTcpdump|XDPHookCost|XDPForwardCost' -benchtime 1x ./bench/xdp/
	$(GO) test -count=1 -run '^$$' -bench HookCost -benchtime 3x ./xdpcap/
