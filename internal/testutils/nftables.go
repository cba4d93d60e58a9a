package testutils

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DropInput makes netfilter drop every IPv4 packet delivered locally in ns:
// an nf_tables table "bpfcap" with an input base chain whose policy is
// drop, created over netlink (no nft or iptables binary needed, so it
// works in the vmtest guests, which load nf_tables). The namespace's
// removal removes it.
func DropInput(tb testing.TB, ns netns.NsHandle) {
	tb.Helper()
	err := Do(tb, ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("netfilter netlink socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("bind netfilter netlink socket: %w", err)
		}
		hook := nlattrs(
			nlattr(unix.NFTA_HOOK_HOOKNUM, be32(unix.NF_INET_LOCAL_IN)),
			nlattr(unix.NFTA_HOOK_PRIORITY, be32(0)),
		)
		var batch []byte
		batch = append(batch, nfmsg(unix.NFNL_MSG_BATCH_BEGIN, 0, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, 1)...)
		batch = append(batch, nfmsg(nftMsg(unix.NFT_MSG_NEWTABLE), unix.NLM_F_CREATE|unix.NLM_F_ACK, unix.NFPROTO_IPV4, 0, 2,
			nlattr(unix.NFTA_TABLE_NAME, cstring("bpfcap")))...)
		batch = append(batch, nfmsg(nftMsg(unix.NFT_MSG_NEWCHAIN), unix.NLM_F_CREATE|unix.NLM_F_ACK, unix.NFPROTO_IPV4, 0, 3,
			nlattr(unix.NFTA_CHAIN_TABLE, cstring("bpfcap")),
			nlattr(unix.NFTA_CHAIN_NAME, cstring("input")),
			nlattr(unix.NFTA_CHAIN_HOOK|unix.NLA_F_NESTED, hook),
			nlattr(unix.NFTA_CHAIN_POLICY, be32(nfDrop)),
			nlattr(unix.NFTA_CHAIN_TYPE, cstring("filter")))...)
		batch = append(batch, nfmsg(unix.NFNL_MSG_BATCH_END, 0, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, 4)...)
		if err := unix.Sendto(fd, batch, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("send nf_tables batch: %w", err)
		}
		return nftAcks(fd, 2)
	})
	if err != nil {
		tb.Fatalf("nf_tables input drop (needs nf_tables): %v", err)
	}
}

// nfDrop is the netfilter verdict NF_DROP.
const nfDrop = 0

// nftAcks reads the acknowledgements of n messages; the first error one
// carries is returned.
func nftAcks(fd, n int) error {
	buf := make([]byte, 1<<16)
	for n > 0 {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("read nf_tables reply: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:m])
		if err != nil {
			return fmt.Errorf("parse nf_tables reply: %w", err)
		}
		for _, msg := range msgs {
			if msg.Header.Type != unix.NLMSG_ERROR || len(msg.Data) < 4 {
				continue
			}
			if errno := int32(binary.NativeEndian.Uint32(msg.Data)); errno != 0 {
				return fmt.Errorf("nf_tables message %d: %w", msg.Header.Seq, unix.Errno(-errno))
			}
			n--
		}
	}
	return nil
}

// nftMsg is the netlink message type of an nf_tables message.
func nftMsg(msg int) uint16 { return uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | msg) }

// nfmsg returns a netfilter netlink request: the header, struct nfgenmsg
// (family, version 0, resource id) and the attributes.
func nfmsg(typ uint16, flags int, family uint8, resID uint16, seq uint32, attrs ...[]byte) []byte {
	body := []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
	for _, a := range attrs {
		body = append(body, a...)
	}
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], uint16(unix.NLM_F_REQUEST|flags))
	binary.NativeEndian.PutUint32(msg[8:], seq)
	return append(msg, body...)
}

// nlattr returns a netlink attribute, padded to 4 bytes.
func nlattr(typ uint16, payload []byte) []byte {
	a := make([]byte, 4, 4+len(payload)+3)
	binary.NativeEndian.PutUint16(a[0:], uint16(4+len(payload)))
	binary.NativeEndian.PutUint16(a[2:], typ)
	a = append(a, payload...)
	for len(a)%4 != 0 {
		a = append(a, 0)
	}
	return a
}

// nlattrs concatenates attributes (the payload of a nested one).
func nlattrs(attrs ...[]byte) []byte {
	var out []byte
	for _, a := range attrs {
		out = append(out, a...)
	}
	return out
}

// be32 is a big-endian 32-bit attribute value (nf_tables' integers).
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// cstring is a NUL-terminated string attribute value.
func cstring(s string) []byte { return append([]byte(s), 0) }
