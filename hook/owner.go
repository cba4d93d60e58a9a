package hook

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// MetaFilter restricts a capture by packet metadata. The kernel checks it
// before a packet is copied. The zero value keeps every packet.
//
// PID, Comm and Cgroup select the owner of the packet's socket (see
// Ring.LearnOwners): a packet without a socket, or whose socket's owner
// is unknown, does not pass them.
type MetaFilter struct {
	// PID is the owner's process id (tgid); 0: any.
	PID uint32
	// Comm is the owner's command name, at most CommLen-1 bytes; "": any.
	Comm string
	// Cgroup is the owner's cgroup v2 id (the cgroup directory's inode
	// number); 0: any.
	Cgroup uint64
	// Netns is the inode of the packet's network namespace; 0: any.
	Netns uint32
	// Mark and MarkMask keep packets whose skb->mark & MarkMask equals
	// Mark; MarkMask 0: any mark.
	Mark, MarkMask uint32
}

// CommLen is the size of a task's command name in the kernel, with its
// terminating NUL (TASK_COMM_LEN).
const CommLen = 16

// ErrCommTooLong is returned for a MetaFilter.Comm the kernel could never
// report: a command name has at most CommLen-1 bytes.
var ErrCommTooLong = errors.New("command names have at most 15 bytes")

// Owner reports whether f selects packets by their socket's owner.
func (f MetaFilter) Owner() bool { return f.PID != 0 || f.Comm != "" || f.Cgroup != 0 }

// Check returns ErrCommTooLong (wrapped) when f cannot match any packet
// because of its Comm.
func (f MetaFilter) Check() error {
	if len(f.Comm) >= CommLen {
		return fmt.Errorf("comm %q: %w", f.Comm, ErrCommTooLong)
	}
	return nil
}

func (f MetaFilter) setConfig(c *config) {
	c.WantPid = f.PID
	c.WantNetns = f.Netns
	c.WantMark = f.Mark & f.MarkMask
	c.WantMarkMask = f.MarkMask
	c.WantCgroup = f.Cgroup
	for i := 0; i < len(f.Comm) && i < CommLen-1; i++ {
		c.WantComm[i] = int8(f.Comm[i]) // C char
	}
	if f.PID != 0 || f.Netns != 0 || f.MarkMask != 0 || f.Cgroup != 0 || f.Comm != "" {
		c.Flags |= cfgMeta
	}
}

// ownerAttach lists the learner's programs and where they attach: socket
// creation is required, the others add sockets created before the capture
// started (connect, and sendmsg with an address).
var ownerAttach = []struct {
	prog     string
	attach   ebpf.AttachType
	required bool
}{
	{"bpfcap_owner_create", ebpf.AttachCGroupInetSockCreate, true},
	{"bpfcap_owner_connect4", ebpf.AttachCGroupInet4Connect, false},
	{"bpfcap_owner_connect6", ebpf.AttachCGroupInet6Connect, false},
	{"bpfcap_owner_sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, false},
	{"bpfcap_owner_sendmsg6", ebpf.AttachCGroupUDP6Sendmsg, false},
}

// LearnOwners attaches the socket-owner learner to the root cgroup (v2)
// for as long as the returned Closer is open: every socket created,
// connected or sent on with an address from then on is recorded with its
// process (pid, comm, cgroup), and the capture programs of this ring
// attribute packets to their socket's owner, also where they run in
// softirq. Sockets that do none of these while the learner is attached
// keep no owner. Needs cgroup v2 and CAP_SYS_ADMIN (or CAP_BPF and
// CAP_NET_ADMIN); errors for missing privilege wrap ErrPermission.
func (r *Ring) LearnOwners() (io.Closer, error) {
	root, err := cgroup2Root()
	if err != nil {
		return nil, fmt.Errorf("learn socket owners: %w", err)
	}
	spec, err := loadOwner()
	if err != nil {
		return nil, fmt.Errorf("learn socket owners: read the embedded object: %w", err)
	}
	// Only the owner map is shared; the capture maps are not used here.
	for name := range spec.Maps {
		if name != OwnersMap && !strings.HasPrefix(name, ".") {
			delete(spec.Maps, name)
		}
	}
	l := &ownerLinks{}
	for _, a := range ownerAttach {
		one := spec.Copy()
		for name := range one.Programs {
			if name != a.prog {
				delete(one.Programs, name)
			}
		}
		coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
			MapReplacements: map[string]*ebpf.Map{OwnersMap: r.owners},
		})
		if err != nil {
			if !a.required {
				continue
			}
			l.Close()
			return nil, wrapPerm("learn socket owners: load "+a.prog, err)
		}
		lk, err := link.AttachCgroup(link.CgroupOptions{Path: root, Attach: a.attach, Program: coll.Programs[a.prog]})
		coll.Close() // the link keeps the program
		if err != nil {
			if !a.required {
				continue
			}
			l.Close()
			return nil, wrapPerm("learn socket owners: attach "+a.prog+" to "+root, err)
		}
		l.links = append(l.links, lk)
	}
	return l, nil
}

// ownerLinks detaches the learner.
type ownerLinks struct{ links []link.Link }

func (o *ownerLinks) Close() error {
	var errs []error
	for i := len(o.links) - 1; i >= 0; i-- {
		errs = append(errs, o.links[i].Close())
	}
	o.links = nil
	return errors.Join(errs...)
}

// ErrNoCgroup2 is returned by LearnOwners when no cgroup v2 hierarchy is
// mounted.
var ErrNoCgroup2 = errors.New("no cgroup v2 hierarchy is mounted")

// cgroup2Root returns where the cgroup v2 hierarchy is mounted in this
// mount namespace.
func cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find cgroup v2: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 && fields[3] == "/" {
				return fields[4], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find cgroup v2: %w", err)
	}
	return "", ErrNoCgroup2
}
