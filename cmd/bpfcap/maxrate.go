package main

import (
	"fmt"

	"github.com/spf13/pflag"
)

// addMaxRateFlag registers --max-rate, the kernel-side bound on what a
// capture costs the traced system.
func addMaxRateFlag(fs *pflag.FlagSet, pps *int) {
	fs.IntVar(pps, "max-rate", 0, "capture at most this many `packets` per second per CPU and hook (bursts of a tenth of a second's worth); the kernel sheds the rest before copying them and counts them apart from losses (0: no bound)")
}

// checkMaxRate refuses a negative --max-rate.
func checkMaxRate(pps int) error {
	if pps < 0 {
		return fmt.Errorf("max-rate %d: want a number of packets per second, e.g. --max-rate 10000 (0: no bound)", pps)
	}
	return nil
}
