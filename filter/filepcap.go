package filter

/*
#cgo linux LDFLAGS: -lpcap
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <pcap/pcap.h>

struct bpfcap_rec {
	uint64_t num;
	uint32_t off, caplen, len, match;
	int64_t sec, nsec;
};

// bpfcap_open_pcap opens a pcap stream on a descriptor of its own (a dup
// of fd, closed by pcap_close), with nanosecond timestamps.
static pcap_t *bpfcap_open_pcap(int fd, char *errbuf)
{
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	FILE *f;
	pcap_t *p;

	if (own < 0) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "dup: %s", strerror(errno));
		return NULL;
	}
	f = fdopen(own, "rb");
	if (f == NULL) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "fdopen: %s", strerror(errno));
		close(own);
		return NULL;
	}
	// Reads of 1 MiB instead of stdio's 4 KiB: a tenth of the time per
	// packet goes to read(2) otherwise.
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (p == NULL)
		fclose(f);
	return p;
}

// bpfcap_read_pcap reads packets and returns in recs (at most max) and buf
// (bufsize bytes, at least the snap length more than any batch needs) the
// ones the caller wants to see. Without prog that is every packet. With
// prog it runs libpcap's filter on each packet (pcap_offline_filter, as
// tcpdump -r does) and keeps only those that match and those whose number
// (from *seen, counted on) is at most pick_first or a multiple of
// pick_every: the others are counted in *seen and go no further. It stops
// after max records, when less than the snap length is left in buf, or
// after max_read packets. *status is pcap_next_ex's last answer other
// than 1 (PCAP_ERROR_BREAK at the end of the file, PCAP_ERROR on an
// error), or 1.
static int bpfcap_read_pcap(pcap_t *p, const struct bpf_program *prog, unsigned char *buf, uint32_t bufsize,
			    struct bpfcap_rec *recs, int max, uint64_t max_read, uint64_t *seen,
			    uint64_t pick_first, uint64_t pick_every, int *status)
{
	uint32_t used = 0, snap = (uint32_t)pcap_snapshot(p), match = 0;
	struct pcap_pkthdr *h;
	const u_char *d;
	uint64_t i, read = 0;
	int n = 0, rc;

	*status = 1;
	while (n < max && bufsize - used >= snap && read < max_read) {
		rc = pcap_next_ex(p, &h, &d);
		if (rc != 1) {
			*status = rc;
			break;
		}
		read++;
		i = ++*seen;
		if (prog) {
			match = pcap_offline_filter(prog, h, d);
			if (!match && i > pick_first && i % pick_every != 0)
				continue;
		}
		memcpy(buf + used, d, h->caplen);
		recs[n].num = i;
		recs[n].match = match;
		recs[n].caplen = h->caplen;
		recs[n].len = h->len;
		recs[n].sec = h->ts.tv_sec;
		recs[n].nsec = h->ts.tv_usec;
		recs[n].off = used;
		used += h->caplen;
		n++;
	}
	return n;
}
*/
import "C"

import (
	"errors"
	"io"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
)

// pcapBatch is how many packets pcapFile reads per call into C.
const pcapBatch = 256

// pcapFile reads a pcap file with libpcap, a batch of packets per call
// into C, and can run libpcap's own filter on each packet there.
type pcapFile struct {
	p      *C.pcap_t
	format FileFormat

	prog *C.struct_bpf_program // libpcap's filter, nil if not run in C
	buf  []byte
	recs []C.struct_bpfcap_rec
	n, i int
	seen C.uint64_t // packets read
	end  error      // io.EOF or the read error after the batch
}

// openPcapFile opens a pcap file on fd (libpcap reads a descriptor of its
// own); swapped: the file's byte order is the other one than this host's.
func openPcapFile(fd uintptr, swapped bool) (*pcapFile, error) {
	errbuf := (*C.char)(C.calloc(C.PCAP_ERRBUF_SIZE, 1))
	defer C.free(unsafe.Pointer(errbuf))
	p := C.bpfcap_open_pcap(C.int(fd), errbuf)
	if p == nil {
		return nil, errors.New(C.GoString(errbuf))
	}
	snap := int(C.pcap_snapshot(p))
	return &pcapFile{
		p: p,
		format: FileFormat{
			// pcap_datalink already maps the file's LINKTYPE_ to a DLT_.
			LinkType: LinkType(C.pcap_datalink(p)),
			Snaplen:  adjustSnaplen(uint32(snap)),
			Swapped:  swapped,
		},
		buf:  make([]byte, max(snap, 1)+1<<20),
		recs: make([]C.struct_bpfcap_rec, pcapBatch),
	}, nil
}

// setFilter makes next decide packets with libpcap's filter prog.
func (f *pcapFile) setFilter(raw []bpf.RawInstruction) {
	f.freeFilter()
	insns := (*C.struct_bpf_insn)(C.calloc(C.size_t(len(raw)), C.size_t(unsafe.Sizeof(C.struct_bpf_insn{}))))
	s := unsafe.Slice(insns, len(raw))
	for i, ri := range raw {
		s[i] = C.struct_bpf_insn{code: C.u_short(ri.Op), jt: C.u_char(ri.Jt), jf: C.u_char(ri.Jf), k: C.bpf_u_int32(ri.K)}
	}
	f.prog = (*C.struct_bpf_program)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_bpf_program{}))))
	f.prog.bf_len = C.u_int(len(raw))
	f.prog.bf_insns = insns
}

func (f *pcapFile) freeFilter() {
	if f.prog != nil {
		C.free(unsafe.Pointer(f.prog.bf_insns))
		C.free(unsafe.Pointer(f.prog))
		f.prog = nil
	}
}

// pcapMaxRead bounds the packets one call into C reads, so that a caller
// sees its context between calls even when no packet matches.
const pcapMaxRead = 1 << 16

// next returns the next packet, its number in the file (from 1) and, when
// a filter is set, libpcap's verdict on it. With a filter, it returns only
// the packets that match and those the kernel check picks (see
// FileRunner). The data stays valid until the next call.
func (f *pcapFile) next() (FilePacket, bool, uint64, error) {
	for f.i == f.n {
		if f.end != nil {
			return FilePacket{}, false, 0, f.end
		}
		var status C.int
		n := C.bpfcap_read_pcap(f.p, f.prog, (*C.uchar)(unsafe.Pointer(&f.buf[0])), C.uint32_t(len(f.buf)),
			&f.recs[0], C.int(len(f.recs)), pcapMaxRead, &f.seen, KernelCheckFirst, KernelCheckEvery, &status)
		f.n, f.i = int(n), 0
		switch status {
		case 1:
		case C.PCAP_ERROR_BREAK:
			f.end = io.EOF
		default:
			f.end = errors.New(C.GoString(C.pcap_geterr(f.p)))
		}
		if f.n == 0 {
			if f.end != nil {
				return FilePacket{}, false, 0, f.end
			}
			return FilePacket{}, false, 0, errBatchEmpty
		}
	}
	r := &f.recs[f.i]
	f.i++
	return FilePacket{
		Data:      f.buf[r.off : r.off+r.caplen : r.off+r.caplen],
		WireLen:   int(r.len),
		Timestamp: time.Unix(int64(r.sec), int64(r.nsec)),
		Format:    f.format,
	}, r.match != 0, uint64(r.num), nil
}

// errBatchEmpty is pcapFile.next's answer when a call into C read packets
// (up to pcapMaxRead) of which none is to be returned, or none at all
// before the end: the caller checks its context and asks again.
var errBatchEmpty = errors.New("no packet in this batch")

func (f *pcapFile) close() {
	f.freeFilter()
	C.pcap_close(f.p)
}
