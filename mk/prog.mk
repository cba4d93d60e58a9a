# bpfcap prog: bpf/bpfcap.h, the examples in examples/progcap,
# the progcap package and `bpfcap prog`. `make unit` runs these tests too;
# these targets run just them (as root).
#   make test-prog         # all prog tests (host: tshark)
#   make test-prog-guest   # the ones that also run in minimal VM guests (no tshark)
#   make bench-prog        # cost of a disabled bpfcap_output(): ratio to the program without it
.PHONY: test-prog test-prog-guest bench-prog

test-prog: deps
	$(GO) test $(TESTFLAGS) ./progcap/ ./examples/progcap/
	$(GO) test $(TESTFLAGS) -run 'InterfaceAdder' .
	$(GO) test $(TESTFLAGS) -run '^TestProg' ./cmd/bpfcap/

# The tests marked testutils.RunsInGuests, run by the matrix harness on
# this machine (the guests run the same set). Not TestOutputCostWithinNoise:
# a timing bound means nothing under qemu TCG.
test-prog-guest: deps
	$(GO) run ./internal/vmtest -kernels host -pkgs ./progcap,./cmd/bpfcap,.

bench-prog: deps
	$(GO) test -count=1 -run '^$$' -bench OutputCost -benchtime 3x ./progcap/
