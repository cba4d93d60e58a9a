package main

import "testing"

// TestFilterLiveNetmask: live captures take --netmask, else the device's
// IPv4 netmask (lo is 127.0.0.1/8), else 0.
func TestFilterLiveNetmask(t *testing.T) {
	for _, tc := range []struct {
		flag, dev string
		want      uint32
	}{
		{"", "lo", 0xff000000},
		{"255.255.0.0", "lo", 0xffff0000},
		{"", "", 0},
		{"", "bpfcap-no-such-dev", 0},
		{"0.0.0.0", "lo", 0},
	} {
		got, err := liveNetmask(tc.flag, tc.dev)
		if err != nil || got != tc.want {
			t.Errorf("liveNetmask(%q, %q) = %#x, %v; want %#x", tc.flag, tc.dev, got, err, tc.want)
		}
	}
	if _, err := liveNetmask("255.255.0", ""); err == nil {
		t.Error("a bad --netmask was accepted")
	}
}
