//go:build unix

package expand

import (
	"syscall"
	"time"
)

// processCPUTime is the user and system CPU time this process has used.
// Benchmarks report it per operation beside wall time, which on a shared
// machine mostly measures waiting for a core.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
