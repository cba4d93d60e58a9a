package filter

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"github.com/gopacket/gopacket/pcapgo"
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
		{"ip broadcast", LinkEthernet, "netmask"},
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
	for file, lt := range map[uint32]LinkType{101: LinkRaw, 12: LinkRaw, 1: LinkEthernet, 276: LinkSLL2, 229: LinkIPv6} {
		if got, err := LinkTypeFromFile(file); err != nil || got != lt {
			t.Errorf("LinkTypeFromFile(%d) = %v, %v, want %v", file, got, err, lt)
		}
	}
	if _, err := LinkTypeFromFile(147); err == nil || !strings.Contains(err.Error(), "sll2") {
		t.Errorf("LinkTypeFromFile(147) = %v, want an error listing the supported ones", err)
	}
}

// TestFilterDumpMatchesTcpdump compares Dump with `tcpdump -d` on the
// same expressions (tcpdump reads the link type from an empty pcap).
func TestFilterDumpMatchesTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatalf("tcpdump is a dependency of the tests (scripts/deps.sh installs it): %v", err)
	}
	for _, lt := range []LinkType{LinkEthernet, LinkRaw} {
		path := filepath.Join(t.TempDir(), "empty.pcap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriter(f)
		if err := w.WriteFileHeader(262144, layers.LinkType(lt.FileLinkType())); err != nil {
			t.Fatal(err)
		}
		f.Close()
		for _, expr := range []string{"tcp port 80", "ip6 protochain 6", "len > 100 and udp[8:2] % 7 = 3",
			"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "ip[2:2] / (ip[0] & 0xf) > 10", "-ip[8] > 100", "ip[12:4] = 0xc0a80101"} {
			prog, err := Compile(expr, lt, 262144)
			if err != nil {
				continue // not for this link type
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
				t.Errorf("Dump(%q, %s):\n%s\ntcpdump -d:\n%s", expr, lt, got, out)
			}
		}
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
		{"scratch read before write", []bpf.Instruction{bpf.LoadScratch{Dst: bpf.RegA, N: 3}, bpf.RetA{}}, true},
		{"scratch written on one path only", []bpf.Instruction{
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipFalse: 1},
			bpf.StoreScratch{Src: bpf.RegA, N: 2},
			bpf.LoadScratch{Dst: bpf.RegX, N: 2},
			bpf.RetA{},
		}, true},
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
