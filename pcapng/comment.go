package pcapng

import (
	"slices"
	"strconv"
	"strings"
)

// CommentKeys are the keys of the readable metadata in a packet's
// opt_comment, in the order a Writer writes them ("reason=... dev=...").
// A Writer writes hook only for a packet whose hook is not its
// interface's name; verdict and dir are read from files of earlier
// versions, which repeated epb_verdict and epb_flags in the comment.
var CommentKeys = []string{"hook", "verdict", "reason", "dev", "dir", "pid", "comm", "netns", "mark"}

// wordKeys start the words a source adds after the metadata (the drop
// location, a clone's parent, a stack: Packet.Comment). ParseComment
// leaves them in the text it returns, but a comm ends before them.
var wordKeys = []string{"location", "parent", "stack"}

// ParseComment reads the metadata a Writer wrote into a packet's
// opt_comment back into p's fields (DropReason, Device, PID, Comm, Netns,
// Mark; Hook when the comment names one; Direction when p has none) and returns the text that is
// not metadata (a free-form comment, or ""). A comm runs up to the next
// " key=" of a known key, so it may hold spaces; other values end at a
// space. The verdict is left
// to epb_verdict; a comment that is not bpfcap's is returned whole.
func ParseComment(c string, p *Packet) (rest string) {
	fields := splitComment(c)
	if len(fields) == 0 {
		return c
	}
	var extra []string
	for _, f := range fields {
		if slices.Contains(wordKeys, f.key) {
			extra = append(extra, f.key+"="+f.val)
			continue
		}
		// Only a comm may hold spaces: after another value, a space
		// starts the free-form comment.
		if f.key != "comm" && f.key != "" {
			if v, more, ok := strings.Cut(f.val, " "); ok {
				f.val = v
				extra = append(extra, more)
			}
		}
		switch f.key {
		case "hook":
			p.Hook = f.val
		case "reason":
			p.DropReason = f.val
		case "dev":
			p.Device = f.val
		case "dir":
			if p.Direction == DirectionUnknown {
				switch f.val {
				case DirectionInbound.String():
					p.Direction = DirectionInbound
				case DirectionOutbound.String():
					p.Direction = DirectionOutbound
				}
			}
		case "pid":
			if n, err := strconv.ParseUint(f.val, 10, 32); err == nil {
				p.PID = uint32(n)
				p.Flags |= HasPID
			}
		case "comm":
			p.Comm = f.val
		case "netns":
			if n, err := strconv.ParseUint(f.val, 10, 32); err == nil {
				p.Netns = uint32(n)
				p.Flags |= HasNetns
			}
		case "mark":
			if n, err := strconv.ParseUint(strings.TrimPrefix(f.val, "0x"), 16, 32); err == nil {
				p.Mark = uint32(n)
				p.Flags |= HasMark
			}
		case "":
			extra = append(extra, f.val)
		}
	}
	return strings.Join(extra, " ")
}

type commentField struct{ key, val string }

// splitComment splits c at every " key=" of a known key; text before the
// first key is returned with an empty key. It returns nil when c does
// not start with a known key (not a comment bpfcap wrote).
func splitComment(c string) []commentField {
	at := func(s string) (string, bool) {
		for _, k := range CommentKeys {
			if strings.HasPrefix(s, k+"=") {
				return k, true
			}
		}
		for _, k := range wordKeys {
			if strings.HasPrefix(s, k+"=") {
				return k, true
			}
		}
		return "", false
	}
	key, ok := at(c)
	if !ok {
		return nil
	}
	var out []commentField
	s := c[len(key)+1:]
	for {
		next, nextKey := -1, ""
		for i := 0; i < len(s); i++ {
			if s[i] != ' ' {
				continue
			}
			if k, ok := at(s[i+1:]); ok {
				next, nextKey = i, k
				break
			}
		}
		if next < 0 {
			out = append(out, commentField{key, s})
			return out
		}
		out = append(out, commentField{key, s[:next]})
		key, s = nextKey, s[next+1+len(nextKey)+1:]
	}
}
