package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// param is one argument of a function or tracepoint, as BTF describes it.
type param struct {
	name string
	typ  btf.Type
}

// isSkbPtr reports whether typ is a (possibly const) struct sk_buff *.
func isSkbPtr(typ btf.Type) bool {
	ptr, ok := btf.As[*btf.Pointer](typ)
	if !ok {
		return false
	}
	s, ok := btf.As[*btf.Struct](ptr.Target)
	return ok && s.Name == "sk_buff"
}

// isDropReason reports whether typ is enum skb_drop_reason.
func isDropReason(typ btf.Type) bool {
	e, ok := btf.As[*btf.Enum](typ)
	return ok && e.Name == "skb_drop_reason"
}

// describeType renders a parameter type for an error message:
// "struct sock *", "unsigned int".
func describeType(typ btf.Type) string {
	stars := ""
	for range 8 {
		ptr, ok := btf.As[*btf.Pointer](typ)
		if !ok {
			break
		}
		stars += "*"
		typ = ptr.Target
	}
	var name string
	switch t := btf.UnderlyingType(typ).(type) {
	case *btf.Struct:
		name = "struct " + t.Name
	case *btf.Union:
		name = "union " + t.Name
	case *btf.Enum:
		name = "enum " + t.Name
	case *btf.Int:
		name = t.Name
	case *btf.Void:
		name = "void"
	case *btf.FuncProto:
		name = "function"
	default:
		name = typ.TypeName()
	}
	if name == "" {
		name = "?"
	}
	if stars != "" {
		return name + " " + stars
	}
	return name
}

// skbArgs returns the 1-based indexes of the sk_buff pointer arguments.
func skbArgs(params []param) []int {
	var idx []int
	for i, p := range params {
		if isSkbPtr(p.typ) {
			idx = append(idx, i+1)
		}
	}
	return idx
}

// reasonArg returns the 1-based index of the enum skb_drop_reason argument,
// or 0.
func reasonArg(params []param) int {
	for i, p := range params {
		if isDropReason(p.typ) {
			return i + 1
		}
	}
	return 0
}

// chooseSkbArg checks the requested 1-based argument (0: find it) of hook
// against params and returns the sk_buff argument's index. Errors name the
// argument that is the sk_buff when the requested one is not.
func chooseSkbArg(hook string, params []param, want int) (int, error) {
	found := skbArgs(params)
	if want == 0 {
		switch len(found) {
		case 0:
			return 0, &HookPointError{Err: fmt.Errorf("%s takes no struct sk_buff * argument (%s)", hook, signature(params))}
		case 1:
			return found[0], nil
		default:
			return 0, fmt.Errorf("%s takes several struct sk_buff * arguments (%s): pick one with :arg%d or :arg%d", hook, signature(params), found[0], found[1])
		}
	}
	if want > len(params) {
		return 0, fmt.Errorf("%s has %d arguments (%s), not %d", hook, len(params), signature(params), want)
	}
	if isSkbPtr(params[want-1].typ) {
		return want, nil
	}
	got := fmt.Sprintf("argument %d of %s is %s, not struct sk_buff *", want, hook, describeArg(params[want-1]))
	switch len(found) {
	case 0:
		return 0, &HookPointError{Err: fmt.Errorf("%s, and no argument is one (%s)", got, signature(params))}
	default:
		return 0, fmt.Errorf("%s: the sk_buff is arg%d (%s)", got, found[0], describeArg(params[found[0]-1]))
	}
}

func describeArg(p param) string {
	t := describeType(p.typ)
	if p.name == "" {
		return t
	}
	if strings.HasSuffix(t, "*") {
		return t + p.name
	}
	return t + " " + p.name
}

func signature(params []param) string {
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = fmt.Sprintf("arg%d %s", i+1, describeArg(p))
	}
	return strings.Join(parts, ", ")
}

// errNotFound marks a function or tracepoint the kernel does not have.
var errNotFound = errors.New("not found")

// funcParams returns the parameters of kernel function name from BTF.
func funcParams(spec *btf.Spec, name string) ([]param, error) {
	types, err := spec.AnyTypesByName(name)
	if err != nil && !errors.Is(err, btf.ErrNotFound) {
		return nil, fmt.Errorf("look up %s in kernel BTF: %w", name, err)
	}
	for _, t := range types {
		fn, ok := t.(*btf.Func)
		if !ok {
			continue
		}
		proto, ok := fn.Type.(*btf.FuncProto)
		if !ok {
			continue
		}
		return protoParams(proto, 0), nil
	}
	return nil, fmt.Errorf("kernel function %s: %w", name, errNotFound)
}

// tracepointParams returns the arguments of the BTF-typed tracepoint name
// (the btf_trace_NAME typedef, whose first parameter is the tracepoint's
// private data and not an argument).
func tracepointParams(spec *btf.Spec, name string) ([]param, error) {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_"+name, &td); err != nil {
		if errors.Is(err, btf.ErrNotFound) {
			return nil, fmt.Errorf("tracepoint %s: %w", name, errNotFound)
		}
		return nil, fmt.Errorf("look up btf_trace_%s in kernel BTF: %w", name, err)
	}
	ptr, ok := btf.As[*btf.Pointer](td.Type)
	if !ok {
		return nil, fmt.Errorf("btf_trace_%s is not a function pointer", name)
	}
	proto, ok := btf.As[*btf.FuncProto](ptr.Target)
	if !ok || len(proto.Params) == 0 {
		return nil, fmt.Errorf("btf_trace_%s is not a function pointer", name)
	}
	return protoParams(proto, 1), nil
}

func protoParams(proto *btf.FuncProto, skip int) []param {
	var ps []param
	for _, p := range proto.Params[skip:] {
		ps = append(ps, param{name: p.Name, typ: p.Type})
	}
	return ps
}

// argRegs returns the number of 8-byte registers params take as a
// function's arguments (a struct passed by value takes one per 8 bytes):
// how many words a BPF trampoline saves for them.
func argRegs(params []param) int {
	n := 0
	for _, p := range params {
		size, err := btf.Sizeof(p.typ)
		if err != nil || size <= 0 {
			size = 8
		}
		n += (size + 7) / 8
	}
	return n
}

// locationArg returns the 1-based index of the argument holding the
// address of the code that frees the skb (kfree_skb's and consume_skb's
// location), or 0: the pointer argument named location, or, in a
// tracepoint's BTF (whose arguments have no names) of one of
// freeTracepoints, the first void pointer after the sk_buff at skbArg.
func locationArg(params []param, tracepoint string, skbArg int) int {
	for i, p := range params {
		if _, ok := btf.As[*btf.Pointer](p.typ); ok && p.name == "location" {
			return i + 1
		}
	}
	if !slices.Contains(freeTracepoints, tracepoint) {
		return 0
	}
	for i := skbArg; i < len(params); i++ {
		if ptr, ok := btf.As[*btf.Pointer](params[i].typ); ok && params[i].name == "" {
			if _, void := btf.UnderlyingType(ptr.Target).(*btf.Void); void {
				return i + 1
			}
		}
	}
	return 0
}
