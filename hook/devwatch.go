package hook

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// DeviceWatch tells whether a network device still exists, asked in the
// network namespace it was opened in (the thread's at WatchDevice), with
// no privilege: a capture on a device that was deleted (a veth pair torn
// down) would capture nothing, silently.
type DeviceWatch struct {
	fd      int
	ifindex int
	name    string
}

// WatchDevice starts watching the device ifindex, called name, in the
// calling thread's network namespace.
func WatchDevice(ifindex int, name string) (*DeviceWatch, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("watch device %s: %w", name, err)
	}
	return &DeviceWatch{fd: fd, ifindex: ifindex, name: name}, nil
}

// ErrGone is wrapped by Alive errors: what a capture captures from went
// away.
var ErrGone = errors.New("capture target gone")

// Alive returns nil while the device exists, and an error wrapping ErrGone
// once it does not.
func (w *DeviceWatch) Alive() error {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return nil
	}
	ifr.SetUint32(uint32(w.ifindex))
	err = unix.IoctlIfreq(w.fd, unix.SIOCGIFNAME, ifr)
	if errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("interface %s (index %d) was deleted: nothing more to capture there: %w", w.name, w.ifindex, ErrGone)
	}
	return nil // any other answer: cannot tell, keep capturing
}

// Close stops watching.
func (w *DeviceWatch) Close() error {
	if w.fd < 0 {
		return nil
	}
	err := unix.Close(w.fd)
	w.fd = -1
	return err
}
