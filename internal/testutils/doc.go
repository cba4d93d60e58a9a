// Package testutils holds helpers for bpfcap's tests: privilege checks that
// skip with a reason, and network namespaces with veth pairs that a test
// creates and removes itself.
package testutils
