package main

import (
	"slices"
	"testing"
)

func TestPreviousCodename(t *testing.T) {
	csv := "version,codename,series,created,release,eol\n" +
		"11,Bullseye,bullseye,2019-07-06,2021-08-14,2024-08-14\n" +
		"12,Bookworm,bookworm,2021-08-14,2023-06-10,2026-06-10\n" +
		"13,Trixie,trixie,2023-06-10\n" +
		",Sid,sid,1993-08-16\n"
	if got, want := codenamesFromCSV([]byte(csv)), []string{"bullseye", "bookworm", "trixie"}; !slices.Equal(got, want) {
		t.Errorf("codenamesFromCSV = %q, want %q", got, want)
	}
	// On this machine (debian.csv or the built-in list) bookworm's
	// predecessor is bullseye, whose 5.10 the matrix runs.
	if got, err := previousCodename("bookworm"); err != nil || got != "bullseye" {
		t.Errorf("previousCodename(bookworm) = %q, %v; want bullseye", got, err)
	}
	for _, c := range []string{"sid", "noble", ""} {
		if got, err := previousCodename(c); err == nil {
			t.Errorf("previousCodename(%q) = %q, want an error", c, got)
		}
	}
}
