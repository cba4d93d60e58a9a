package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/bpfcap/bpfcap/linktype"
)

// The sentences of Wireshark's extcap protocol (extcap(4)): what
// `--extcap-interfaces`, `--extcap-dlts` and `--extcap-config` print, one
// sentence a line, each a keyword followed by {key=value} fields.

// extcapInterface is one capture interface bpfcap offers Wireshark.
type extcapInterface struct {
	// name is the interface's call name (`--extcap-interface NAME`).
	name string
	// display is what Wireshark's interface list shows.
	display string
	// dlt is the link type Wireshark expects before the capture starts;
	// the pcapng stream's own interface blocks are what counts.
	dlt extcapDLT
	// filterProto is the `proto` keyword capture filters are validated
	// for (the link type the capture command compiles them for).
	filterProto string
	// args are the interface's options, in display order.
	args []extcapArg
	// command returns the bpfcap command line that captures what the
	// interface stands for, given the option values: flags first, then
	// "--", then the positional words (the capture filter excluded).
	command func(v extcapValues) (flags, words []string, err error)
}

// extcapDLT is a `dlt` sentence.
type extcapDLT struct {
	number  int
	name    string
	display string
}

// dltSentence returns the `dlt` sentence of a link type of the link-type
// table (a LINKTYPE_ value): libpcap's DLT_ number, name and description.
func dltSentence(lt uint16) extcapDLT {
	e, ok := linktype.ByLinkType(lt)
	if !ok {
		panic(fmt.Sprintf("link type %d is not in the link-type table", lt))
	}
	return extcapDLT{number: int(e.DLT), name: e.Name, display: e.Description}
}

// extcapArg is an `arg` sentence (plus its `value` sentences).
type extcapArg struct {
	// call is the option's name without its leading dashes.
	call    string
	display string
	// typ is the extcap type: string, integer, unsigned, boolflag,
	// selector, radio, fileselect.
	typ         string
	def         string
	tooltip     string
	placeholder string
	validation  string
	rng         string
	required    bool
	mustExist   bool
	group       string
	values      []extcapValue
}

// extcapValue is a `value` sentence: one choice of a selector or radio.
type extcapValue struct {
	value, display string
	def            bool
}

// field formats one {key=value} field. Values never contain braces (the
// parser does not allow escaping them); callers make sure of that.
func field(key, value string) string {
	return "{" + key + "=" + value + "}"
}

// printInterfaces writes the answer to --extcap-interfaces.
func printInterfaces(w io.Writer, version string, ifaces []extcapInterface) error {
	var b strings.Builder
	b.WriteString("extcap " + field("version", version) + field("help", "https://github.com/bpfcap/bpfcap") + "\n")
	for _, ifc := range ifaces {
		b.WriteString("interface " + field("value", ifc.name) + field("display", ifc.display) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// printDLTs writes the answer to --extcap-dlts.
func printDLTs(w io.Writer, ifc *extcapInterface) error {
	d := ifc.dlt
	_, err := fmt.Fprintf(w, "dlt %s%s%s\n", field("number", fmt.Sprint(d.number)), field("name", d.name), field("display", d.display))
	return err
}

// printConfig writes the answer to --extcap-config: the interface's
// options numbered in order, each followed by its values.
func printConfig(w io.Writer, ifc *extcapInterface) error {
	var b strings.Builder
	for i, a := range ifc.args {
		b.WriteString("arg " + field("number", fmt.Sprint(i)) + field("call", "--"+a.call) +
			field("display", a.display) + field("type", a.typ))
		if a.def != "" {
			b.WriteString(field("default", a.def))
		}
		if a.rng != "" {
			b.WriteString(field("range", a.rng))
		}
		if a.required {
			b.WriteString(field("required", "true"))
		}
		if a.mustExist {
			b.WriteString(field("mustexist", "true"))
		}
		if a.placeholder != "" {
			b.WriteString(field("placeholder", a.placeholder))
		}
		if a.validation != "" {
			b.WriteString(field("validation", a.validation))
		}
		if a.tooltip != "" {
			b.WriteString(field("tooltip", a.tooltip))
		}
		if a.group != "" {
			b.WriteString(field("group", a.group))
		}
		b.WriteString("\n")
		for _, v := range a.values {
			b.WriteString("value " + field("arg", fmt.Sprint(i)) + field("value", v.value) + field("display", v.display))
			if v.def {
				b.WriteString(field("default", "true"))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
