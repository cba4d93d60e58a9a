package probe

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
