// Package tracebench measures bpfcap's tracing hooks on a veth flood:
// packets captured per second and losses at a tracepoint, the cost the
// hook adds to the traced path (a non-matching filter against no hook),
// and tcpdump on the same veth as the peer, all as ratios measured in the
// same run; and the flood's rate with `all` attached and a filter that
// matches nothing against its rate with no hook (BenchmarkTraceAllFlood). rss.sh measures the resident memory of `bpfcap trace` during a
// one-minute flood at default buffer sizes.
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/trace/
package tracebench
