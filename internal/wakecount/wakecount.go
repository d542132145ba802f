// Package wakecount counts, for the module's tests and benchmarks, the
// drains of streams and the wake-ups of the goroutines that wait in them
// for room (Write, ReadFrom, Wait). Counting is off until Start; off, a
// count costs one atomic load, made only where a goroutine was parked
// anyway.
package wakecount

import "sync/atomic"

var (
	on      atomic.Bool
	drains  atomic.Int64
	wakeups atomic.Int64
)

// Start resets the counts and turns counting on, for every stream of the
// process.
func Start() {
	drains.Store(0)
	wakeups.Store(0)
	on.Store(true)
}

// Stop turns counting off and returns the counts since Start.
func Stop() (drainCount, wakeupCount int64) {
	on.Store(false)
	return drains.Load(), wakeups.Load()
}

// Drain counts a drain: a stream that needed drain has room again.
func Drain() {
	if on.Load() {
		drains.Add(1)
	}
}

// Wakeup counts a goroutine that resumed after waiting for room.
func Wakeup() {
	if on.Load() {
		wakeups.Add(1)
	}
}
