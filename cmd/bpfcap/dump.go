package main

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/bpfcap/bpfcap/pcapng"
)

// dumpOptions are tcpdump's payload dump flags; each counts how often
// the flag was given (twice: the link-level header too).
type dumpOptions struct {
	Hex      int // -x
	HexASCII int // -X
	ASCII    int // -A
}

// linkHeaderLen is how many bytes of data are link-level header, as
// tcpdump counts them for -x, -X and -A (802.1Q tags included).
func linkHeaderLen(data []byte, lt pcapng.LinkType) int {
	switch lt {
	case pcapng.LinkTypeEthernet:
		n := 14
		for len(data) >= n {
			et := binary.BigEndian.Uint16(data[n-2:])
			if et != 0x8100 && et != 0x88a8 {
				break
			}
			n += 4
		}
		return min(n, len(data))
	case pcapng.LinkTypeLinuxSLL:
		return min(16, len(data))
	}
	return 0
}

// dump appends tcpdump's payload dump of data (the captured bytes) to b:
// -X hex and ASCII, else -x hex, else -A ASCII, from the network header
// on (from the link header when the flag was given twice).
func (o dumpOptions) dump(b *strings.Builder, data []byte, lt pcapng.LinkType) {
	from := func(twice bool) []byte {
		if twice {
			return data
		}
		return data[linkHeaderLen(data, lt):]
	}
	switch {
	case o.HexASCII > 0:
		hexASCII(b, from(o.HexASCII > 1))
	case o.Hex > 0:
		hexOnly(b, from(o.Hex > 1))
	case o.ASCII > 0:
		asciiOnly(b, from(o.ASCII > 1))
	}
}

func isGraph(c byte) bool { return c > 0x20 && c < 0x7f }

// hexASCII is tcpdump's hex_and_ascii_print: 16 bytes a line, in 16-bit
// groups, then the printable characters.
func hexASCII(b *strings.Builder, data []byte) {
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		var hex, asc strings.Builder
		for i := 0; i+1 < len(line); i += 2 {
			fmt.Fprintf(&hex, " %02x%02x", line[i], line[i+1])
		}
		if len(line)%2 == 1 {
			fmt.Fprintf(&hex, " %02x", line[len(line)-1])
		}
		for _, c := range line {
			if isGraph(c) {
				asc.WriteByte(c)
			} else {
				asc.WriteByte('.')
			}
		}
		fmt.Fprintf(b, "\n\t0x%04x: %-40s  %s", off, hex.String(), asc.String())
	}
}

// hexOnly is tcpdump's hex_print.
func hexOnly(b *strings.Builder, data []byte) {
	for i := 0; i < len(data); i += 2 {
		if i%16 == 0 {
			fmt.Fprintf(b, "\n\t0x%04x: ", i)
		}
		if i+1 < len(data) {
			fmt.Fprintf(b, " %02x%02x", data[i], data[i+1])
		} else {
			fmt.Fprintf(b, " %02x", data[i])
		}
	}
}

// asciiOnly is tcpdump's ascii_print: printable characters, tabs, spaces
// and newlines as they are, a CR before a LF dropped, others as '.'.
func asciiOnly(b *strings.Builder, data []byte) {
	b.WriteByte('\n')
	for i, c := range data {
		switch {
		case c == '\r':
			if i+1 == len(data) || data[i+1] != '\n' {
				b.WriteByte('.')
			}
		case isGraph(c) || c == '\t' || c == ' ' || c == '\n':
			b.WriteByte(c)
		default:
			b.WriteByte('.')
		}
	}
}
