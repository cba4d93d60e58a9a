# Max-rate benchmark: the highest offered rate bpfcap and tcpdump -w each
# keep at 100% on the same veth, and the CPU each spends per captured
# packet, at tc egress, tp_btf:net_dev_xmit and XDP, for 64 B and 1000 B
# UDP payloads (bench/rate; CPU 0 floods, CPU 1 captures, files on
# /dev/shm; ratios against tcpdump in the same run). About five minutes.
#   make bench-rate                       # this tree's bpfcap
#   make bench-rate BPFCAP_RATE_BIN=path  # another build (e.g. main's)
#   make bench-rate BPFCAP_RATE_ARGS='-B 32768' BPFCAP_RATE_STEP=2s
.PHONY: bench-rate

bench-rate: deps
	BPFCAP_RATE_BIN=$(BPFCAP_RATE_BIN) BPFCAP_RATE_ARGS='$(BPFCAP_RATE_ARGS)' BPFCAP_RATE_STEP=$(BPFCAP_RATE_STEP) \
	  $(GO) test -count=1 -timeout 30m -run '^$$' -bench 'GeneratorRate|MaxRate|StalledReader' -benchtime 1x ./bench/rate/
