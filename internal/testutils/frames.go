package testutils

// IPv6ExtChainFrame returns an Ethernet/IPv6 frame whose payload of
// protocol final (8 bytes: enough for UDP or TCP ports) follows n 8-byte
// destination-options headers, so that `protochain` walks n+1 headers.
func IPv6ExtChainFrame(n int, final byte) []byte {
	body := make([]byte, 8)
	next := final
	for i := 0; i < n; i++ {
		body = append([]byte{next, 0, 0, 0, 0, 0, 0, 0}, body...)
		next = 60 // IPPROTO_DSTOPTS
	}
	f := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd}
	ip := make([]byte, 40)
	ip[0] = 0x60
	ip[4], ip[5] = byte(len(body)>>8), byte(len(body))
	ip[6], ip[7] = next, 64
	return append(append(f, ip...), body...)
}
