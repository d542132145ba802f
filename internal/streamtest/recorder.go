package streamtest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamkit/stream"
)

// sentinels are the package's errors, in the order Label tries them: the
// more specific first, ErrDestroyed (which may wrap a cause) last.
var sentinels = []struct {
	err  error
	name string
}{
	{stream.ErrWriteAfterEnd, "ErrWriteAfterEnd"},
	{stream.ErrMultipleCallback, "ErrMultipleCallback"},
	{stream.ErrStalled, "ErrStalled"},
	{stream.ErrPrematureClose, "ErrPrematureClose"},
	{stream.ErrDestroyed, "ErrDestroyed"},
	{stream.ErrDropped, "ErrDropped"},
	{stream.ErrBadItemErrors, "ErrBadItemErrors"},
}

// Label names an error in a log: "<nil>"; the name of the first of the
// package's sentinel errors it matches with errors.Is (e.g. "ErrDestroyed"),
// so that logs do not depend on how the stream wraps them; else its message.
func Label(err error) string {
	if err == nil {
		return "<nil>"
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return err.Error()
}

// Recorder keeps an ordered log of what happened to a stream: "drain",
// "finish", "error <label>", "close" from its handlers, "cb <name> <label>"
// from the callbacks made by [Recorder.Callback], and whatever the test adds.
// Errors are written with [Label].
//
// A Recorder is safe for concurrent use. Use NewRecorder or Record.
type Recorder struct {
	// mu guards the fields below.
	mu   sync.Mutex
	log  []string
	errs map[string]error // callback name -> the error it got
	wake chan struct{}    // closed and replaced on every Add
}

// NewRecorder returns an empty Recorder, attached to no stream.
func NewRecorder() *Recorder {
	return &Recorder{errs: make(map[string]error), wake: make(chan struct{})}
}

// Record returns a Recorder attached to w.
func Record(w *stream.Writable) *Recorder {
	r := NewRecorder()
	r.Attach(w)
	return r
}

// Attach registers handlers on w for "drain", "finish", "error" and "close".
func (r *Recorder) Attach(w *stream.Writable) {
	w.OnDrain(func() { r.Add("drain") })
	w.OnFinish(func() { r.Add("finish") })
	w.OnError(func(err error) { r.Add("error " + Label(err)) })
	w.OnClose(func() { r.Add("close") })
}

// Add appends entry to the log.
func (r *Recorder) Add(entry string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, entry)
	close(r.wake)
	r.wake = make(chan struct{})
}

// Callback returns a write callback that logs "cb <name> <label>" and keeps
// the error for [Recorder.Err].
func (r *Recorder) Callback(name string) stream.Callback {
	return func(err error) {
		r.mu.Lock()
		r.errs[name] = err
		r.mu.Unlock()
		r.Add("cb " + name + " " + Label(err))
	}
}

// Err returns the error the callback called name got (nil if not called).
func (r *Recorder) Err(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[name]
}

// Log returns a copy of the log.
func (r *Recorder) Log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// Count returns how many times entry is in the log.
func (r *Recorder) Count(entry string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.log {
		if e == entry {
			n++
		}
	}
	return n
}

// WaitFor waits until entry is in the log.
func (r *Recorder) WaitFor(t testing.TB, entry string) {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		found := slices.Contains(r.log, entry)
		wake := r.wake
		r.mu.Unlock()
		if found {
			return
		}
		select {
		case <-wake:
		case <-timer.C:
			t.Fatalf("streamtest: waited %v for %q; log: %q", Timeout, entry, r.Log())
			return
		}
	}
}

// WaitDone waits until w's Done channel is closed.
func WaitDone(t testing.TB, w *stream.Writable) {
	t.Helper()
	Recv(t, w.Done(), "the stream to close (Done)")
}

// Recv waits for a value from ch, or for ch to be closed, and returns it;
// what says what the test waits for.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("streamtest: waited %v for %s", Timeout, what)
		var zero T
		return zero
	}
}

// Cleanup makes sure w closes at the end of the test: it releases the sinks'
// held calls, destroys w and waits for Done, failing the test if w does not
// close in time.
func Cleanup(t testing.TB, w *stream.Writable, sinks ...*Sink) {
	t.Helper()
	t.Cleanup(func() {
		for _, s := range sinks {
			s.Release()
		}
		w.Destroy(nil)
		select {
		case <-w.Done():
		case <-time.After(Timeout):
			t.Errorf("streamtest: stream not closed %v after Destroy at the end of the test", Timeout)
		}
	})
}
