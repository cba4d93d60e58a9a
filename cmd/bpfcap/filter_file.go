package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/bpfcap/bpfcap/filter"
)

// runFilterFile is `bpfcap filter -r`: it decides every packet of the
// input with a filter.FileRunner, writes the matching ones with -w and
// prints the count.
func runFilterFile(ctx context.Context, env *cliEnv, o filterOptions, expr string, want *filter.LinkType, netmask uint32) (err error) {
	in := env.stdin
	if o.read != "-" {
		f, err := os.Open(o.read)
		if err != nil {
			return fmt.Errorf("filter: %w", err)
		}
		defer f.Close()
		in = f
	}
	fr, err := filter.NewFileReader(in, o.write != "")
	if err != nil {
		return fmt.Errorf("filter: %s: %w", o.read, err)
	}
	defer fr.Close()

	run, err := filter.NewFileRunner(expr, filter.FileRunnerOptions{Netmask: netmask, LinkType: want})
	if err != nil {
		return fmt.Errorf("filter: %w (running filters in the kernel needs root or CAP_BPF+CAP_NET_ADMIN)", err)
	}
	defer run.Close()
	// A pcap file's link type is known now: compile and load the filter
	// before reading. (A pcapng's interfaces come with its packets; the
	// filter is compiled at the first one, still before any output.) A
	// bad expression leaves no output behind.
	if first, known := fr.First(); known {
		if err := run.Prepare(first); err != nil {
			return filterRunError(o.read, expr, 0, err)
		}
	}
	var out *filterOutput
	if o.write != "" {
		out = &filterOutput{env: env, name: o.write, source: o.read, expr: expr}
		defer func() {
			if cerr := out.close(); err == nil && cerr != nil {
				err = fmt.Errorf("filter: write %s: %w", o.write, cerr)
			}
		}()
	}

	for {
		p, err := run.Next(ctx, fr)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return filterRunError(o.read, expr, run.Stats().Packets, err)
		}
		if out != nil {
			if err := out.packet(p); err != nil {
				return fmt.Errorf("filter: write %s: %w", o.write, err)
			}
		}
	}
	if out != nil {
		if err := out.end(fr); err != nil {
			return fmt.Errorf("filter: write %s: %w", o.write, err)
		}
	}
	st := run.Stats()
	fmt.Fprintf(env.stderr, "kernel check: %d packets run in the kernel agree with libpcap", st.KernelChecked)
	if st.KernelSkipped > 0 {
		fmt.Fprintf(env.stderr, " (%d more no kernel test program decides)", st.KernelSkipped)
	}
	fmt.Fprintf(env.stderr, "\n%d matched of %d\n", st.Matched, st.Packets)
	return nil
}

// filterRunError words an error of FileRunner.Prepare or Next on file
// name after n packets.
func filterRunError(name, expr string, n int, err error) error {
	var (
		rerr     *filter.ReadError
		lte      *filter.LinkTypeError
		mismatch *filter.KernelMismatchError
	)
	switch {
	case errors.As(err, &rerr):
		return fmt.Errorf("filter: read %s after %d packets: %w", name, n, rerr.Err)
	case errors.As(err, &lte):
		return fmt.Errorf("filter: %s has link type %s, not proto %s: leave proto out with -r", name, lte.File, lte.Want)
	case errors.As(err, &mismatch):
		return fmt.Errorf("filter %q: the kernel translation is wrong on %w (please report it with the packet)", expr, err)
	}
	return fmt.Errorf("filter: %w", err)
}

// filterOutput is the -w file of `filter -r`, created at its first write.
// From pcapng input it is the input without the packets that do not
// match: every other block, and every kept packet's block, is copied byte
// for byte (comments, flags, packet ids, custom options, interface names
// and descriptions, statistics). From pcap input it is a pcapng with one
// interface per link type, named after the input.
type filterOutput struct {
	env                *cliEnv
	name, source, expr string

	file  *os.File // nil for stdout
	raw   *bufio.Writer
	ng    *pcapgo.NgWriter
	ngIDs map[filter.LinkType]int
}

// writer creates the output on first use.
func (o *filterOutput) writer() (io.Writer, error) {
	if o.raw != nil {
		return o.raw, nil
	}
	var w io.Writer = o.env.stdout
	if o.name != "-" {
		f, err := os.Create(o.name)
		if err != nil {
			return nil, err
		}
		o.file, w = f, f
	}
	o.raw = bufio.NewWriterSize(w, 1<<16)
	return o.raw, nil
}

// packet writes a matching packet: from pcapng input, its blocks.
func (o *filterOutput) packet(p filter.FilePacket) error {
	if p.Blocks != nil {
		return o.blocks(p.Blocks)
	}
	id, err := o.pcapInterface(p.Format.LinkType)
	if err != nil {
		return err
	}
	ci := gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), InterfaceIndex: id,
		// pcapng (and pcapgo) want the original length at least the
		// captured one; files that say less still filter with theirs.
		Length: max(p.WireLen, len(p.Data))}
	return o.ng.WritePacket(ci, p.Data)
}

// blocks copies pcapng blocks.
func (o *filterOutput) blocks(bs [][]byte) error {
	if len(bs) == 0 {
		return nil
	}
	w, err := o.writer()
	if err != nil {
		return err
	}
	for _, b := range bs {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// pcapInterface returns the output interface for a link type of pcap
// input, adding it on first use.
func (o *filterOutput) pcapInterface(lt filter.LinkType) (int, error) {
	if id, ok := o.ngIDs[lt]; ok {
		return id, nil
	}
	intf := pcapgo.NgInterface{
		Name:                o.source,
		Filter:              o.expr,
		LinkType:            layers.LinkType(lt.FileLinkType()),
		TimestampResolution: 9,
		OS:                  "Linux",
	}
	id := 0
	if o.ng == nil {
		w, err := o.writer()
		if err != nil {
			return 0, err
		}
		nw, err := pcapgo.NewNgWriterInterface(w, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "bpfcap filter"}})
		if err != nil {
			return 0, err
		}
		o.ng, o.ngIDs = nw, map[filter.LinkType]int{}
	} else {
		var err error
		if id, err = o.ng.AddInterface(intf); err != nil {
			return 0, err
		}
	}
	o.ngIDs[lt] = id
	return id, nil
}

// end writes what follows the last packet: a pcapng input's last blocks,
// or, when no packet of a pcap input matched, a valid empty pcapng.
func (o *filterOutput) end(fr *filter.FileReader) error {
	if fr.Pcapng() {
		if err := o.blocks(fr.Rest()); err != nil {
			return err
		}
		_, err := o.writer() // a file even from an input without blocks
		return err
	}
	if o.ng == nil {
		first, _ := fr.First()
		if _, err := o.pcapInterface(first.LinkType); err != nil {
			return err
		}
	}
	return nil
}

// close flushes and closes the output.
func (o *filterOutput) close() error {
	var err error
	if o.ng != nil {
		err = o.ng.Flush()
	}
	if o.raw != nil {
		if ferr := o.raw.Flush(); err == nil {
			err = ferr
		}
	}
	if o.file != nil {
		if cerr := o.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
