//go:build !race

package stream

// raceEnabled reports whether the tests run with the race detector, which
// makes allocations of its own: allocation counts are checked without it.
const raceEnabled = false
