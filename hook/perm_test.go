package hook

import "golang.org/x/sys/unix"

func errEPERM() error { return unix.EPERM }
