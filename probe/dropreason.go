package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// DropReasons maps the values of the kernel's enum skb_drop_reason to their
// names without the SKB_DROP_REASON_ prefix ("NETFILTER_DROP"). The values
// differ between kernel versions, so they are read from the running
// kernel's BTF. An empty map (nil error) means the kernel has no such enum
// (before 5.17).
type DropReasons map[uint32]string

// LoadDropReasons reads enum skb_drop_reason from kernel BTF.
func LoadDropReasons(kernel *btf.Spec) (DropReasons, error) {
	var e *btf.Enum
	if err := kernel.TypeByName("skb_drop_reason", &e); err != nil {
		if errors.Is(err, btf.ErrNotFound) {
			return DropReasons{}, nil
		}
		return nil, fmt.Errorf("read enum skb_drop_reason from kernel BTF: %w", err)
	}
	names := make(DropReasons, len(e.Values))
	for _, v := range e.Values {
		names[uint32(v.Value)] = strings.TrimPrefix(v.Name, "SKB_DROP_REASON_")
	}
	return names, nil
}

// Name returns the reason's name, or its number when the kernel does not
// name it (a subsystem's reasons such as SKB_DROP_REASON_SUBSYS_*).
func (d DropReasons) Name(reason uint32) string {
	if n, ok := d[reason]; ok {
		return n
	}
	return fmt.Sprintf("%d", reason)
}

// callerLocationFunctions free an skb and report their caller to the
// kfree_skb or consume_skb tracepoint as the location of the free
// (__builtin_return_address(0)): kfree_skb until Linux 5.17,
// kfree_skb_reason until 6.11, sk_skb_reason_drop since, and consume_skb.
// A kprobe or fentry program on one of them records its return address,
// the same location.
var callerLocationFunctions = []string{"kfree_skb", "kfree_skb_reason", "sk_skb_reason_drop", "consume_skb"}

// callerLocation reports whether a kprobe or fentry program on the kernel
// function fn records its caller as the drop location.
func callerLocation(fn string) bool {
	return slices.Contains(callerLocationFunctions, fn)
}

// HaveDropReasons reports whether the kernel whose BTF is kernel has drop
// reasons (enum skb_drop_reason and the reason argument of kfree_skb,
// Linux 5.17): nil, an error wrapping ErrNotSupported whose message says
// "needs Linux 5.17", or the error reading the BTF.
func HaveDropReasons(kernel *btf.Spec) error {
	var e *btf.Enum
	err := kernel.TypeByName("skb_drop_reason", &e)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, btf.ErrNotFound):
		return fmt.Errorf("drop reasons (enum skb_drop_reason) need Linux 5.17: %w", ErrNotSupported)
	}
	return fmt.Errorf("read enum skb_drop_reason from kernel BTF: %w", err)
}
