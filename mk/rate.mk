# Max-rate benchmark: the highest offered rate bpfcap and tcpdump -w each
# keep at 100% on the same veth, and the CPU each spends per captured
# packet, at tc egress, tp_btf:net_dev_start_xmit, tp_btf:net_dev_xmit and
# XDP, for 64 B and 1000 B UDP payloads (bench/rate; CPU 0 floods, CPU 1
# captures, files on /dev/shm; ratios against tcpdump in the same run).
# About seven minutes.
# On a shared 2-core machine the generator (softirqs of CPU 0) is often
# the limit: generator-bound=1 marks a case where a tool kept everything
# offered, so its loss-free figure is a floor: BPFCAP_RATE_CPU=N then holds
# each capture process to N% of one CPU (the same cgroup CPU quota for
# both tools), so that both lose packets below the generator's rate. CPU
# per packet is reported twice: cpu-* (process time, plus bpfcap's BPF run
# time; tcpdump's kernel tap not counted) and fair-cpu-* (process time
# plus, for both, the kernel work done in the sender's softirqs: bpfcap's
# BPF run time, tcpdump's tap timed on the transmit path). Single runs vary
# by 30% and more when other work shares the CPUs; compare ratios of one run.
#   make bench-rate                       # this tree's bpfcap
#   make bench-rate BPFCAP_RATE_BIN=path  # another build (e.g. main's)
#   make bench-rate BPFCAP_RATE_ARGS='-B 32768' BPFCAP_RATE_STEP=2s
#   make bench-rate BPFCAP_RATE_CPU=10    # both capture processes at 10% of a CPU
.PHONY: bench-rate

bench-rate: deps
	BPFCAP_RATE_BIN=$(BPFCAP_RATE_BIN) BPFCAP_RATE_ARGS='$(BPFCAP_RATE_ARGS)' BPFCAP_RATE_STEP=$(BPFCAP_RATE_STEP) BPFCAP_RATE_CPU=$(BPFCAP_RATE_CPU) \
	  $(GO) test -count=1 -timeout 30m -run '^$$' -bench 'GeneratorRate|MaxRate|StalledReader' -benchtime 1x ./bench/rate/
