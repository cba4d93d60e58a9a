package pcapng

import (
	"strconv"
	"strings"
)

// descriptionSep separates an interface's device words from the rest of
// its if_description.
const descriptionSep = "; "

// deviceWords returns the words that name ifc's device and netns for its
// if_description ("dev=eth0 netns=4026531840"; keys as in a packet's
// comment), or "" when it names neither. A device name with a space (no
// Linux device has one) cannot be read back, so it is left out.
func (ifc *Interface) deviceWords() string {
	var b []byte
	if ifc.Device != "" && !strings.ContainsAny(ifc.Device, " ;") {
		b = append(b, "dev="...)
		b = append(b, ifc.Device...)
	}
	if ifc.Netns != 0 {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, "netns="...)
		b = strconv.AppendUint(b, uint64(ifc.Netns), 10)
	}
	return string(b)
}

// description returns ifc's if_description: Description, then the device
// words (deviceWords) after "; " unless Description ends with them already
// (an interface read back from a file).
func (ifc *Interface) description() string {
	words := ifc.deviceWords()
	switch {
	case words == "" || strings.HasSuffix(ifc.Description, words):
		return ifc.Description
	case ifc.Description == "":
		return words
	}
	return ifc.Description + descriptionSep + words
}

// descriptionDevice reads the device and netns that an if_description
// names in its last part (description), or returns "" and 0.
func descriptionDevice(desc string) (dev string, netns uint32) {
	last := desc
	if i := strings.LastIndex(desc, descriptionSep); i >= 0 {
		last = desc[i+len(descriptionSep):]
	}
	fields := splitComment(last)
	if len(fields) == 0 {
		return "", 0
	}
	for _, f := range fields {
		switch f.key {
		case "dev":
			if strings.Contains(f.val, " ") {
				return "", 0
			}
			dev = f.val
		case "netns":
			n, err := strconv.ParseUint(f.val, 10, 32)
			if err != nil {
				return "", 0
			}
			netns = uint32(n)
		default:
			return "", 0
		}
	}
	return dev, netns
}
