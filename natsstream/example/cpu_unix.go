//go:build unix

package main

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process used so far (user and system), the
// client and an embedded server together: on a busy machine it varies far
// less from run to run than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
