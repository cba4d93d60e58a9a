# Kernel matrix (internal/vmtest): the privileged tests in Debian's 5.10
# (bullseye), 6.1 and 6.12 cloud kernels under qemu TCG, and on the host.
#   make vmtest [KERNELS=5.10,6.1,6.12,host] [PKGS=./probe,./xdpcap] [RUN=regex]
#   make vmtest KERNELS=7.3  # newest series of the next release's backports
#                            # (trixie-backports); never in the default list
#   make vmtest-selftest     # a broken probe name must make the matrix fail
# Downloads and unpacked kernels are cached in .cache/vmtest.
KERNELS ?= 5.10,6.1,6.12,host
PKGS ?=
RUN ?=
VMTEST_FLAGS ?=
VMTEST_SELFTEST_KERNELS ?= 5.10,6.1,6.12

# Part of `make test`: 6.1 and 6.12 took ~6.5 min on 2 cores; the 5.10 guest
# alone took 5.4 min (-j 1, machine shared). The first run also downloads
# ~83 MB of kernels (21.5 MB for 5.10). Every run since the qemu -cpu fix
# (cx16=off) has booted the guests.
TEST_TARGETS += vmtest vmtest-selftest

.PHONY: vmtest vmtest-selftest

vmtest:
	$(GO) run ./internal/vmtest -kernels '$(KERNELS)' -pkgs '$(PKGS)' -run '$(RUN)' $(VMTEST_FLAGS)

vmtest-selftest:
	$(GO) run ./internal/vmtest -selftest -kernels '$(VMTEST_SELFTEST_KERNELS)' $(VMTEST_FLAGS)
