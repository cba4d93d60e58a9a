package probe

import "fmt"

// HookPointError says that a hook spec names no hook point this kernel
// can capture at in the form given, or that no hook was given. The
// kernel's hook points that match Pattern (Resolver.List; "" for all
// that take an sk_buff) are where to look for one that does.
type HookPointError struct {
	// Pattern narrows the hook points worth listing ("" lists all).
	Pattern string
	// Err says what is wrong.
	Err error
}

// Error returns Err's message.
func (e *HookPointError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *HookPointError) Unwrap() error { return e.Err }

// FilterError says that the filter does not compile for the link type
// the hooks capture (the proto keyword's): every hook would refuse it
// alike, so Open fails at once rather than counting refusals.
type FilterError struct {
	// Proto is the proto keyword the filter was compiled for ("": the
	// default).
	Proto string
	// Err is the compiler's error.
	Err error
}

// Error returns Err's message.
func (e *FilterError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *FilterError) Unwrap() error { return e.Err }

// HandedOverError says why a glob passed over a hook point: it fires
// after the kernel handed the sk_buff on (Target.HandOver), so a journey
// there could show a hop of another packet that reused the skb. Named on
// its own, such a hook point is attached.
type HandedOverError struct {
	// Hook is the hook point passed over, e.g. "tp_btf:net_dev_xmit".
	Hook string
	// HandOver says to whom, and what sees the packets before.
	HandOver HandOver
}

// Error says when the hook point fires and what sees the packets instead.
func (e *HandedOverError) Error() string {
	return fmt.Sprintf("fires after %s took the sk_buff, which may be freed or reused by then: %s sees the same packets before", e.HandOver.Owner, e.HandOver.SeenBefore)
}
