package xdpbench

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// txRingSlots is how many frames one kick of the TX ring sends.
	txRingSlots = 4096
	// txDataOffset is where a frame starts in a TPACKET_V2 TX slot: the
	// kernel reads it at TPACKET2_HDRLEN - sizeof(struct sockaddr_ll),
	// that is right after the 16-byte aligned struct tpacket2_hdr.
	txDataOffset = (unix.SizeofTpacket2Hdr + 15) &^ 15
	// txMinSlot is the smallest slot: room for frames up to 224 bytes.
	txMinSlot = 256
)

// txRing sends frames out of one interface through an AF_PACKET socket
// with a TPACKET_V2 TX ring that bypasses the qdisc (PACKET_QDISC_BYPASS):
// the frame is written into every slot of the ring shared with the kernel
// once, and each batch of up to txRingSlots frames costs one sendto, in
// which the kernel builds and transmits an skb per slot marked for
// sending. The socket binds with protocol 0, so it receives nothing.
type txRing struct {
	fd      int
	ifindex int
	ring    []byte // the mmapped ring, set up by the first send
	slot    int    // bytes per slot
	next    int    // the slot the kernel sends next
	loaded  []byte // the frame every slot holds
}

// newTxRing opens the socket for sending out of ifindex; the ring itself
// is sized by the first frame sent.
func newTxRing(ifindex int) (*txRing, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open AF_PACKET socket: %w", err)
	}
	r := &txRing{fd: fd, ifindex: ifindex}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set TPACKET_V2: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set PACKET_QDISC_BYPASS: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind AF_PACKET socket to ifindex %d: %w", ifindex, err)
	}
	return r, nil
}

// setup maps a ring whose slots hold frames of size bytes.
func (r *txRing) setup(size int) error {
	slot := txMinSlot
	for slot < txDataOffset+size {
		slot *= 2
	}
	block := max(slot, unix.Getpagesize())
	req := unix.TpacketReq{
		Block_size: uint32(block),
		Block_nr:   uint32(txRingSlots * slot / block),
		Frame_size: uint32(slot),
		Frame_nr:   txRingSlots,
	}
	if err := unix.SetsockoptTpacketReq(r.fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return fmt.Errorf("set up a TX ring of %d slots of %d bytes: %w", txRingSlots, slot, err)
	}
	ring, err := unix.Mmap(r.fd, 0, txRingSlots*slot, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map the TX ring: %w", err)
	}
	r.ring, r.slot = ring, slot
	return nil
}

func (r *txRing) hdr(i int) *unix.Tpacket2Hdr {
	return (*unix.Tpacket2Hdr)(unsafe.Pointer(&r.ring[i*r.slot]))
}

// load writes frame into every slot (all of them are free between sends).
func (r *txRing) load(frame []byte) error {
	if r.ring != nil && txDataOffset+len(frame) > r.slot {
		// Too small for this frame: free the ring, and map a larger one.
		if err := unix.Munmap(r.ring); err != nil {
			return fmt.Errorf("unmap the TX ring: %w", err)
		}
		r.ring = nil
		if err := unix.SetsockoptTpacketReq(r.fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &unix.TpacketReq{}); err != nil {
			return fmt.Errorf("free the TX ring: %w", err)
		}
		r.next = 0
	}
	if r.ring == nil {
		if err := r.setup(len(frame)); err != nil {
			return err
		}
	}
	for i := 0; i < txRingSlots; i++ {
		copy(r.ring[i*r.slot+txDataOffset:], frame)
		r.hdr(i).Len = uint32(len(frame))
	}
	r.loaded = append(r.loaded[:0], frame...)
	return nil
}

// send transmits frame n times, a ring's worth per sendto.
func (r *txRing) send(frame []byte, n uint32) error {
	if r.ring == nil || !bytes.Equal(frame, r.loaded) {
		if err := r.load(frame); err != nil {
			return err
		}
	}
	for left := int(n); left > 0; {
		k := min(left, txRingSlots)
		for i := 0; i < k; i++ {
			atomic.StoreUint32(&r.hdr((r.next+i)%txRingSlots).Status, unix.TP_STATUS_SEND_REQUEST)
		}
		if err := r.kick(k); err != nil {
			return fmt.Errorf("AF_PACKET TX ring: %w", err)
		}
		r.next = (r.next + k) % txRingSlots
		left -= k
	}
	return nil
}

// kick makes the kernel send the k slots from r.next and waits until all
// are free again. A blocking sendto returns once the kernel has sent every
// marked slot and released its skbs; it returns early with ENOBUFS when
// the device refuses a frame (a full veth ring: the frame is dropped) and
// EINTR on a signal, leaving the rest marked, so it is called again.
func (r *txRing) kick(k int) error {
	done := 0
	for stalls := 0; ; {
		err := unix.Sendto(r.fd, nil, 0, nil)
		if err != nil && !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return fmt.Errorf("send: %w", err)
		}
		before := done
		for ; done < k; done++ {
			st := atomic.LoadUint32(&r.hdr((r.next + done) % txRingSlots).Status)
			if st&unix.TP_STATUS_WRONG_FORMAT != 0 {
				return fmt.Errorf("slot %d: the kernel rejected the frame (TP_STATUS_WRONG_FORMAT)", (r.next+done)%txRingSlots)
			}
			if st != unix.TP_STATUS_AVAILABLE {
				break
			}
		}
		if done == k {
			return nil
		}
		if done == before {
			if stalls++; stalls > 1000 {
				return fmt.Errorf("%d of %d frames still queued after %d sends without progress", k-done, k, stalls)
			}
		} else {
			stalls = 0
		}
	}
}

// Close unmaps the ring and closes the socket.
func (r *txRing) Close() error {
	var err error
	if r.ring != nil {
		err = unix.Munmap(r.ring)
	}
	if cerr := unix.Close(r.fd); err == nil {
		err = cerr
	}
	return err
}
