package pcapng

// VerdictName returns the readable name of a verdict: the XDP action
// (XDP_PASS, ...) or tc action (TC_ACT_OK, ...), or the number.
func VerdictName(t VerdictType, v int64) string {
	switch t {
	case VerdictXDP:
		switch v {
		case 0:
			return "XDP_ABORTED"
		case 1:
			return "XDP_DROP"
		case 2:
			return "XDP_PASS"
		case 3:
			return "XDP_TX"
		case 4:
			return "XDP_REDIRECT"
		}
		return "XDP_" + itoa(uint64(v))
	case VerdictTC:
		switch v {
		case -1:
			return "TC_ACT_UNSPEC"
		case 0:
			return "TC_ACT_OK"
		case 1:
			return "TC_ACT_RECLASSIFY"
		case 2:
			return "TC_ACT_SHOT"
		case 3:
			return "TC_ACT_PIPE"
		case 4:
			return "TC_ACT_STOLEN"
		case 5:
			return "TC_ACT_QUEUED"
		case 6:
			return "TC_ACT_REPEAT"
		case 7:
			return "TC_ACT_REDIRECT"
		case 8:
			return "TC_ACT_TRAP"
		}
		if v < 0 {
			return "TC_ACT_-" + itoa(uint64(-v))
		}
		return "TC_ACT_" + itoa(uint64(v))
	case VerdictNone:
		return ""
	}
	return "verdict" + itoa(uint64(v))
}
