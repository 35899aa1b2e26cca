package cputime

import (
	"runtime"
	"testing"
	"time"
)

// TestProcessAdvances: spinning for a while shows up as CPU time.
func TestProcessAdvances(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("CPU time is not read here")
	}
	before := Process()
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	if after := Process(); after-before < 10*time.Millisecond {
		t.Fatalf("50 ms of spinning (%d turns) added %v of CPU time", x, after-before)
	}
}
