package hook

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// LookupDevice finds the network interface called name in bpfcap's
// network namespace. A missing interface gives an error that says so and
// how to list the ones that exist.
func LookupDevice(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("interface %q does not exist (list them with `ip link`)", name)
		}
		return nil, fmt.Errorf("look up interface %q: %w", name, err)
	}
	return l, nil
}
