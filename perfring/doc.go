// Package perfring carries bpfcap's records from the kernel to Go: a BPF
// ring buffer reader, with a perf event array reader as the fallback for
// kernels or setups without ringbuf, both over cilium/ebpf's readers.
//
// Wake-ups from the kernel are batched (capture.h only wakes the reader
// once enough data is pending), so the Reader polls with a short deadline
// and reads whatever arrived. Records are decoded into Events whose Data
// aliases the reader's buffer: nothing is allocated per record.
package perfring
