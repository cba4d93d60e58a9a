// Command flood sends UDP datagrams as fast as one thread can, for the
// benchmarks in bench/trace: flood -dst 10.98.0.2 -port 9999 -duration 60s.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	dst := flag.String("dst", "", "destination IPv4 address")
	port := flag.Int("port", 9999, "destination UDP port")
	size := flag.Int("size", 64, "payload bytes")
	dur := flag.Duration("duration", 60*time.Second, "how long to send")
	flag.Parse()
	if err := flood(*dst, *port, *size, *dur); err != nil {
		fmt.Fprintf(os.Stderr, "flood: %v\n", err)
		os.Exit(1)
	}
}

func flood(dst string, port, size int, dur time.Duration) error {
	ip := net.ParseIP(dst).To4()
	if ip == nil {
		return fmt.Errorf("-dst %q: want an IPv4 address", dst)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Port: port}
	copy(to.Addr[:], ip)
	buf := make([]byte, size)
	var sent uint64
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		for range 1024 {
			if err := unix.Sendto(fd, buf, unix.MSG_DONTWAIT, to); err == nil {
				sent++
			}
		}
	}
	fmt.Printf("sent %d datagrams in %v\n", sent, dur)
	return nil
}
