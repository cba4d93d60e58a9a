package main

import (
	"bytes"
	"os"
	"testing"
)

// TestHeaderCommitted: bpf/linktype.h is what the table generates, so the
// C side and Go agree on every constant (make generate rewrites it).
func TestHeaderCommitted(t *testing.T) {
	got, err := os.ReadFile("../../../bpf/linktype.h")
	if err != nil {
		t.Fatal(err)
	}
	if want := header(); !bytes.Equal(got, want) {
		t.Errorf("bpf/linktype.h differs from the table in package linktype (run make generate):\n%s\nwant:\n%s", got, want)
	}
}
