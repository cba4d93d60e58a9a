package filter

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

func TestFilterCompileErrors(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, tc := range []struct {
		expr string
		lt   LinkType
		want string // part of libpcap's message
	}{
		{"tcp port", LinkEthernet, "syntax error"},
		{"port 99999", LinkEthernet, "port 99999"},
		{"host 300.1.2.3", LinkEthernet, ""},
		{"ether host 00:11:22:33:44:55", LinkRaw, "ether"},
		{"vlan 5000", LinkEthernet, "VLAN"},
		{"frobnicate", LinkEthernet, ""},
	} {
		_, err := Compile(tc.expr, tc.lt, 262144)
		if err == nil {
			t.Errorf("Compile(%q, %s) succeeded, want libpcap's error", tc.expr, tc.lt)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.expr) {
			t.Errorf("Compile(%q, %s) = %v, want the expression and %q", tc.expr, tc.lt, err, tc.want)
		}
	}
	if _, err := Compile("tcp", LinkEthernet, 0); err == nil {
		t.Error("Compile with snaplen 0 succeeded")
	}
	// Every link type compiles what it can carry.
	for _, name := range ProtoNames() {
		lt, _ := ParseProto(name)
		prog, err := Compile("", lt, 65535)
		if err != nil || len(prog) == 0 {
			t.Errorf("Compile(\"\", %s) = %v, %v", name, prog, err)
		}
	}
}

func TestFilterParseProto(t *testing.T) {
	testutils.RunsInGuests(t)
	want := map[string]LinkType{"eth": 1, "ip": 12, "ip4": 228, "ip6": 229, "ieee802_11": 105, "sll": 113, "sll2": 276, "ETH": 1}
	for name, lt := range want {
		got, err := ParseProto(name)
		if err != nil || got != lt {
			t.Errorf("ParseProto(%q) = %d, %v, want %d", name, got, err, lt)
		}
	}
	_, err := ParseProto("ethernet")
	if err == nil {
		t.Fatal("ParseProto(ethernet) succeeded")
	}
	for _, name := range ProtoNames() {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not list %s", err, name)
		}
	}
	if LinkRaw.FileLinkType() != 101 || LinkEthernet.FileLinkType() != 1 {
		t.Errorf("FileLinkType: raw %d, eth %d", LinkRaw.FileLinkType(), LinkEthernet.FileLinkType())
	}
	// libpcap's names, and its LINKTYPE_/DLT_ mapping where the
	// numbers differ (LINKTYPE_ATM_RFC1483 100 is DLT_ATM_RFC1483 11).
	for name, lt := range map[string]LinkType{"ieee802_11_radio": 127, "null": 0, "DLT_PPP": 9, "Linux_SLL": 113, "loop": 108} {
		got, err := ParseProto(name)
		if err != nil || got != lt {
			t.Errorf("ParseProto(%q) = %d, %v, want %d", name, got, err, lt)
		}
	}
	if s := LinkType(127).String(); s != "ieee802_11_radio" {
		t.Errorf("LinkType(127) = %q", s)
	}
	for file, lt := range map[uint32]LinkType{101: LinkRaw, 12: LinkRaw, 1: LinkEthernet, 276: LinkSLL2, 229: LinkIPv6, 147: 147, 100: 11, 127: 127, 0: 0} {
		if got := LinkTypeFromFile(file); got != lt {
			t.Errorf("LinkTypeFromFile(%d) = %v, want %v", file, got, lt)
		}
	}
	if got := LinkType(11).FileLinkType(); got != 100 {
		t.Errorf("DLT_ATM_RFC1483 is LINKTYPE %d in files, want 100", got)
	}
}

// TestFilterDumpMatchesTcpdump compares Dump with `tcpdump -d` on the
// same expressions (tcpdump reads the link type from an empty pcap).
func TestFilterDumpMatchesTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatalf("tcpdump is a dependency of the tests (scripts/deps.sh installs it): %v", err)
	}
	// Link types beyond bpfcap's short names: radiotap, null, PPP,
	// Linux SLL, Cisco HDLC, Frame Relay, IPNET, USB, Bluetooth.
	// Each also in a file of the other byte order (big endian).
	type variant struct {
		lt      LinkType
		swapped bool
	}
	var variants []variant
	for _, lt := range []LinkType{LinkEthernet, LinkRaw, 127, 0, 108, 9, LinkSLL, 104, 107, 226, 189, 187} {
		variants = append(variants, variant{lt, false}, variant{lt, true})
	}
	for _, v := range variants {
		lt := v.lt
		path := filepath.Join(t.TempDir(), "empty.pcap")
		hdr := make([]byte, 24)
		order := binary.ByteOrder(binary.LittleEndian)
		if v.swapped {
			order = binary.BigEndian
		}
		order.PutUint32(hdr, 0xa1b2c3d4)
		order.PutUint16(hdr[4:], 2)
		order.PutUint16(hdr[6:], 4)
		order.PutUint32(hdr[16:], 262144)
		order.PutUint32(hdr[20:], lt.FileLinkType())
		if err := os.WriteFile(path, hdr, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, expr := range []string{"tcp port 80", "ip6 protochain 6", "len > 100 and udp[8:2] % 7 = 3",
			"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "ip[2:2] / (ip[0] & 0xf) > 10", "-ip[8] > 100", "ip[12:4] = 0xc0a80101",
			"ip broadcast", "geneve", "wlan type data", "ip or ip6", ""} {
			prog, err := CompileFile(expr, lt, 262144, v.swapped, 0)
			if err != nil {
				continue // not for this link type
			}
			if lt == LinkEthernet || lt == LinkRaw {
				// A dead handle compiles the same for these.
				dead, err := Compile(expr, lt, 262144)
				if err != nil || !slices.Equal(dead, prog) {
					t.Errorf("Compile(%q, %s) = %v, %v; CompileFile gives %v", expr, lt, dead, err, prog)
				}
			}
			got, err := Dump(prog)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tcpdump, "-d", "-r", path, "--", expr).Output()
			if err != nil {
				t.Fatalf("tcpdump -d %q: %v", expr, err)
			}
			if got != string(out) {
				t.Errorf("Dump(%q, %s, swapped %v):\n%s\ntcpdump -d:\n%s", expr, lt, v.swapped, got, out)
			}
		}
	}
}

// TestFilterNetmask: `ip broadcast` uses the netmask given (tcpdump -r:
// 0), and DeviceNetmask reads a device's as pcap_lookupnet does.
func TestFilterNetmask(t *testing.T) {
	dump := func(netmask uint32) string {
		prog, err := CompileNetmask("ip broadcast", LinkEthernet, 262144, netmask)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Dump(prog)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := dump(0); !strings.Contains(d, "jeq      #0x0 ") || !strings.Contains(d, "jeq      #0xffffffff") {
		t.Errorf("netmask 0: host part is not the whole address:\n%s", d)
	}
	if d := dump(0xffffff00); !strings.Contains(d, "jset     #0xff ") || !strings.Contains(d, "jeq      #0xff ") {
		t.Errorf("netmask 255.255.255.0: host part is not the last byte:\n%s", d)
	}
	if m, err := DeviceNetmask("lo"); err != nil || m != 0xff000000 {
		t.Errorf("DeviceNetmask(lo) = %#x, %v, want 0xff000000 (127.0.0.1/8)", m, err)
	}
	if _, err := DeviceNetmask("bpfcap-no-such-dev"); err == nil {
		t.Error("DeviceNetmask of a missing device succeeded")
	}
}

func TestFilterTranslateRefuses(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, tc := range []struct {
		name        string
		prog        []bpf.Instruction
		unsupported bool
	}{
		{"ancillary protocol load", []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtProto}, bpf.RetA{}}, true},
		{"ancillary cpu load", []bpf.Instruction{bpf.LoadAbsolute{Off: 0xfffff024, Size: 4}, bpf.RetA{}}, true},
		{"empty", nil, false},
		{"falls off the end", []bpf.Instruction{bpf.LoadConstant{Dst: bpf.RegA, Val: 1}}, false},
		{"jumps past the end", []bpf.Instruction{bpf.Jump{Skip: 5}, bpf.RetA{}}, false},
		{"backward jump before the start", []bpf.Instruction{bpf.Jump{Skip: 0xfffffff0}, bpf.RetA{}}, false},
		{"bad opcode", []bpf.Instruction{bpf.RawInstruction{Op: 0xff}, bpf.RetA{}}, false},
	} {
		for _, be := range []Backend{Direct, Scratch} {
			_, err := Translate(tc.prog, Options{Backend: be, ScratchSize: 4096})
			if err == nil {
				t.Errorf("%s (%s): translated", tc.name, be)
				continue
			}
			if errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("%s (%s): %v, want ErrUnsupported: %v", tc.name, be, err, tc.unsupported)
			}
		}
	}
	if _, err := Translate([]bpf.Instruction{bpf.RetA{}}, Options{Backend: Scratch}); err == nil {
		t.Error("scratch back end without a buffer size translated")
	}
	// A filter that can never match becomes "return 0".
	prog, _ := Compile("ether[70000] = 1", LinkEthernet, 262144)
	insns, err := Translate(prog, Options{})
	if err != nil || len(insns) != 2 {
		t.Errorf("never-matching filter: %v, %v", insns, err)
	}
}

// TestFilterMatcher compares Matcher with libpcap's pcap_offline_filter
// (no kernel needed) over part of the differential corpus, including
// truncated captures where `len` and the captured length differ.
func TestFilterMatcher(t *testing.T) {
	testutils.RunsInGuests(t)
	pkts := ethernetCorpus(3000)
	filters := genFilters(100)
	var runs, matches, bounded int
	for _, expr := range filters {
		prog, err := Compile(expr, LinkEthernet, testSnaplen)
		if err != nil {
			continue
		}
		m, err := NewMatcher(prog)
		if err != nil {
			t.Fatalf("NewMatcher(%q): %v", expr, err)
		}
		ref, err := pcap.NewBPF(layers.LinkTypeEthernet, testSnaplen, expr)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pkts {
			got, stopped := m.run(p.data, p.wireLen)
			if stopped {
				bounded++
				continue // libpcap might loop forever here
			}
			want := ref.Matches(gopacket.CaptureInfo{CaptureLength: len(p.data), Length: p.wireLen}, p.data)
			runs++
			if want {
				matches++
			}
			if (got != 0) != want {
				t.Errorf("filter %q packet %d: matcher %d, libpcap %v", expr, i, got, want)
			}
		}
	}
	t.Logf("%d comparisons, %d matches, %d runs stopped at the loop bound", runs, matches, bounded)
	if _, err := NewMatcher([]bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtRand}, bpf.RetA{}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NewMatcher with an ancillary load: %v", err)
	}
}
