//go:build dpdk

// dpdkcap.h: the C side of bpfcap's DPDK source. Everything that touches
// rte_mbuf fields, static inline DPDK functions or per-packet work lives
// here; Go calls these functions a few times per burst, never per packet.
#ifndef BPFCAP_DPDKCAP_H
#define BPFCAP_DPDKCAP_H

#include <stdint.h>
#include <stddef.h>

#include <rte_pdump.h>

// bc_primary describes the primary named by a runtime config file.
struct bc_primary {
	int exists;        // the config file exists
	int alive;         // a process holds the config file's lock
	uint32_t magic;    // rte_mem_config.magic
	uint32_t version;  // rte_mem_config.version (RTE_VERSION of the primary)
};

// bc_check_primary reads path (the primary's runtime config file).
void bc_check_primary(const char *path, struct bc_primary *out);

// bc_version is the RTE_VERSION this code was built against.
uint32_t bc_version(void);
// bc_magic is the rte_mem_config magic this DPDK version expects.
uint32_t bc_magic(void);

// bc_log_to_memory sends DPDK's log to an in-memory buffer (returned by
// bc_log_text) so EAL chatter does not reach the user's terminal.
int bc_log_to_memory(void);
// bc_log_text returns what DPDK logged since bc_log_to_memory (NUL
// terminated, owned by this file).
const char *bc_log_text(void);
// bc_log_to_stderr sends DPDK's log back to stderr, errors only.
void bc_log_to_stderr(void);

// bc_eal_init calls rte_eal_init; returns 0 or a negative errno.
int bc_eal_init(int argc, char **argv);
// bc_eal_cleanup calls rte_eal_cleanup.
int bc_eal_cleanup(void);

// bc_next_port returns the first valid port id after prev (-1 to start),
// or -1 when there is none.
int bc_next_port(int prev);

// bc_port_info is what `bpfcap dpdk list` prints and IDBs carry.
struct bc_port_info {
	char name[128];
	char driver[64];
	char ifname[32];
	uint8_t mac[6];
	int has_mac;
	uint32_t speed_mbps;
	int link_up;
	uint16_t nb_rx_queues;
	uint16_t nb_tx_queues;
};

// bc_get_port_info fills out for port; returns 0 or a negative errno.
int bc_get_port_info(uint16_t port, struct bc_port_info *out);

// bc_ops_report says how bc_align_ops aligned the mempool ops tables.
struct bc_ops_report {
	char ops_name[64];    // ops the pool uses (best mempool ops)
	int our_index;        // its index in our table before aligning
	int primary_index;    // the primary's index for it (-1: unknown)
	int primary_pools;    // primary packet pools looked at
	int ambiguous;        // primary pools disagreed on the index
	int swapped;          // our table was reordered
};

// bc_align_ops makes our process's mempool ops table carry the pool ops
// at the index the primary uses for them (DPDK bug 1073: the tables are
// ordered by driver load order, which differs between processes). Call
// it before creating pools. Returns 0 or a negative errno.
int bc_align_ops(const char *tag, struct bc_ops_report *rep);

#define BC_BURST 512

// bc_capture is one capture's ring, mempool, filter and drain state.
struct bc_capture {
	struct rte_ring *ring;
	struct rte_mempool *pool;
	struct rte_bpf_prm *prm;
	uint16_t port_index[RTE_MAX_ETHPORTS]; // port id -> IDB index
	uint64_t captured[RTE_MAX_ETHPORTS];   // packets handed out, by IDB index
	uint64_t bad;                          // mbufs that were not EPBs
	uint64_t ts_fixed;                     // timestamps corrected by a TSC wrap
	uint64_t ts_guessed;                   // timestamps replaced by the drain time
	uint64_t wrap_ns;                      // 2^64 / tsc_hz seconds, in ns
	int reused;                            // ring and pool were left by an earlier capture
	struct rte_mbuf *pending[BC_BURST];
	unsigned int pend_head, pend_count;
};

// bc_capture_create makes the ring and mempool (named after tag) sized
// for snaplen, or reuses the ones an earlier capture left under that
// name; returns NULL with *err set to a negative errno.
struct bc_capture *bc_capture_create(const char *tag, uint32_t snaplen,
				     uint32_t ring_size, uint32_t pool_size,
				     int *err);
// bc_capture_set_filter converts a classic BPF program (struct bpf_insn
// array, as libpcap emits) with rte_bpf_convert. Returns 0 or -errno.
int bc_capture_set_filter(struct bc_capture *c, const void *insns, uint32_t n);
// bc_capture_drop_filter frees the converted filter (capture unfiltered).
void bc_capture_drop_filter(struct bc_capture *c);
// bc_capture_enable starts pdump on port into c; returns 0 or -errno.
int bc_capture_enable(struct bc_capture *c, uint16_t port, uint32_t flags,
		      uint32_t snaplen);
// bc_capture_disable stops pdump on port; returns 0 or -errno.
int bc_capture_disable(uint16_t port, uint32_t flags);
// bc_capture_free returns every mbuf to the pool and frees the filter;
// it frees the ring and pool too unless keep is set.
void bc_capture_free(struct bc_capture *c, int keep);
// bc_capture_ring_count is how many mbufs wait in the ring.
unsigned int bc_capture_ring_count(struct bc_capture *c);

// bc_stats reads pdump's counters of port for the directions in flags:
// returns 0 (exactly those directions, which pdump zeroes when it enables
// them), 1 (both directions summed since the primary started: DPDK's
// layout was not the expected one) or -errno.
int bc_stats(uint16_t port, uint32_t flags, struct rte_pdump_stats *st);

// bc_drain_result is what one bc_drain call did.
struct bc_drain_result {
	uint32_t bytes;   // bytes of EPBs written to out
	uint32_t packets; // EPBs written
	uint32_t left;    // mbufs still pending (out was full)
};

// bc_drain moves ready EPBs from the ring to out (at most cap bytes and
// max_pkts packets), rewriting each block's interface id to its port's
// IDB index and its timestamp to wall-clock nanoseconds, and frees the
// mbufs in bulk. It never blocks.
void bc_drain(struct bc_capture *c, uint8_t *out, uint32_t cap,
	      uint32_t max_pkts, struct bc_drain_result *res);

// bc_fix_time_with runs the timestamp correction of bc_drain for a TSC
// wrap of wrap_ns: *how is 0 (kept), 1 (wraps removed) or 2 (replaced by
// now). For tests.
uint64_t bc_fix_time_with(uint64_t wrap_ns, uint64_t ts, uint64_t now, int *how);

#endif
