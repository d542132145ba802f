// Package streamtest holds test doubles for package stream: a scripted [Sink]
// that records every call the stream makes and completes it when the test
// says so, and a [Recorder] that keeps an ordered log of a stream's events
// and write callbacks. It is not API.
//
// Every wait in this package gives up after [Timeout] and fails the test with
// a message saying what it waited for; nothing here sleeps to synchronise.
package streamtest
