package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

const filterDemoPcap = "../../testdata/filter-demo.pcap"

// runFilterCLI runs `bpfcap filter ARGS...` in-process.
func runFilterCLI(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	err = run(context.Background(), stdin, &out, &errb, append([]string{"filter"}, args...))
	return out.String(), errb.String(), err
}

func TestFilterCLIDump(t *testing.T) {
	testutils.RunsInGuests(t)
	out, _, err := runFilterCLI(t, nil, "-d", "tcp", "port", "80")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"; cBPF from libpcap, proto eth (20 instructions)\n(000) ldh      [12]\n",
		"(019) ret      #0\n", "; eBPF, direct back end (", "Exit"} {
		if !strings.Contains(out, want) {
			t.Errorf("filter -d output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runFilterCLI(t, nil, "-d", "--backend", "scratch", "proto", "ip", "udp")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "proto ip") || !strings.Contains(out, "scratch back end") {
		t.Errorf("filter -d proto ip --backend scratch:\n%s", out)
	}
}

// TestFilterCLIDumpGolden compares `bpfcap filter -d` with golden files
// (go test ./cmd/bpfcap -run DumpGolden -update rewrites them): a change
// in the translation shows up here for review.
func TestFilterCLIDumpGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"filter-dump-tcp-port-80.golden", []string{"-d", "tcp port 80"}},
		{"filter-dump-scratch-raw-udp-53.golden", []string{"-d", "--backend", "scratch", "proto", "ip", "udp port 53"}},
		{"filter-dump-protochain.golden", []string{"-d", "ip protochain 6"}},
	} {
		out, _, err := runFilterCLI(t, nil, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("../../testdata", tc.golden)
		if *update {
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (create it with -update)", err)
		}
		if out != string(want) {
			t.Errorf("bpfcap filter %q differs from %s (rerun with -update after checking):\n%s", tc.args, path, out)
		}
	}
}

func TestFilterCLIBadInput(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-d", "tcp port"}, "syntax error"},
		{[]string{"-d", "proto", "token-ring", "tcp"}, "valid protos are eth, ieee802_11, ip, ip4, ip6, sll, sll2"},
		{[]string{"-d", "proto"}, "proto needs a link type"},
		{[]string{"tcp"}, "give -d"},
		{[]string{"-d", "-r", "x.pcap", "tcp"}, "do not go together"},
		{[]string{"-d", "--backend", "helper", "tcp"}, "unknown --backend"},
		{[]string{"-r", "/nonexistent.pcap", "tcp"}, "no such file"},
		{[]string{"-r", filterDemoPcap, "proto", "ip", "tcp"}, "link type eth, not proto ip"},
		{[]string{"-r", filterDemoPcap, "-w", "/tmp/never", "tcp port"}, "syntax error"},
	} {
		_, _, err := runFilterCLI(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bpfcap filter %q: %v, want an error with %q", tc.args, err, tc.want)
			continue
		}
		var buf bytes.Buffer
		if code := exitCode(err, &buf); code != 2 {
			t.Errorf("bpfcap filter %q: exit code %d", tc.args, code)
		}
	}
	if _, err := os.Stat("/tmp/never"); !errors.Is(err, os.ErrNotExist) {
		t.Error("a bad expression left an output file behind")
	}
}

// libpcapMatches returns the packets of a pcap file libpcap's own filter
// accepts, for comparison.
func libpcapMatches(t *testing.T, path, expr string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	lt := r.LinkType()
	if lt == 101 {
		lt = 12
	}
	ref, err := pcap.NewBPF(lt, 262144, expr)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if ref.Matches(ci, data) {
			out = append(out, data)
		}
	}
}

func readNgPackets(t *testing.T, r io.Reader) ([][]byte, layers.LinkType) {
	t.Helper()
	ng, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		data, _, err := ng.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out, ng.LinkType()
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
}

var matchedLine = regexp.MustCompile(`(?m)^(\d+) matched of (\d+)$`)

func TestFilterCLIReadWrite(t *testing.T) {
	testutils.RequireRoot(t)
	dir := t.TempDir()
	for _, expr := range []string{"tcp port 80", "udp port 53 or icmp", "vlan and tcp", "ip6", "arp", "not ip"} {
		want := libpcapMatches(t, filterDemoPcap, expr)
		out := filepath.Join(dir, "out.pcapng")
		_, stderr, err := runFilterCLI(t, nil, "-r", filterDemoPcap, "-w", out, expr)
		if err != nil {
			t.Fatalf("filter -r %q: %v", expr, err)
		}
		m := matchedLine.FindStringSubmatch(stderr)
		if m == nil || m[1] != strconv.Itoa(len(want)) || m[2] != "18" {
			t.Errorf("filter -r %q: stderr %q, want %d matched of 18", expr, stderr, len(want))
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		got, lt := readNgPackets(t, f)
		f.Close()
		if lt != layers.LinkTypeEthernet || len(got) != len(want) {
			t.Fatalf("filter -r %q: wrote %d packets (link type %v), libpcap matches %d", expr, len(got), lt, len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("filter -r %q: packet %d changed", expr, i)
			}
		}
		// tcpdump reads the file and sees the same packets.
		tout, err := exec.Command("tcpdump", "-nr", out).Output()
		if err != nil {
			t.Fatalf("tcpdump -r %s: %v", out, err)
		}
		if n := strings.Count(string(tout), "\n"); n != len(want) {
			t.Errorf("tcpdump reads %d packets from the output of %q, want %d:\n%s", n, expr, len(want), tout)
		}
	}

	// "-" writes pcapng to stdout; no -w only counts.
	stdout, stderr, err := runFilterCLI(t, nil, "-r", filterDemoPcap, "-w", "-", "tcp port 80")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := readNgPackets(t, strings.NewReader(stdout)); len(got) != 8 || !strings.Contains(stderr, "8 matched of 18") {
		t.Errorf("-w -: %d packets, stderr %q", len(got), stderr)
	}
	stdout, stderr, err = runFilterCLI(t, nil, "-r", filterDemoPcap, "tcp port 80")
	if err != nil || stdout != "" || !strings.Contains(stderr, "8 matched of 18") {
		t.Errorf("without -w: %v, stdout %d bytes, stderr %q", err, len(stdout), stderr)
	}
	// A pcap on stdin (libpcap reads it through a pipe).
	demo, err := os.ReadFile(filterDemoPcap)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err = runFilterCLI(t, bytes.NewReader(demo), "-r", "-", "-w", "-", "tcp port 80")
	if got, _ := readNgPackets(t, strings.NewReader(stdout)); err != nil || len(got) != 8 || !strings.Contains(stderr, "8 matched of 18") {
		t.Errorf("pcap on stdin: %v, %d packets, stderr %q", err, len(got), stderr)
	}
	// No match still writes a valid, empty pcapng.
	empty := filepath.Join(dir, "empty.pcapng")
	if _, stderr, err := runFilterCLI(t, nil, "-r", filterDemoPcap, "-w", empty, "port 9999"); err != nil || !strings.Contains(stderr, "0 matched of 18") {
		t.Fatalf("no match: %v, %q", err, stderr)
	}
	if err := exec.Command("tcpdump", "-nr", empty).Run(); err != nil {
		t.Errorf("tcpdump cannot read the empty output: %v", err)
	}
}

// TestFilterCLIInputs runs the filter on pcapng input (read from stdin)
// and on a raw-IP pcap (LINKTYPE_RAW, 101), against libpcap.
func TestFilterCLIInputs(t *testing.T) {
	testutils.RequireRoot(t)
	dir := t.TempDir()
	f, err := os.Open(filterDemoPcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var ng bytes.Buffer
	ngw, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	rawPath := filepath.Join(dir, "raw.pcap")
	rf, err := os.Create(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	rw := pcapgo.NewWriter(rf)
	if err := rw.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := ngw.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		if et := uint16(data[12])<<8 | uint16(data[13]); et == 0x0800 || et == 0x86dd {
			ci.CaptureLength, ci.Length = len(data)-14, len(data)-14
			if err := rw.WritePacket(ci, data[14:]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ngw.Flush(); err != nil {
		t.Fatal(err)
	}
	rf.Close()

	_, stderr, err := runFilterCLI(t, bytes.NewReader(ng.Bytes()), "-r", "-", "tcp port 80")
	if err != nil || !strings.Contains(stderr, "8 matched of 18") {
		t.Errorf("pcapng on stdin: %v, %q", err, stderr)
	}

	// A pcapng with an Ethernet and a raw-IP interface: each packet is
	// filtered for its own link type, and the output keeps both.
	var mixed bytes.Buffer
	mw, err := pcapgo.NewNgWriterInterface(&mixed, pcapgo.NgInterface{Name: "eth", LinkType: layers.LinkTypeEthernet, SnapLength: 65535},
		pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rawID, err := mw.AddInterface(pcapgo.NgInterface{Name: "raw", LinkType: layers.LinkTypeRaw, SnapLength: 65535})
	if err != nil {
		t.Fatal(err)
	}
	ethPkts := libpcapMatches(t, filterDemoPcap, "")
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range ethPkts {
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(p), Length: len(p)}
		if err := mw.WritePacket(ci, p); err != nil {
			t.Fatal(err)
		}
		if et := uint16(p[12])<<8 | uint16(p[13]); et == 0x0800 || et == 0x86dd {
			ci = gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(p) - 14, Length: len(p) - 14, InterfaceIndex: rawID}
			if err := mw.WritePacket(ci, p[14:]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := mw.Flush(); err != nil {
		t.Fatal(err)
	}
	mixedOut := filepath.Join(dir, "mixed-out.pcapng")
	_, stderr, err = runFilterCLI(t, bytes.NewReader(mixed.Bytes()), "-r", "-", "-w", mixedOut, "tcp port 80")
	if err != nil || !strings.Contains(stderr, "16 matched of 34") {
		t.Errorf("two-interface pcapng: %v, %q, want 16 matched of 34", err, stderr)
	}
	// tcpdump (libpcap) refuses pcapng files that mix link types;
	// Wireshark reads them.
	out, err := exec.Command("tshark", "-n", "-r", mixedOut, "-T", "fields", "-e", "frame.interface_id", "-e", "tcp.port").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", mixedOut, err)
	}
	perIntf := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || !strings.Contains(f[1], "80") {
			t.Errorf("tshark line %q: not a tcp port 80 packet", line)
			continue
		}
		perIntf[f[0]]++
	}
	if perIntf["0"] != 8 || perIntf["1"] != 8 {
		t.Errorf("tshark sees %v packets per output interface, want 8 and 8", perIntf)
	}
	for _, expr := range []string{"tcp port 80", "udp port 53", "ip6", "icmp or tcp port 22"} {
		want := libpcapMatches(t, rawPath, expr)
		out := filepath.Join(dir, "raw-out.pcapng")
		_, stderr, err := runFilterCLI(t, nil, "-r", rawPath, "-w", out, expr)
		if err != nil {
			t.Fatalf("raw IP %q: %v", expr, err)
		}
		if !strings.Contains(stderr, strconv.Itoa(len(want))+" matched of 16") {
			t.Errorf("raw IP %q: %q, want %d matched of 16", expr, stderr, len(want))
		}
		o, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		got, lt := readNgPackets(t, o)
		o.Close()
		if lt != layers.LinkTypeRaw || len(got) != len(want) {
			t.Errorf("raw IP %q: %d packets of link type %v, want %d of RAW", expr, len(got), lt, len(want))
		}
	}
}
