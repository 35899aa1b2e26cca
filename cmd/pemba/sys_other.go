//go:build !unix

package main

import "math"

// raiseOpenFileLimit reports no open-file limit where there is none to read.
func raiseOpenFileLimit() (uint64, error) { return math.MaxUint64, nil }

// freeBytes reports unlimited space where it cannot be read.
func freeBytes(string) (uint64, error) { return math.MaxUint64, nil }
