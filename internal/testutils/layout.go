package testutils

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// CheckStructLayout fails tb unless goType has the layout of the C struct
// cName in spec's BTF, so that a field reordered, resized or added on
// either side fails a test instead of corrupting what Go reads or writes:
// the same size, and the Go fields in order, leaving out blank (_) padding
// fields, match the C members one to one in name, byte offset and size.
// Names match when they are equal ignoring case and underscores
// (wire_len = WireLen); a Go field whose name differs says the C name in a
// `btf:"name"` tag.
func CheckStructLayout(tb testing.TB, spec *btf.Spec, cName string, goType reflect.Type) {
	tb.Helper()
	st := lookupStruct(tb, spec, cName)
	if int(st.Size) != int(goType.Size()) {
		tb.Errorf("struct %s is %d bytes in C, %s is %d in Go", cName, st.Size, goType, goType.Size())
	}
	var fields []reflect.StructField
	for i := range goType.NumField() {
		if f := goType.Field(i); f.Name != "_" {
			fields = append(fields, f)
		}
	}
	if len(fields) != len(st.Members) {
		tb.Fatalf("struct %s has %d members in C, %s has %d fields (blank padding left out)", cName, len(st.Members), goType, len(fields))
	}
	for i, m := range st.Members {
		f := fields[i]
		size, err := btf.Sizeof(m.Type)
		if err != nil {
			tb.Fatalf("size of %s.%s: %v", cName, m.Name, err)
		}
		cname := f.Tag.Get("btf")
		if cname == "" {
			cname = f.Name
		}
		if normalizeName(cname) != normalizeName(m.Name) {
			tb.Errorf("struct %s member %d is %s in C, %s.%s in Go (tag the Go field `btf:\"%s\"` if only the name differs)", cName, i, m.Name, goType, f.Name, m.Name)
		}
		if int(m.Offset.Bytes()) != int(f.Offset) || size != int(f.Type.Size()) {
			tb.Errorf("%s.%s is at %d (%d bytes) in C, %s.%s at %d (%d bytes) in Go", cName, m.Name, m.Offset.Bytes(), size, goType, f.Name, f.Offset, f.Type.Size())
		}
	}
}

// CheckStructOffsets fails tb unless the C struct cName in spec's BTF is
// size bytes and has each member named in offsets at that byte offset: for
// code that reads a C struct through constants rather than a Go struct.
func CheckStructOffsets(tb testing.TB, spec *btf.Spec, cName string, size int, offsets map[string]int) {
	tb.Helper()
	st := lookupStruct(tb, spec, cName)
	if int(st.Size) != size {
		tb.Errorf("struct %s is %d bytes in C, Go assumes %d", cName, st.Size, size)
	}
	found := map[string]bool{}
	for _, m := range st.Members {
		if want, ok := offsets[m.Name]; ok {
			found[m.Name] = true
			if int(m.Offset.Bytes()) != want {
				tb.Errorf("%s.%s is at %d in C, Go reads it at %d", cName, m.Name, m.Offset.Bytes(), want)
			}
		}
	}
	for name := range offsets {
		if !found[name] {
			tb.Errorf("struct %s has no member %s in C", cName, name)
		}
	}
}

func lookupStruct(tb testing.TB, spec *btf.Spec, cName string) *btf.Struct {
	tb.Helper()
	var st *btf.Struct
	if err := spec.TypeByName(cName, &st); err != nil {
		tb.Fatalf("BTF of struct %s: %v", cName, err)
	}
	return st
}

func normalizeName(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "_", ""))
}
