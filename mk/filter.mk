# Filter pipeline: tcpdump expression -> cBPF (libpcap) ->
# eBPF (filter/) proven against libpcap in the kernel. `make unit` runs the
# tests too; these targets run just them (as root: they load BPF programs).
#   make test-filter     # differential test, semantics, splice, CLI
#   make fuzz-filter     # FuzzTranslate for 30 s
#   make bench-filter    # eBPF vs libpcap per packet, as a ratio
.PHONY: test-filter fuzz-filter bench-filter

test-filter: deps
	$(GO) test $(TESTFLAGS) ./filter/...
	$(GO) test $(TESTFLAGS) -run '^TestFilter' ./cmd/bpfcap/

# One worker only, 30 s at most: parallel fuzz workers loading and freeing
# BPF programs once deadlocked this kernel's JIT allocator.
fuzz-filter: deps
	$(GO) test -run '^$$' -fuzz '^FuzzTranslate$$' -parallel 1 -fuzztime 30s ./filter/

bench-filter: deps
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkFilter$$' -benchtime 3x ./filter/
