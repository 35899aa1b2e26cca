//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseOpenFileLimit raises the soft open-file limit to the hard limit
// (the Go runtime does this at start too; doing it here makes it part of
// serve's contract) and returns the limit now in force.
func raiseOpenFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			lim = raised
		}
	}
	return lim.Cur, nil
}
