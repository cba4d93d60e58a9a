//go:build dpdk

// dpdkcap.c: see dpdkcap.h.

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>

#include <pcap/bpf.h>

#include <rte_bpf.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_memzone.h>
#include <rte_mempool.h>
#include <rte_pcapng.h>
#include <rte_pdump.h>
#include <rte_ring.h>
#include <rte_version.h>

#include "dpdkcap.h"

// RTE_MAGIC: the rte_mem_config magic of DPDK 19.11 and later.
#define BC_MEMCFG_MAGIC 19820526

// EPB layout (pcapng): type, length, interface id, ts high, ts low,
// captured length, original length, data..., options, length.
#define EPB_TYPE 6
#define EPB_HDR 28

static FILE *bc_log;
static char *bc_log_buf;
static size_t bc_log_len;

uint32_t bc_version(void) { return RTE_VERSION; }
uint32_t bc_magic(void) { return BC_MEMCFG_MAGIC; }

void bc_check_primary(const char *path, struct bc_primary *out)
{
	struct flock lk;
	uint32_t hdr[2];
	int fd;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	out->exists = 1;
	if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr)) {
		out->magic = hdr[0];
		out->version = hdr[1];
	}
	// The primary holds a write lock on part of its config file while it
	// runs (what rte_eal_primary_proc_alive tests); ask whether anyone
	// holds a lock anywhere in the file.
	memset(&lk, 0, sizeof(lk));
	lk.l_type = F_WRLCK;
	lk.l_whence = SEEK_SET;
	lk.l_start = 0;
	lk.l_len = 0;
	if (fcntl(fd, F_GETLK, &lk) == 0 && lk.l_type != F_UNLCK)
		out->alive = 1;
	close(fd);
}

int bc_log_to_memory(void)
{
	bc_log = open_memstream(&bc_log_buf, &bc_log_len);
	if (bc_log == NULL)
		return -errno;
	return rte_openlog_stream(bc_log);
}

const char *bc_log_text(void)
{
	if (bc_log == NULL)
		return "";
	fflush(bc_log);
	return bc_log_buf ? bc_log_buf : "";
}

void bc_log_to_stderr(void)
{
	rte_log_set_global_level(RTE_LOG_ERR);
	rte_openlog_stream(stderr);
}

int bc_eal_init(int argc, char **argv)
{
	if (rte_eal_init(argc, argv) < 0)
		return rte_errno ? -rte_errno : -EINVAL;
	return 0;
}

int bc_eal_cleanup(void) { return rte_eal_cleanup(); }

int bc_next_port(int prev)
{
	uint64_t p = rte_eth_find_next_owned_by(prev + 1, RTE_ETH_DEV_NO_OWNER);

	if (p >= RTE_MAX_ETHPORTS)
		return -1;
	return (int)p;
}

int bc_get_port_info(uint16_t port, struct bc_port_info *out)
{
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	struct rte_eth_link link;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!rte_eth_dev_is_valid_port(port))
		return -ENODEV;
	rc = rte_eth_dev_get_name_by_port(port, out->name);
	if (rc < 0)
		return rc;
	rc = rte_eth_dev_info_get(port, &info);
	if (rc < 0)
		return rc;
	if (info.driver_name)
		snprintf(out->driver, sizeof(out->driver), "%s", info.driver_name);
	if (info.if_index == 0 || if_indextoname(info.if_index, out->ifname) == NULL)
		out->ifname[0] = 0;
	out->nb_rx_queues = info.nb_rx_queues;
	out->nb_tx_queues = info.nb_tx_queues;
	if (rte_eth_macaddr_get(port, &mac) == 0) {
		memcpy(out->mac, mac.addr_bytes, 6);
		out->has_mac = 1;
	}
	memset(&link, 0, sizeof(link));
	if (rte_eth_link_get_nowait(port, &link) == 0 &&
	    link.link_status == RTE_ETH_LINK_UP) {
		out->link_up = 1;
		if (link.link_speed != RTE_ETH_SPEED_NUM_UNKNOWN)
			out->speed_mbps = link.link_speed;
	}
	return 0;
}

struct bc_walk {
	const char *tag;
	int counts[RTE_MEMPOOL_MAX_OPS_IDX];
	int pools;
};

static void bc_walk_pool(struct rte_mempool *mp, void *arg)
{
	struct bc_walk *w = arg;

	if (strncmp(mp->name, w->tag, strlen(w->tag)) == 0)
		return; // ours, or another bpfcap's
	// Packet pools carry rte_pktmbuf_pool_private; the primary made
	// them with its best mempool ops, as ours will be.
	if (mp->private_data_size < sizeof(struct rte_pktmbuf_pool_private))
		return;
	if (mp->ops_index < 0 || mp->ops_index >= RTE_MEMPOOL_MAX_OPS_IDX)
		return;
	w->counts[mp->ops_index]++;
	w->pools++;
}

int bc_align_ops(const char *tag, struct bc_ops_report *rep)
{
	struct rte_mempool_ops tmp;
	struct bc_walk w;
	const char *name;
	int ours, theirs = -1, best = 0, i;

	memset(rep, 0, sizeof(*rep));
	rep->primary_index = -1;
	name = rte_mbuf_best_mempool_ops();
	if (name == NULL)
		return -ENOENT;
	snprintf(rep->ops_name, sizeof(rep->ops_name), "%s", name);
	ours = -1;
	for (i = 0; i < (int)rte_mempool_ops_table.num_ops; i++)
		if (strcmp(rte_mempool_ops_table.ops[i].name, name) == 0)
			ours = i;
	rep->our_index = ours;
	if (ours < 0)
		return -ENOENT;

	memset(&w, 0, sizeof(w));
	w.tag = tag;
	rte_mempool_walk(bc_walk_pool, &w);
	rep->primary_pools = w.pools;
	for (i = 0; i < RTE_MEMPOOL_MAX_OPS_IDX; i++) {
		if (w.counts[i] == 0)
			continue;
		if (theirs >= 0)
			rep->ambiguous = 1;
		if (w.counts[i] > best) {
			best = w.counts[i];
			theirs = i;
		}
	}
	rep->primary_index = theirs;
	if (theirs < 0 || theirs == ours)
		return 0;
	if (theirs >= (int)rte_mempool_ops_table.num_ops)
		return -ERANGE;
	// Swap the two entries of our (process-local) table. No pool of ours
	// exists yet, and we never run ops of the primary's pools, so only
	// the pools we create from now on see the new order.
	rte_spinlock_lock(&rte_mempool_ops_table.sl);
	tmp = rte_mempool_ops_table.ops[theirs];
	rte_mempool_ops_table.ops[theirs] = rte_mempool_ops_table.ops[ours];
	rte_mempool_ops_table.ops[ours] = tmp;
	rte_spinlock_unlock(&rte_mempool_ops_table.sl);
	rep->swapped = 1;
	return 0;
}

struct bc_capture *bc_capture_create(const char *tag, uint32_t snaplen,
				     uint32_t ring_size, uint32_t pool_size,
				     int *err)
{
	char rname[RTE_RING_NAMESIZE], pname[RTE_MEMPOOL_NAMESIZE];
	struct rte_mbuf *m[BC_BURST];
	struct bc_capture *c;
	uint32_t room;
	unsigned int n;
	__uint128_t wrap;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	wrap = ((__uint128_t)1 << 64) * 1000000000u;
	c->wrap_ns = rte_get_tsc_hz() ? (uint64_t)(wrap / rte_get_tsc_hz()) : 0;
	snprintf(rname, sizeof(rname), "%s_r", tag);
	snprintf(pname, sizeof(pname), "%s_p", tag);

	// A ring and pool left by an earlier capture of this slot are reused:
	// freeing them is what can crash a DPDK 22.11 primary (its capture
	// callbacks may still run on them after rte_pdump_disable), so they
	// are never freed while the primary runs.
	c->ring = rte_ring_lookup(rname);
	c->pool = rte_mempool_lookup(pname);
	if (c->ring != NULL && c->pool != NULL) {
		while ((n = rte_ring_sc_dequeue_burst(c->ring, (void **)m, BC_BURST, NULL)) > 0)
			rte_pktmbuf_free_bulk(m, n);
		c->reused = 1;
		return c;
	}
	if (c->ring != NULL || c->pool != NULL) {
		*err = -EEXIST;
		free(c);
		return NULL;
	}
	// pdump insists on an MP/MC ring; we are its only consumer and use
	// the single-consumer dequeue.
	c->ring = rte_ring_create(rname, ring_size, rte_socket_id(), 0);
	if (c->ring == NULL) {
		*err = -rte_errno;
		free(c);
		return NULL;
	}
	// Room for the packet, the EPB header (in the headroom), and the
	// flags, queue and RSS hash options plus the trailing length.
	// Longer packets are copied into chains of these.
	room = rte_pcapng_mbuf_size(snaplen) + 16;
	if (room > RTE_MBUF_DEFAULT_BUF_SIZE)
		room = RTE_MBUF_DEFAULT_BUF_SIZE;
	c->pool = rte_pktmbuf_pool_create_by_ops(pname, pool_size, 256, 0, room,
						 rte_socket_id(),
						 rte_mbuf_best_mempool_ops());
	if (c->pool == NULL) {
		*err = -rte_errno;
		rte_ring_free(c->ring);
		free(c);
		return NULL;
	}
	return c;
}

int bc_capture_set_filter(struct bc_capture *c, const void *insns, uint32_t n)
{
	struct bpf_program prog;

	prog.bf_len = n;
	prog.bf_insns = (struct bpf_insn *)insns;
	c->prm = rte_bpf_convert(&prog);
	if (c->prm == NULL)
		return rte_errno ? -rte_errno : -EINVAL;
	return 0;
}

void bc_capture_drop_filter(struct bc_capture *c)
{
	rte_free(c->prm);
	c->prm = NULL;
}

int bc_capture_enable(struct bc_capture *c, uint16_t port, uint32_t flags,
		      uint32_t snaplen)
{
	int rc;

	rte_errno = 0;
	rc = rte_pdump_enable_bpf(port, RTE_PDUMP_ALL_QUEUES,
				  flags | RTE_PDUMP_FLAG_PCAPNG, snaplen,
				  c->ring, c->pool, c->prm);
	if (rc < 0 && rte_errno > 0)
		return -rte_errno;
	return rc;
}

int bc_capture_disable(uint16_t port, uint32_t flags)
{
	int rc;

	rte_errno = 0;
	rc = rte_pdump_disable(port, RTE_PDUMP_ALL_QUEUES, flags);
	if (rc < 0 && rte_errno > 0)
		return -rte_errno;
	return rc;
}

unsigned int bc_capture_ring_count(struct bc_capture *c)
{
	return rte_ring_count(c->ring);
}

void bc_capture_free(struct bc_capture *c, int keep)
{
	struct rte_mbuf *m[BC_BURST];
	unsigned int n;

	if (c == NULL)
		return;
	if (c->pend_count)
		rte_pktmbuf_free_bulk(&c->pending[c->pend_head], c->pend_count);
	while ((n = rte_ring_sc_dequeue_burst(c->ring, (void **)m, BC_BURST, NULL)) > 0)
		rte_pktmbuf_free_bulk(m, n);
	// Hand our lcore's cached mbufs back, or a reused pool shrinks by
	// them on every run.
	rte_mempool_cache_flush(NULL, c->pool);
	if (!keep) {
		rte_ring_free(c->ring);
		rte_mempool_free(c->pool);
	}
	rte_free(c->prm);
	free(c);
}

// The layout of pdump's shared statistics memzone in DPDK 22.11
// (lib/pdump/rte_pdump.c), per direction and queue. Reading it directly
// lets us sum only the directions we enabled: pdump zeroes exactly those
// counters when it enables a capture, while rte_pdump_stats adds rx and
// tx of every queue together.
struct bc_pdump_stats_mz {
	struct rte_pdump_stats rx[RTE_MAX_ETHPORTS][RTE_MAX_QUEUES_PER_PORT];
	struct rte_pdump_stats tx[RTE_MAX_ETHPORTS][RTE_MAX_QUEUES_PER_PORT];
	const struct rte_memzone *mz;
};

static const struct bc_pdump_stats_mz *bc_pstats;

static void bc_add_stats(struct rte_pdump_stats *sum, const struct rte_pdump_stats *q)
{
	sum->accepted += __atomic_load_n(&q->accepted, __ATOMIC_RELAXED);
	sum->filtered += __atomic_load_n(&q->filtered, __ATOMIC_RELAXED);
	sum->nombuf += __atomic_load_n(&q->nombuf, __ATOMIC_RELAXED);
	sum->ringfull += __atomic_load_n(&q->ringfull, __ATOMIC_RELAXED);
}

int bc_stats(uint16_t port, uint32_t flags, struct rte_pdump_stats *st)
{
	unsigned int q;

	memset(st, 0, sizeof(*st));
	if (port >= RTE_MAX_ETHPORTS)
		return -EINVAL;
	if (bc_pstats == NULL) {
		const struct rte_memzone *mz = rte_memzone_lookup("rte_pdump_stats");

		if (mz == NULL || mz->len < sizeof(struct bc_pdump_stats_mz)) {
			// Unknown layout: both directions together.
			int rc = rte_pdump_stats(port, st);

			return rc < 0 ? rc : 1;
		}
		bc_pstats = mz->addr;
	}
	for (q = 0; q < RTE_MAX_QUEUES_PER_PORT; q++) {
		if (flags & RTE_PDUMP_FLAG_RX)
			bc_add_stats(st, &bc_pstats->rx[port][q]);
		if (flags & RTE_PDUMP_FLAG_TX)
			bc_add_stats(st, &bc_pstats->tx[port][q]);
	}
	return 0;
}

static inline uint64_t bc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// bc_fix_time turns the EPB timestamp DPDK wrote into wall-clock time.
// DPDK 22.11 converts TSC to ns against a base taken lazily at the first
// copy; a packet stamped before that base makes the unsigned delta wrap
// and shifts every later stamp of that primary by 2^64/tsc_hz seconds
// (year ~2251). Remove whole wraps; if what is left is still far from
// now (the primary's TSC rate differs from ours), use the drain time.
static inline uint64_t bc_fix_time(struct bc_capture *c, uint64_t ts,
				   uint64_t now)
{
	const uint64_t slack = 60ull * 1000000000u;
	uint64_t n;

	if (likely(ts <= now + slack))
		return ts;
	if (c->wrap_ns) {
		uint64_t d = ts - now;

		// Nearest whole number of wraps (no overflow near 2^64).
		n = d / c->wrap_ns;
		if (d - n * c->wrap_ns > c->wrap_ns / 2)
			n++;
		if (n > 0 && n <= 2) {
			uint64_t t = ts - n * c->wrap_ns;

			if (t + slack >= now && t <= now + slack) {
				c->ts_fixed++;
				return t;
			}
		}
	}
	c->ts_guessed++;
	return now;
}

uint64_t bc_fix_time_with(uint64_t wrap_ns, uint64_t ts, uint64_t now, int *how)
{
	struct bc_capture c;

	memset(&c, 0, sizeof(c));
	c.wrap_ns = wrap_ns;
	ts = bc_fix_time(&c, ts, now);
	*how = c.ts_fixed ? 1 : c.ts_guessed ? 2 : 0;
	return ts;
}

void bc_drain(struct bc_capture *c, uint8_t *out, uint32_t cap,
	      uint32_t max_pkts, struct bc_drain_result *res)
{
	uint32_t pos = 0, pkts = 0;
	unsigned int done = 0, i;
	uint64_t now;

	res->bytes = 0;
	res->packets = 0;
	if (c->pend_count == 0) {
		c->pend_head = 0;
		c->pend_count = rte_ring_sc_dequeue_burst(c->ring, (void **)c->pending,
							  BC_BURST, NULL);
		if (c->pend_count == 0) {
			res->left = 0;
			return;
		}
	}
	now = bc_now_ns();
	for (i = c->pend_head; i < c->pend_head + c->pend_count; i++) {
		struct rte_mbuf *m = c->pending[i], *seg;
		uint32_t len = rte_pktmbuf_pkt_len(m), off = 0;
		uint32_t *w;
		uint64_t ts;

		if (pkts >= max_pkts || pos + len > cap)
			break;
		done++;
		w = (uint32_t *)(out + pos);
		for (seg = m; seg != NULL && off + seg->data_len <= len; seg = seg->next) {
			memcpy(out + pos + off, rte_pktmbuf_mtod(seg, void *), seg->data_len);
			off += seg->data_len;
		}
		if (off != len || len < EPB_HDR + 4 || (len & 3) != 0 ||
		    w[0] != EPB_TYPE || w[1] != len ||
		    *(uint32_t *)(out + pos + len - 4) != len ||
		    m->port >= RTE_MAX_ETHPORTS) {
			c->bad++;
			continue;
		}
		w[2] = c->port_index[m->port];
		ts = ((uint64_t)w[3] << 32) | w[4];
		ts = bc_fix_time(c, ts, now);
		w[3] = (uint32_t)(ts >> 32);
		w[4] = (uint32_t)ts;
		c->captured[w[2]]++;
		pos += len;
		pkts++;
	}
	rte_pktmbuf_free_bulk(&c->pending[c->pend_head], done);
	c->pend_head += done;
	c->pend_count -= done;
	res->bytes = pos;
	res->packets = pkts;
	res->left = c->pend_count;
}
