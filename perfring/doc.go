// Package perfring carries bpfcap's records from the kernel to Go: a BPF
// ring buffer reader that reads the mapped ring in place, with a perf event
// array reader (over cilium/ebpf's) as the fallback for kernels or setups
// without ringbuf.
//
// Wake-ups from the kernel are batched (capture.h only wakes the reader
// once enough data is pending), so the Reader polls with a short deadline
// and reads whatever arrived. Records are decoded into Events whose Data
// aliases the ring itself (ringbuf) or the reader's buffer (perf): nothing
// is copied or allocated per record, and a ring record's space goes back
// to the kernel once the callback that was given it returns.
package perfring
