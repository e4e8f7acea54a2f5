//go:build !linux

package harness

import (
	"syscall"
	"time"
)

// threadCPU returns the process's user plus system CPU time (per-thread
// figures need Linux's RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
