//go:build dpdk

package dpdk

import (
	"math/big"
	"testing"
	"time"
)

// TestFixTime checks the correction of DPDK 22.11's EPB timestamps: a
// primary whose TSC-to-ns base wrapped stamps every packet 2^64/tsc_hz
// seconds late (year ~2251 at 2.45 GHz).
func TestFixTime(t *testing.T) {
	const hz = 2450000000
	w := new(big.Int).Lsh(big.NewInt(1), 64)
	w.Mul(w, big.NewInt(1e9))
	w.Div(w, big.NewInt(hz))
	wrap := w.Uint64()
	now := uint64(time.Now().UnixNano())
	real := now - uint64(3*time.Millisecond)
	cases := []struct {
		name string
		ts   uint64
		want uint64
		how  int
	}{
		{"correct stamp kept", real, real, 0},
		{"stamp slightly ahead kept", now + uint64(time.Second), now + uint64(time.Second), 0},
		{"one wrap removed", real + wrap, real, 1},
		{"two wraps removed", real + 2*wrap, real, 1},
		{"off by a wrap and a day: now", real + wrap + uint64(24*time.Hour), now, 2},
		{"garbage far ahead: now", real + 10*wrap + 12345, now, 2},
	}
	for _, c := range cases {
		got, how := fixTime(wrap, c.ts, now)
		if got != c.want || how != c.how {
			t.Errorf("%s: fixTime(%d) = %d (how %d), want %d (how %d)", c.name, c.ts, got, how, c.want, c.how)
		}
	}
	// pcapng timestamps are unsigned nanoseconds since 1970.
	if y := time.Unix(int64((real+wrap)/1e9), 0).Year(); y < 2200 {
		t.Errorf("one wrap lands in %d; the trap says year ~2251", y)
	}
}
