package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/pcapng"
)

func runCLI(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = run(context.Background(), strings.NewReader(""), &o, &e, args)
	return o.String(), e.String(), err
}

// TestFlagsTcpdumpTable: every flag of tcpdump(1) 4.99 on a capture
// command either works (the run gets past flag checking and fails later
// on the made-up hook) or is refused with tcpdump's name for it and what
// to do instead; none gives pflag's bare "unknown shorthand flag". Needs
// no privileges and no kernel.
func TestFlagsTcpdumpTable(t *testing.T) {
	const hook = "kprobe:no_such_function_xyz"
	works := [][]string{
		{"-n"}, {"-nn"}, {"-e"}, {"-l"}, {"-#"}, {"--number"}, {"-t"}, {"-tt"}, {"-ttt"}, {"-tttt"}, {"-ttttt"},
		{"-U"}, {"--packet-buffered"}, {"--immediate-mode"}, {"-p"}, {"--no-promiscuous-mode"}, {"-K"}, {"-v", "-K"},
		{"--dont-verify-checksums"}, {"-S"}, {"--absolute-tcp-sequence-numbers"}, {"-N"}, {"--nano"},
		{"-i", "any"}, {"--interface", "any"}, {"-c", "5"}, {"--count", "5"}, {"-s", "96"}, {"--snapshot-length", "96"},
		{"-B", "1024"}, {"--buffer-size", "1024"}, {"-w", "/nonexistent/x"}, {"-Z", "nobody"},
		{"--relinquish-privileges", "nobody"}, {"-v"}, {"-vv"}, {"-vvv"},
		{"-x"}, {"-xx"}, {"-X"}, {"-XX"}, {"-A"}, {"-AA"},
	}
	for _, w := range works {
		_, _, err := runCLI(append([]string{"trace", hook}, w...)...)
		if err == nil {
			t.Errorf("%v: the made-up hook attached", w)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "unknown") && strings.Contains(msg, "flag") || strings.Contains(msg, "tcpdump's") || strings.Contains(msg, "-Q") {
			t.Errorf("%v: refused: %v", w, err)
		}
	}
	refused := []struct {
		args []string
		want string
	}{
		{[]string{"-b"}, "bpfcap trace ... | tcpdump -nr - -b"},
		{[]string{"-C", "100"}, "bpfcap trace ... | tcpdump -r - -w FILE -C SIZE"},
		{[]string{"-G", "60"}, "| tcpdump -r - -w FILE -G SECONDS"},
		{[]string{"-W", "3"}, "| tcpdump -r - -w FILE -C SIZE -W COUNT"},
		{[]string{"-z", "gzip"}, "-z COMMAND"},
		{[]string{"-d"}, "bpfcap filter -d EXPRESSION"},
		{[]string{"-dd"}, "bpfcap filter -d EXPRESSION"},
		{[]string{"-ddd"}, "bpfcap filter -d EXPRESSION"},
		{[]string{"-D"}, "bpfcap -D lists the devices"},
		{[]string{"--list-interfaces"}, "bpfcap -D lists the devices"},
		{[]string{"-E", "x"}, "-E SECRET"},
		{[]string{"-M", "x"}, "-M SECRET"},
		{[]string{"-m", "x"}, "-m MODULE"},
		{[]string{"-T", "rtp"}, "-T TYPE"},
		{[]string{"-u"}, "-u"},
		{[]string{"-f"}, "leave -f out"},
		{[]string{"-H"}, "-H"},
		{[]string{"-q"}, "-q"},
		{[]string{"-F", "file"}, `"$(cat FILE)"`},
		{[]string{"-I"}, "proto ieee802_11"},
		{[]string{"--monitor-mode"}, "proto ieee802_11"},
		{[]string{"-j", "host"}, "no other type"},
		{[]string{"--time-stamp-type", "host"}, "no other type"},
		{[]string{"-J"}, "no other type"},
		{[]string{"--list-time-stamp-types"}, "no other type"},
		{[]string{"-L"}, "proto eth|ip|ip4|ip6|ieee802_11|auto"},
		{[]string{"--list-data-link-types"}, "proto eth|ip|ip4|ip6|ieee802_11|auto"},
		{[]string{"-y", "EN10MB"}, "-y EN10MB is proto eth"},
		{[]string{"--linktype", "RAW"}, "-y RAW is proto ip"},
		{[]string{"-O"}, "libpcap's optimizer"},
		{[]string{"--no-optimize"}, "libpcap's optimizer"},
		{[]string{"-r", "f"}, "bpfcap read FILE"},
		{[]string{"-V", "f"}, "bpfcap read"},
		{[]string{"--print"}, "tee FILE"},
		{[]string{"--time-stamp-precision", "micro"}, "--time-stamp-precision micro"},
		{[]string{"--micro"}, "--micro"},
		{[]string{"--version"}, "bpfcap --version"},
		{[]string{"-Q", "in"}, "tp_btf:netif_receive_skb for received"},
		{[]string{"--direction", "out"}, "tp_btf:net_dev_start_xmit for sent"},
		{[]string{"-Q", "sideways"}, "want in, out or inout"},
	}
	for _, r := range refused {
		_, _, err := runCLI(append([]string{"trace", hook}, r.args...)...)
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("%v: err %v, want one containing %q", r.args, err, r.want)
		}
	}
}

// TestFlagsTcpdumpDevice: -i works wherever dev does (tc -i IF), and
// -i any where "every device" means something; elsewhere the refusal
// names the command that sees every device. Needs no privileges.
func TestFlagsTcpdumpDevice(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    string // in the error
		notWant string
	}{
		{[]string{"tc", "-i", "nosuchdev0"}, "nosuchdev0", "tc needs an interface"},
		{[]string{"tc", "-i", "nosuchdev0", "-Q", "in", "udp"}, "nosuchdev0", "-Q"},
		{[]string{"tc", "-i", "nosuchdev0", "ingress", "-Q", "in"}, "the direction is given twice", ""},
		{[]string{"tc", "-i", "any"}, "bpfcap trace tp_btf:netif_receive_skb tp_btf:net_dev_start_xmit", ""},
		{[]string{"tc", "dev", "any"}, "bpfcap trace tp_btf:netif_receive_skb tp_btf:net_dev_start_xmit", ""},
		{[]string{"tc"}, "tc needs an interface", ""},
		{[]string{"xdp", "dev", "any"}, "bpfcap trace tp_btf:netif_receive_skb", ""},
		{[]string{"xdp", "dev", "nosuchdev0", "-Q", "out"}, "bpfcap tc -i IF -Q out", ""},
		{[]string{"xdp", "/nonexistent/pin", "-Q", "in"}, "/nonexistent/pin", "-Q"},
		{[]string{"xdp", "-i", "nosuchdev0", "icmp"}, "nosuchdev0", "pin"},
		{[]string{"xdp"}, "xdp needs a pinned hook map or a device", ""},
		{[]string{"trace", "kprobe:no_such_function_xyz", "-i", "any"}, "", "any"},
		{[]string{"-i", "eth0"}, "bpfcap tc -i IF", ""},
		{[]string{"-w", "x"}, "captures with a command first", ""},
	} {
		_, _, err := runCLI(tc.args...)
		if err == nil {
			t.Errorf("%v: no error", tc.args)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
			t.Errorf("%v: err %v, want %q and not %q", tc.args, err, tc.want, tc.notWant)
		}
	}
}

// TestVersion: bpfcap --version names bpfcap's version, the commit, Go
// and libpcap, as tcpdump --version does.
func TestVersion(t *testing.T) {
	out, _, err := runCLI("--version")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^bpfcap version \S+$`, `(?m)^commit \S+`, `(?m)^Go go1\.\d+`, `(?m)^libpcap version 1\.\d+`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("--version output lacks %s:\n%s", re, out)
		}
	}
}

// TestFlagsListDevices: bpfcap -D lists devices as tcpdump -D does.
func TestFlagsListDevices(t *testing.T) {
	out, _, err := runCLI("-D")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^1\.lo \[Up, Running, Loopback\]$`).MatchString(out) || !strings.Contains(out, ".any (") {
		t.Errorf("bpfcap -D:\n%s", out)
	}
}

// TestFlagsLinesIntoPipe: -l prints lines, not pcapng, into a pipe, and
// -# -tt -e shape them as tcpdump does.
func TestFlagsLinesIntoPipe(t *testing.T) {
	var stdout, stderr bytes.Buffer
	o := &captureOptions{Count: 2}
	o.tcpdump = tcpdumpOptions{Lines: true, Number: true, Time: 2, LinkHeader: true}
	src := &tickSource{interval: 5 * time.Millisecond}
	err := runCapture(context.Background(), &cliEnv{stdout: &stdout, stderr: &stderr}, o,
		func(context.Context) (bpfcap.Source, error) { return src, nil })
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^    1  \d{10}\.\d{9} fake:tick: 00:00:00:00:00:00 > 00:00:00:00:00:00, ethertype Unknown \(0x0000\), length 60: `)
	if !want.MatchString(stdout.String()) || strings.Count(stdout.String(), "\n") != 2 {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}

// TestReadFile: bpfcap read (and -r) prints a file bpfcap wrote with its
// metadata: hook, direction, device, drop reason, process, netns, mark.
func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapng.NewWriter(f, pcapng.WriterOptions{Application: "bpfcap"})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := w.AddInterface(pcapng.Interface{Name: "tp_btf:kfree_skb", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536})
	if err != nil {
		t.Fatal(err)
	}
	udp := serialize(t, udpPacketLayers()...)
	p := &pcapng.Packet{Interface: idx, Timestamp: time.Date(2026, 12, 7, 12, 0, 0, 5, time.Local), Data: udp, WireLen: len(udp),
		DropReason: "NETFILTER_DROP", Device: "veth0", Direction: pcapng.DirectionInbound,
		Flags: pcapng.HasPID | pcapng.HasNetns | pcapng.HasMark, PID: 42, Comm: "Web Content", Netns: 4026531840, Mark: 0x10}
	if err := w.WritePacket(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := "12:00:00.000000005 tp_btf:kfree_skb in veth0: IP 10.0.0.1.5353 > 10.0.0.2.53: UDP, length 4 [NETFILTER_DROP] pid 42 comm Web Content netns 4026531840 mark 0x10\n"
	for _, args := range [][]string{{"read", path}, {"-r", path}, {"read", path, "udp port 53"}} {
		out, _, err := runCLI(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if out != want {
			t.Errorf("%v:\n got %q\nwant %q", args, out, want)
		}
	}
	if out, _, err := runCLI("read", path, "tcp"); err != nil || out != "" {
		t.Errorf("read with a filter that matches nothing: %q, %v", out, err)
	}
}

// udpPacketLayers is an Ethernet frame with a 4-byte DNS-port datagram.
func udpPacketLayers() []gopacket.SerializableLayer {
	mac1, _ := net.ParseMAC("02:00:00:00:00:01")
	mac2, _ := net.ParseMAC("02:00:00:00:00:02")
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
	udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload("abcd")}
}

// TestReadPcapPlain: a file bpfcap did not write (classic pcap) reads as
// plain lines: the time and what tcpdump -n says, with -v as tcpdump -v.
func TestReadPcapPlain(t *testing.T) {
	frames := decodeCorpus(t)
	path := writeDecodePcap(t, frames)
	for _, v := range []bool{false, true} {
		args := []string{"read", path, "-t"}
		if v {
			args = append(args, "-v")
		}
		out, _, err := runCLI(args...)
		if err != nil {
			t.Fatal(err)
		}
		compareLines(t, strings.Join(args[2:], " "), out, decodeVerboseLines(frames, false, v, dumpOptions{}))
	}
}
