# bpfcap: the two commands a new machine needs are `make demo` and `make test`.
# Both install what they need (scripts/deps.sh) before doing anything else.

GO        ?= go
BIN       := bin/bpfcap
# What `bpfcap --version` says (Go adds the commit from git by itself).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
# Privileged tests run as root; -p 1 keeps packages from racing for the
# kernel (netns, veths, pinned maps) and from loading programs in parallel.
TESTFLAGS ?= -count=1 -p 1 -timeout 30m

# Extra suites that mk/*.mk files add to `make test` (vmtest, dpdk, ...).
# They are included here, before the rules that use TEST_TARGETS.
TEST_TARGETS :=
.DEFAULT_GOAL := all
include $(wildcard mk/*.mk)

.PHONY: all deps build man generate generate-check vet fmt-check unit test demo clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN) ./cmd/bpfcap

# The manual page, generated from the commands: man -l bin/bpfcap.1
man: build
	$(BIN) man > bin/bpfcap.1

# Regenerate every BPF object from bpf/ (bpf2go lines live in gen.go).
generate: deps
	$(GO) generate ./...

# The committed objects must be exactly what `make generate` produces.
generate-check: generate
	@git diff --exit-code --stat -- . || { echo "generated files differ from the committed ones: run make generate and commit" >&2; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- '*_bpfel*.go' '*_bpfel*.o'); \
	  if [ -n "$$untracked" ]; then echo "generated files not committed: $$untracked" >&2; exit 1; fi

vet: deps
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:" >&2; echo "$$out" >&2; exit 1; fi

unit: deps
	$(GO) test $(TESTFLAGS) ./...

# `unit` runs every test on this kernel; the matrix runs the guest tests in
# the guests and, meanwhile, on the host again, so one table shows what each
# kernel passes, skips (and why) or fails.
test: KERNELS = 5.10,6.1,6.12,host
test: deps vet fmt-check generate-check unit $(TEST_TARGETS)
	@echo "make test: all suites passed"

# A live capture on namespaces the demo creates (drops at kfree_skb, tc),
# then the translated filter checked in the kernel against a shipped pcap.
demo: build
	@scripts/demo.sh

clean:
	rm -rf bin .cache

