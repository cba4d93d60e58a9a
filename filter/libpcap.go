package filter

/*
#cgo linux LDFLAGS: -lpcap
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pcap/pcap.h>

// bpfcap_compile runs pcap_compile, optimised, on a dead handle of link
// type dlt, as tcpdump does for files.
static int bpfcap_compile(int dlt, int snaplen, const char *expr, bpf_u_int32 netmask,
			  struct bpf_program *fp, char *errbuf, size_t errlen)
{
	pcap_t *p = pcap_open_dead(dlt, snaplen);
	int rc;

	if (p == NULL) {
		snprintf(errbuf, errlen, "pcap_open_dead failed");
		return -1;
	}
	rc = pcap_compile(p, fp, expr, 1, netmask);
	if (rc != 0)
		snprintf(errbuf, errlen, "%s", pcap_geterr(p));
	pcap_close(p);
	return rc;
}

// bpfcap_compile_offline runs pcap_compile, optimised, on a savefile handle
// made from a pcap file header with the given link type (LINKTYPE_), snap
// length and byte order: libpcap compiles some link types differently for
// files (DLT_NULL's address family in the file's byte order and every
// BSD's AF_INET6), and this is the handle tcpdump -r compiles on.
static int bpfcap_compile_offline(uint32_t linktype, uint32_t snaplen, int swapped, const char *expr,
				  bpf_u_int32 netmask, struct bpf_program *fp, char *errbuf, size_t errlen)
{
	uint32_t hdr[6] = {0xa1b2c3d4, 2 | (4 << 16), 0, 0, snaplen, linktype};
	char err[PCAP_ERRBUF_SIZE];
	FILE *f;
	pcap_t *p;
	int rc, i;

	if (swapped) {
		hdr[1] = 4 | (2 << 16);
		for (i = 0; i < 6; i++)
			hdr[i] = __builtin_bswap32(hdr[i]);
	}
	f = fmemopen(hdr, sizeof(hdr), "rb");
	if (f == NULL) {
		snprintf(errbuf, errlen, "fmemopen failed");
		return -1;
	}
	p = pcap_fopen_offline(f, err);
	if (p == NULL) {
		fclose(f);
		snprintf(errbuf, errlen, "%s", err);
		return -1;
	}
	rc = pcap_compile(p, fp, expr, 1, netmask);
	if (rc != 0)
		snprintf(errbuf, errlen, "%s", pcap_geterr(p));
	pcap_close(p);
	return rc;
}

// bpfcap_linktype_to_dlt has libpcap read a pcap file header of link type
// linktype (a LINKTYPE_ value) and returns the DLT_ value it maps it to,
// or -1.
static int bpfcap_linktype_to_dlt(uint32_t linktype)
{
	uint32_t hdr[6] = {0xa1b2c3d4, 2 | (4 << 16), 0, 0, 65535, linktype};
	char err[PCAP_ERRBUF_SIZE];
	FILE *f = fmemopen(hdr, sizeof(hdr), "rb");
	pcap_t *p;
	int dlt;

	if (f == NULL)
		return -1;
	p = pcap_fopen_offline(f, err);
	if (p == NULL) {
		fclose(f);
		return -1;
	}
	dlt = pcap_datalink(p);
	pcap_close(p);
	return dlt;
}

// bpfcap_dlt_to_linktype has libpcap write a pcap file header for a
// handle of link type dlt and returns the LINKTYPE_ value it stores, or
// -1 if libpcap cannot save that link type.
static int64_t bpfcap_dlt_to_linktype(int dlt)
{
	char *buf = NULL;
	size_t len = 0;
	int64_t lt = -1;
	FILE *f = open_memstream(&buf, &len);
	pcap_t *p;
	pcap_dumper_t *d;

	if (f == NULL)
		return -1;
	p = pcap_open_dead(dlt, 65535);
	if (p == NULL) {
		fclose(f);
		free(buf);
		return -1;
	}
	d = pcap_dump_fopen(p, f);
	if (d == NULL) {
		fclose(f);
	} else {
		pcap_dump_close(d);
		if (len >= 24) {
			uint32_t v;
			memcpy(&v, buf + 20, 4);
			lt = v;
		}
	}
	free(buf);
	pcap_close(p);
	return lt;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/net/bpf"
)

// pcapErrbufSize is PCAP_ERRBUF_SIZE.
const pcapErrbufSize = 256

// compileRaw compiles expr with libpcap for a dead handle of link type lt
// and snap length snaplen, with netmask (host byte order) for `ip
// broadcast`.
func compileRaw(expr string, lt LinkType, snaplen int, netmask uint32) ([]bpf.RawInstruction, error) {
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))
	errbuf := (*C.char)(C.calloc(pcapErrbufSize, 1))
	defer C.free(unsafe.Pointer(errbuf))
	var fp C.struct_bpf_program
	if C.bpfcap_compile(C.int(lt), C.int(snaplen), cexpr, C.bpf_u_int32(netmask), &fp, errbuf, pcapErrbufSize) != 0 {
		return nil, errors.New(C.GoString(errbuf))
	}
	defer C.pcap_freecode(&fp)
	return copyProgram(&fp), nil
}

// compileOfflineRaw compiles expr on a libpcap savefile handle of link
// type lt, snap length snaplen and the given byte order (see CompileFile).
func compileOfflineRaw(expr string, lt LinkType, snaplen int, swapped bool, netmask uint32) ([]bpf.RawInstruction, error) {
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))
	errbuf := (*C.char)(C.calloc(pcapErrbufSize, 1))
	defer C.free(unsafe.Pointer(errbuf))
	sw := C.int(0)
	if swapped {
		sw = 1
	}
	var fp C.struct_bpf_program
	if C.bpfcap_compile_offline(C.uint32_t(lt.FileLinkType()), C.uint32_t(snaplen), sw, cexpr, C.bpf_u_int32(netmask), &fp, errbuf, pcapErrbufSize) != 0 {
		return nil, errors.New(C.GoString(errbuf))
	}
	defer C.pcap_freecode(&fp)
	return copyProgram(&fp), nil
}

// copyProgram copies a libpcap program into Go memory.
func copyProgram(fp *C.struct_bpf_program) []bpf.RawInstruction {
	insns := unsafe.Slice(fp.bf_insns, int(fp.bf_len))
	raw := make([]bpf.RawInstruction, len(insns))
	for i, in := range insns {
		raw[i] = bpf.RawInstruction{Op: uint16(in.code), Jt: uint8(in.jt), Jf: uint8(in.jf), K: uint32(in.k)}
	}
	return raw
}

// linktypeToDLT returns the DLT_ value libpcap reads a file's LINKTYPE_
// value as (the same number for most link types). libpcap answers from a
// table: nothing to remember here.
func linktypeToDLT(linktype uint32) uint32 {
	if d := C.bpfcap_linktype_to_dlt(C.uint32_t(linktype)); d >= 0 {
		return uint32(d)
	}
	return linktype
}

// dltToLinktype returns the LINKTYPE_ value libpcap writes to files for
// DLT_ value dlt (the same number for most link types, and for those
// libpcap cannot save).
func dltToLinktype(dlt uint32) uint32 {
	if l := C.bpfcap_dlt_to_linktype(C.int(dlt)); l >= 0 {
		return uint32(l)
	}
	return dlt
}

// dltName returns libpcap's lower-case name of dlt ("en10mb", "null",
// "ieee802_11_radio"), or "" if libpcap has none.
func dltName(dlt uint32) string {
	name := C.pcap_datalink_val_to_name(C.int(dlt))
	if name == nil {
		return ""
	}
	return strings.ToLower(C.GoString(name))
}

// dltByName returns the DLT_ value libpcap knows by name (case does not
// matter; a "DLT_" prefix is optional).
func dltByName(name string) (uint32, bool) {
	name = strings.TrimPrefix(strings.ToUpper(name), "DLT_")
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	v := C.pcap_datalink_name_to_val(cname)
	if v < 0 {
		return 0, false
	}
	return uint32(v), true
}

// DeviceNetmask returns the IPv4 netmask of network device dev, as
// libpcap's pcap_lookupnet finds it, in host byte order (255.255.255.0
// is 0xffffff00), ready for CompileNetmask. A device without an IPv4
// address returns an error; tcpdump then compiles with netmask 0.
func DeviceNetmask(dev string) (uint32, error) {
	cdev := C.CString(dev)
	defer C.free(unsafe.Pointer(cdev))
	errbuf := (*C.char)(C.calloc(pcapErrbufSize, 1))
	defer C.free(unsafe.Pointer(errbuf))
	var network, mask C.bpf_u_int32
	if C.pcap_lookupnet(cdev, &network, &mask, errbuf) != 0 {
		return 0, fmt.Errorf("netmask of %s: %s", dev, C.GoString(errbuf))
	}
	// pcap_lookupnet stores the mask in network byte order.
	b := (*[4]byte)(unsafe.Pointer(&mask))
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}
