package xdpcap

import (
	"fmt"
	"strings"
)

// Action is an XDP verdict (enum xdp_action); a hook slot's index is the
// action it captures.
type Action uint32

// The XDP actions, in the kernel's numbering.
const (
	Aborted  Action = 0 // XDP_ABORTED
	Drop     Action = 1 // XDP_DROP
	Pass     Action = 2 // XDP_PASS
	TX       Action = 3 // XDP_TX
	Redirect Action = 4 // XDP_REDIRECT
)

// actionNames are the actions' names, indexed by value.
var actionNames = [...]string{"aborted", "drop", "pass", "tx", "redirect"}

// Actions returns every XDP action, in slot order.
func Actions() []Action {
	return []Action{Aborted, Drop, Pass, TX, Redirect}
}

// String returns the action's lowercase name ("pass"), as ParseActions takes it.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action%d", uint32(a))
}

// KernelName returns the kernel's name for the action ("XDP_PASS").
func (a Action) KernelName() string {
	if int(a) < len(actionNames) {
		return "XDP_" + strings.ToUpper(actionNames[a])
	}
	return fmt.Sprintf("XDP_%d", uint32(a))
}

// ParseActions parses a comma-separated list of action names ("pass,drop"),
// case-insensitive, with or without the XDP_ prefix; "all" means every
// action. Duplicates are dropped; the result is in slot order.
func ParseActions(list string) ([]Action, error) {
	var seen [len(actionNames)]bool
	for _, field := range strings.Split(list, ",") {
		name := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(field)), "xdp_")
		if name == "all" {
			for i := range seen {
				seen[i] = true
			}
			continue
		}
		found := false
		for i, n := range actionNames {
			if n == name {
				seen[i], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown XDP action %q: use a comma-separated list of %s, or all",
				strings.TrimSpace(field), strings.Join(actionNames[:], ", "))
		}
	}
	var out []Action
	for i, s := range seen {
		if s {
			out = append(out, Action(i))
		}
	}
	return out, nil
}
