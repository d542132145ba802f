package stream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// The fault matrix of issue 5: a 50-write script, and for every position k
// a fault at k: the sink fails the call of write k; Destroy(err) right
// after write k is accepted; Options.Context is cancelled with a cause
// after write k; Construct fails after k writes were buffered;
// the Destroy hook fails after a Destroy(nil) at k. Then, once per sink
// mode: Final fails; the Destroy hook fails after a clean finish. Also
// Destroy(nil) after write k, and Finished called with a done ctx at
// write k (it returns ctx's cause and leaves the stream alone). Each
// runs with a sink that completes synchronously and one that completes on
// another goroutine. Every callback before k gets nil, every one from k on
// an error matching the first error; Err, Close and Finished (called
// after "close", and waiting since before the first write) report that
// error, Finished nil after a clean finish;
// "error" fires once, just before "close", which comes last; "finish"
// only after a clean end; every callback exactly once; no goroutine left.

const faultWrites = 50

// faultRun is what one run observed.
type faultRun struct {
	cbErrs   []error
	cbCalls  []int
	events   []string
	errorArg error // the error OnError got
	err      error // Err() after close
	closeErr error
	finished error // Finished after close
	waited   error // Finished called before the first write, once it returned
}

// faultSink is a WriteFunc that fails the call carrying write failAt
// (-1: none), completing synchronously or from another goroutine.
func faultSink(failAt int, async bool, boom error) stream.WriteFunc {
	return func(chunk []byte, done stream.Callback) {
		var err error
		if len(chunk) > 0 && int(chunk[0]) == failAt {
			err = boom
		}
		if async {
			go done(err)
		} else {
			done(err)
		}
	}
}

// runFaultScript writes faultWrites one-byte chunks (byte i for write i)
// with callbacks, calling before(i) ahead of write i, then Close.
func runFaultScript(t *testing.T, w *stream.Writable, before func(i int)) faultRun {
	t.Helper()
	var mu sync.Mutex
	r := faultRun{cbErrs: make([]error, faultWrites), cbCalls: make([]int, faultWrites)}
	add := func(e string) {
		mu.Lock()
		r.events = append(r.events, e)
		mu.Unlock()
	}
	w.OnFinish(func() { add("finish") })
	w.OnError(func(err error) {
		mu.Lock()
		r.errorArg = err
		mu.Unlock()
		add("error")
	})
	w.OnClose(func() { add("close") })
	waited := make(chan error, 1)
	go func() { waited <- stream.Finished(context.Background(), w) }()
	called := make(chan struct{}, faultWrites)
	for i := range faultWrites {
		if before != nil {
			before(i)
		}
		w.WriteChunk([]byte{byte(i)}, func(err error) {
			mu.Lock()
			r.cbErrs[i] = err
			r.cbCalls[i]++
			mu.Unlock()
			called <- struct{}{}
		})
	}
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	r.closeErr = streamtest.Recv(t, closed, "Close")
	streamtest.WaitDone(t, w)
	// A write made after "close" is still called back, after it.
	for range faultWrites {
		streamtest.Recv(t, called, "every write callback")
	}
	r.err = w.Err()
	r.finished = stream.Finished(context.Background(), w)
	r.waited = streamtest.Recv(t, waited, "Finished, waiting since before the first write")
	mu.Lock()
	defer mu.Unlock()
	r.events = slices.Clone(r.events)
	return r
}

// checkFault checks a run: callbacks before failFrom got nil, the others an
// error matching want (the stream's first error); clean tells whether the
// stream finished.
func checkFault(t *testing.T, r faultRun, failFrom int, want error, clean bool) {
	t.Helper()
	for i := range faultWrites {
		if !assert.Equal(t, 1, r.cbCalls[i], "callback %d: times called", i) {
			return
		}
		if i < failFrom {
			if !assert.NoError(t, r.cbErrs[i], "callback %d, before the fault at %d", i, failFrom) {
				return
			}
		} else if !assert.ErrorIs(t, r.cbErrs[i], want, "callback %d, from the fault at %d on", i, failFrom) {
			return
		}
	}
	assert.Equal(t, r.finished, r.waited, "Finished agrees whether it waited or not")
	if clean {
		assert.NoError(t, r.err, "Err")
		assert.NoError(t, r.closeErr, "Close")
		assert.NoError(t, r.finished, "Finished after a clean finish")
		assert.Equal(t, []string{"finish", "close"}, r.events, "events")
		return
	}
	assert.ErrorIs(t, r.err, want, "Err reports the first error")
	assert.ErrorIs(t, r.closeErr, want, "Close reports the first error")
	assert.Equal(t, r.err, r.finished, "Finished reports Err()")
	assert.Equal(t, []string{"error", "close"}, r.events, "events: error once, close last, no finish")
	assert.Equal(t, r.err, r.errorArg, "OnError got Err()")
}

func TestFaultMatrix(t *testing.T) {
	boom := errors.New("boom")
	for _, async := range []bool{false, true} {
		mode := map[bool]string{false: "sync", true: "async"}[async]
		t.Run("sink fails at k/"+mode, func(t *testing.T) {
			for k := range faultWrites {
				w := stream.NewWritable(faultSink(k, async, boom), stream.Options{HighWaterMark: 4})
				checkFault(t, runFaultScript(t, w, nil), k, boom, false)
			}
			goleak.VerifyNone(t)
		})
		t.Run("Destroy(err) after write k/"+mode, func(t *testing.T) {
			for k := range faultWrites {
				// Writes after the Destroy are late: their callbacks get
				// ErrDestroyed wrapping boom. The writes buffered behind
				// the one in flight at the Destroy get boom; with an
				// asynchronous sink that may be any write from the last
				// completed one on, so only the synchronous run pins k.
				r, from, ok := runDestroyedAt(t, k, async, boom)
				if !ok {
					return
				}
				checkFault(t, r, from, boom, false)
			}
			goleak.VerifyNone(t)
		})
		t.Run("Context cancelled after write k/"+mode, func(t *testing.T) {
			for k := range faultWrites {
				// The stream is destroyed with context.Cause from a
				// goroutine of the context package, a moment after the
				// cancel: the writes fail from some point at or after k on
				// (before k too, for buffered ones, with an async sink).
				ctx, cancel := context.WithCancelCause(context.Background())
				w := stream.NewWritable(faultSink(-1, async, nil), stream.Options{HighWaterMark: 4, Context: ctx})
				r := runFaultScript(t, w, func(i int) {
					if i == k {
						cancel(boom)
					}
				})
				from := firstError(r.cbErrs)
				if !async {
					assert.GreaterOrEqual(t, from, k, "writes completed before the cancel got nil")
				}
				// The destroy may come after every write completed: before
				// "finish", which it cancels; while the finish handlers
				// run, after "finish" and before the stream destroys
				// itself, as when a finish handler calls Destroy(err) (Node
				// likewise emits "error" and "close" then); or after a
				// clean finish, when it has no effect.
				if from == faultWrites && r.err != nil && len(r.events) == 3 {
					assert.Equal(t, []string{"finish", "error", "close"}, r.events, "events of a destroy during finish")
					r.events = r.events[1:]
				}
				checkFault(t, r, from, boom, from == faultWrites && r.err == nil)
			}
			goleak.VerifyNone(t)
		})
		t.Run("Destroy(nil) after write k/"+mode, func(t *testing.T) {
			for k := range faultWrites {
				// Without an error: the writes from k on get ErrDestroyed,
				// Err stays nil, no "error", Close says ErrDestroyed and
				// Finished ErrPrematureClose.
				r, from, ok := runDestroyedAt(t, k, async, nil)
				if !ok {
					return
				}
				for i := range faultWrites {
					if i < from {
						if !assert.NoError(t, r.cbErrs[i], "callback %d, before the Destroy at %d", i, k) {
							return
						}
					} else if !assert.ErrorIs(t, r.cbErrs[i], stream.ErrDestroyed, "callback %d, from the Destroy at %d on", i, k) {
						return
					}
				}
				assert.NoError(t, r.err, "Err after Destroy(nil)")
				assert.ErrorIs(t, r.closeErr, stream.ErrDestroyed, "Close after Destroy(nil)")
				assert.Equal(t, []string{"close"}, r.events, "events: no error, no finish")
				assert.ErrorIs(t, r.finished, stream.ErrPrematureClose, "Finished after Destroy(nil)")
				assert.Equal(t, r.finished, r.waited, "Finished agrees whether it waited or not")
			}
			goleak.VerifyNone(t)
		})
		t.Run("Finished with a done ctx at write k/"+mode, func(t *testing.T) {
			for k := range faultWrites {
				// Finished returns ctx's cause and leaves the stream
				// alone: it goes on and finishes cleanly.
				ctx, cancel := context.WithCancelCause(context.Background())
				cancel(boom)
				var w *stream.Writable
				w = stream.NewWritable(faultSink(-1, async, nil), stream.Options{HighWaterMark: 4})
				r := runFaultScript(t, w, func(i int) {
					if i == k {
						assert.ErrorIs(t, stream.Finished(ctx, w), boom, "Finished with a done ctx at %d", k)
						assert.False(t, w.State().Destroyed, "Finished did not destroy the stream")
					}
				})
				checkFault(t, r, faultWrites, nil, true)
			}
			goleak.VerifyNone(t)
		})
		t.Run("Construct fails after k writes/"+mode, func(t *testing.T) {
			for k := range faultWrites {
				construct := make(chan stream.Callback, 1)
				w := stream.NewWritable(faultSink(-1, async, nil), stream.Options{
					HighWaterMark: 4,
					Construct:     func(done stream.Callback) { construct <- done },
				})
				done := streamtest.Recv(t, construct, "Construct")
				r := runFaultScript(t, w, func(i int) {
					if i == k {
						done(boom)
					}
				})
				checkFault(t, r, 0, boom, false)
			}
			goleak.VerifyNone(t)
		})
		t.Run("Destroy hook fails after Destroy(nil) at k/"+mode, func(t *testing.T) {
			for k := range faultWrites {
				var w *stream.Writable
				w = stream.NewWritable(faultSink(-1, async, nil), stream.Options{
					HighWaterMark: 4,
					Destroy:       func(_ error, done stream.Callback) { done(boom) },
				})
				r := runFaultScript(t, w, func(i int) {
					if i == k {
						w.Destroy(nil)
					}
				})
				from := k
				if async {
					from = firstError(r.cbErrs)
				}
				// Buffered callbacks and late writes get ErrDestroyed (the
				// stream had no error then); the hook's error becomes the
				// stream's, reported by Err, OnError and Close.
				for i := from; i < faultWrites; i++ {
					if !assert.ErrorIs(t, r.cbErrs[i], stream.ErrDestroyed, "callback %d", i) {
						return
					}
				}
				for i := range r.cbErrs[from:] {
					r.cbErrs[from+i] = boom // checked above
				}
				checkFault(t, r, from, boom, false)
			}
			goleak.VerifyNone(t)
		})
		t.Run("Final fails/"+mode, func(t *testing.T) {
			w := stream.NewWritable(faultSink(-1, async, nil), stream.Options{
				HighWaterMark: 4,
				Final:         func(done stream.Callback) { done(boom) },
			})
			checkFault(t, runFaultScript(t, w, nil), faultWrites, boom, false)
			goleak.VerifyNone(t)
		})
		t.Run("Destroy hook fails after a clean finish/"+mode, func(t *testing.T) {
			w := stream.NewWritable(faultSink(-1, async, nil), stream.Options{
				HighWaterMark: 4,
				Destroy:       func(_ error, done stream.Callback) { done(boom) },
			})
			r := runFaultScript(t, w, nil)
			// "finish" was emitted; the hook's error still reaches Err,
			// OnError and Close (d "Order of the life cycle").
			assert.Equal(t, []string{"finish", "error", "close"}, r.events, "events")
			r.events = []string{"error", "close"}
			checkFault(t, r, faultWrites, boom, false)
			goleak.VerifyNone(t)
		})
		t.Run("sink fails at k, then the Destroy hook fails/"+mode, func(t *testing.T) {
			other := errors.New("hook")
			for k := range faultWrites {
				w := stream.NewWritable(faultSink(k, async, boom), stream.Options{
					HighWaterMark: 4,
					Destroy:       func(_ error, done stream.Callback) { done(other) },
				})
				r := runFaultScript(t, w, nil)
				checkFault(t, r, k, boom, false) // the first error wins
				assert.NotErrorIs(t, r.closeErr, other, "the hook's later error does not replace the first")
			}
			goleak.VerifyNone(t)
		})
	}
}

// runDestroyedAt runs the fault script with Destroy(err) just before write
// k and returns the run and the first write that failed: k with a
// synchronous sink; with an asynchronous one, the writes buffered behind
// the one in flight fail too, so it may be earlier, never later (ok is
// false, and the test has failed, if it is later).
func runDestroyedAt(t *testing.T, k int, async bool, err error) (r faultRun, from int, ok bool) {
	t.Helper()
	var w *stream.Writable
	w = stream.NewWritable(faultSink(-1, async, nil), stream.Options{HighWaterMark: 4})
	r = runFaultScript(t, w, func(i int) {
		if i == k {
			w.Destroy(err)
		}
	})
	if !async {
		return r, k, true
	}
	from = firstError(r.cbErrs)
	return r, from, assert.LessOrEqual(t, from, k, "the first failed write is at most k")
}

func firstError(errs []error) int {
	for i, err := range errs {
		if err != nil {
			return i
		}
	}
	return len(errs)
}

// A WriteFunc that panics at write k, for every k: the panic reaches the
// goroutine that made the sink call (a producer inside WriteChunk, or the
// goroutine that called done, which makes the next call), which recovers
// it; the write fails with "stream: sink panicked" and the stream is
// destroyed: writes before k got nil, the others an error, Close returns
// the panic's error, nothing deadlocks.
func TestFaultPanickingWriteFunc(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			for k := range faultWrites {
				recovered := make(chan any, 1)
				w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
					if int(chunk[0]) == k {
						panic(fmt.Sprintf("sink bug at %d", k))
					}
					if async {
						go func() {
							defer func() {
								if v := recover(); v != nil {
									recovered <- v
								}
							}()
							done(nil) // makes the next call, which may panic
						}()
					} else {
						done(nil)
					}
				}, stream.Options{HighWaterMark: 4})
				var mu sync.Mutex
				errs := make([]error, faultWrites)
				calls := make([]int, faultWrites)
				called := make(chan struct{}, faultWrites)
				for i := range faultWrites {
					func() {
						defer func() {
							if v := recover(); v != nil {
								recovered <- v
							}
						}()
						w.WriteChunk([]byte{byte(i)}, func(err error) {
							mu.Lock()
							errs[i] = err
							calls[i]++
							mu.Unlock()
							called <- struct{}{}
						})
					}()
				}
				assert.Equal(t, fmt.Sprintf("sink bug at %d", k), streamtest.Recv(t, recovered, "the sink's panic"),
					"the panic reaches the goroutine that made the sink call")
				err := w.Close()
				for range faultWrites { // late writes are called back after "close"
					streamtest.Recv(t, called, "every write callback")
				}
				require.Error(t, err, "Close after the panic")
				assert.Contains(t, err.Error(), "stream: sink panicked", "Close's error")
				mu.Lock()
				for i := range faultWrites {
					assert.Equal(t, 1, calls[i], "write %d: callback calls", i)
					if i < k {
						assert.NoError(t, errs[i], "write %d, before the panic", i)
					} else {
						assert.ErrorIs(t, errs[i], err, "write %d, from the panic on", i)
					}
				}
				mu.Unlock()
				// Close's End does not end an errored stream (S H6): a late
				// Write gets ErrDestroyed with the panic's error.
				n, werr := w.Write([]byte("late"))
				assert.Zero(t, n, "a Write after the panic accepts nothing")
				assert.ErrorIs(t, werr, stream.ErrDestroyed, "a Write after the panic and Close")
				assert.ErrorIs(t, werr, err, "a Write after the panic and Close")
			}
			goleak.VerifyNone(t)
		})
	}
}

// A write callback that panics, for every position k, delivered on the
// goroutine that called done (the sink's own), which recovers: every other
// callback still runs once, with nil, and the stream finishes cleanly
// (Node Q3: a throwing callback leaves the stream alone).
func TestFaultPanickingCallback(t *testing.T) {
	for k := range faultWrites {
		dones := make(chan stream.Callback, 1)
		w := stream.NewWritable(func(_ []byte, done stream.Callback) { dones <- done }, stream.Options{HighWaterMark: 4})
		var mu sync.Mutex
		calls := make([]int, faultWrites)
		errs := make([]error, faultWrites)
		for i := range faultWrites {
			w.WriteChunk([]byte{byte(i)}, func(err error) {
				mu.Lock()
				calls[i]++
				errs[i] = err
				mu.Unlock()
				if i == k {
					panic("callback bug")
				}
			})
		}
		// Every done is called by this goroutine, and nothing else is
		// delivering, so the callbacks run on it, inside done; End comes
		// after, or it could hand delivery to a goroutine of the library.
		panics := 0
		for range faultWrites {
			done := streamtest.Recv(t, dones, "the next sink call")
			func() {
				defer func() {
					if recover() != nil {
						panics++
					}
				}()
				done(nil)
			}()
		}
		closed := make(chan error, 1)
		go func() { closed <- w.Close() }()
		assert.NoError(t, streamtest.Recv(t, closed, "Close"), "Close with k=%d", k)
		assert.Equal(t, 1, panics, "panics recovered by the sink's goroutine, k=%d", k)
		mu.Lock()
		for i := range faultWrites {
			assert.Equal(t, 1, calls[i], "k=%d: callback %d calls", k, i)
			assert.NoError(t, errs[i], "k=%d: callback %d", k, i)
		}
		mu.Unlock()
	}
	goleak.VerifyNone(t)
}

// An event handler that panics while the goroutine that called done
// delivers it, which recovers: the stream must still reach "close" and
// Done, and Close must not hang. (A handler delivered on a goroutine of the
// library that panics crashes the program, as any unrecovered panic in a
// goroutine does: see TestFaultPanicOnLibraryGoroutineCrashes.)
func TestFaultPanickingHandler(t *testing.T) {
	tests := []struct {
		desc     string
		register func(w *stream.Writable)
	}{
		{desc: "OnDrain", register: func(w *stream.Writable) { w.OnDrain(func() { panic("drain handler bug") }) }},
		{desc: "OnError", register: func(w *stream.Writable) { w.OnError(func(error) { panic("error handler bug") }) }},
		// OnFinish and OnClose: bugs 2 and 3, in regress_test.go.
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			faultPanickingHandler(t, tt.register, tt.desc == "OnError")
		})
	}
}

// faultPanickingHandler writes three chunks to a stream with a high-water
// mark of 1, whose sink holds every call; a handler is registered by
// register. The test's goroutine ends the stream and then calls every
// done itself, recovering panics, so that the events it causes are
// delivered on it (d "Delivery"): "drain" (write 1 returned false),
// "finish" (after End), and, if fail, "error" (write 3 fails), then
// "close". The stream must still close, and Close must not hang.
func faultPanickingHandler(t *testing.T, register func(w *stream.Writable), fail bool) {
	t.Helper()
	boom := errors.New("boom")
	dones := make(chan stream.Callback, 1)
	w := stream.NewWritable(func(_ []byte, done stream.Callback) { dones <- done }, stream.Options{HighWaterMark: 1})
	// The recorder first: the handlers registered after a panicking one
	// are skipped for that event.
	rec := streamtest.Record(w)
	register(w)
	complete := func(err error) (panicked bool) {
		done := streamtest.Recv(t, dones, "the next sink call")
		defer func() { panicked = recover() != nil }()
		done(err)
		return false
	}
	panics := 0
	w.WriteChunk([]byte("a"), nil) // false: needs drain
	if complete(nil) {
		panics++
	}
	w.WriteChunk([]byte("b"), nil)
	w.WriteChunk([]byte("c"), nil)
	w.End()
	if complete(nil) {
		panics++
	}
	var last error
	if fail {
		last = boom
	}
	if complete(last) {
		panics++
	}
	assert.Equal(t, 1, panics, "the handler's panic reached the goroutine that called done")
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	err := streamtest.Recv(t, closed, "Close after a handler panicked")
	if fail {
		assert.ErrorIs(t, err, boom, "Close")
	} else {
		assert.NoError(t, err, "Close")
	}
	streamtest.WaitDone(t, w)
	log := rec.Log()
	assert.Equal(t, "close", log[len(log)-1], "close comes last: %q", log)
	goleak.VerifyNone(t)
}
