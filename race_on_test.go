//go:build race

package stream_test

// raceEnabled reports whether the tests run under the race detector, which
// slows the stress tests' writes about tenfold: they scale down under it.
const raceEnabled = true
