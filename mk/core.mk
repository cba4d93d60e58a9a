# Capture core: pcapng writer/reader, ring transport, the
# common hook loader and the session driver. `make unit` runs these too;
# this target runs just them (as root: hook/ loads BPF programs).
#   make test-core
.PHONY: test-core bench-core

test-core: deps
	$(GO) test $(TESTFLAGS) ./pcapng/ ./perfring/ ./hook/ .
	$(GO) test $(TESTFLAGS) -run '^Test(ParseKeywords|RingOptionsFromFlags|LivePipe|ClosedPipe|WriteFile|SummaryGolden|SummaryPrinter|DropPrivileges|TerminalSummaries|LiveCounter|PrintStats)$$' ./cmd/bpfcap/

# Writer and decoder costs (short; run on a quiet machine).
bench-core: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s ./pcapng/ ./perfring/ ./hook/
