# Tracing hooks: hook specs, BTF resolution, the fallback
# chain, bpfcap trace and bpfcap list. `make unit` runs these too; these
# targets run just them (as root: they load and attach BPF programs).
#   make test-trace          # all trace tests (host: needs iptables, tshark, tcpdump, bpftool)
#   make test-trace-guest    # the ones that run in minimal VM guests too
#   make bench-trace         # veth flood: capture rate, hook cost, tcpdump as peer
#   make rss-trace           # VmRSS of bpfcap trace during a one-minute flood
.PHONY: test-trace test-trace-guest bench-trace rss-trace

test-trace: deps
	$(GO) test $(TESTFLAGS) -run 'Trace|List|Parse|LooksLike' ./probe/ ./cmd/bpfcap/

# The tests marked testutils.RunsInGuests, run by the matrix harness on
# this machine (the guests run the same set).
test-trace-guest: deps
	$(GO) run ./internal/vmtest -kernels host -pkgs ./probe,./cmd/bpfcap

bench-trace: deps
	$(GO) test -run '^$$' -bench TraceVethFlood -benchtime 1x ./bench/trace/

rss-trace: deps
	bench/trace/rss.sh
