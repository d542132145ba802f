package stream_test

// Tests of runs (run.go): when the pump finds two or more chunks without
// callbacks waiting for an idle sink (after an asynchronous done, say),
// they go to the WriteFunc one after the other from each other's done,
// without the lock. None of that may show:
// State, WriteChunk's results, "drain", Cork, End, Destroy, Flush, errors,
// double dones and panics behave as they do on the locked path. Each test
// checks with stream.RunInFlight (run_export_test.go) that it went through
// a run.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// holdingSink returns a sink that holds every write until the test
// completes it, and a stream over it with opts, closed at the end of the
// test.
func holdingSink(t *testing.T, opts stream.Options) (*stream.Writable, *streamtest.Sink, *streamtest.Recorder) {
	t.Helper()
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, opts)
	return w, sink, rec
}

// nextWrite returns the next held sink call, which must be the write of
// want.
func nextWrite(t *testing.T, sink *streamtest.Sink, want string) *streamtest.Call {
	t.Helper()
	c := sink.Next(t)
	require.Equal(t, "write "+want, c.String(), "the next sink call")
	return c
}

// startRun writes chunks (four or more) without callbacks and starts a
// run of them with claimRun.
func startRun(t *testing.T, w *stream.Writable, sink *streamtest.Sink, chunks ...string) *streamtest.Call {
	t.Helper()
	for _, c := range chunks {
		w.WriteChunk(chunk(c), nil)
	}
	return claimRun(t, w, sink, chunks...)
}

// claimRun completes the writes of the first two of chunks, written
// without callbacks, from the test goroutine after their WriteFunc
// returned: such a done finds the others waiting and claims them as a run
// (the first, a fast write, is adopted by the locked path). It returns the
// held call of chunks[2], a chunk of the run.
func claimRun(t *testing.T, w *stream.Writable, sink *streamtest.Sink, chunks ...string) *streamtest.Call {
	t.Helper()
	require.GreaterOrEqual(t, len(chunks), 4, "chunks for a run of two or more")
	for _, c := range chunks[:2] {
		nextWrite(t, sink, c).Done(nil)
	}
	call := nextWrite(t, sink, chunks[2])
	require.True(t, stream.RunInFlight(w), "a run in flight once the done of %q found %d chunks waiting",
		chunks[1], len(chunks)-2)
	return call
}

// waitUntil waits, yielding, until cond holds; what says what for.
func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(streamtest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", streamtest.Timeout, what)
		}
		runtime.Gosched()
	}
}

// runState is what the tests of runs check of State after each step.
type runState struct {
	Length, Buffered, Pending int
	Writing, NeedDrain        bool
	Drains                    int
}

func stateOf(w *stream.Writable, rec *streamtest.Recorder) runState {
	st := w.State()
	return runState{
		Length: st.Length, Buffered: st.Buffered, Pending: st.PendingCallbacks,
		Writing: st.Writing, NeedDrain: st.NeedDrain, Drains: rec.Count("drain"),
	}
}

// runStep is one step of a test that completes held writes one at a time.
type runStep struct {
	done string // the chunk whose held write the test completes, if any
	// inside says that the sink completed it inside its WriteFunc: the
	// test only takes it from the sink.
	inside bool
	drain  bool     // "drain" is due at that done: wait for it
	write  string   // then a chunk to write without callback, if any
	ok     bool     // and WriteChunk's result
	run    bool     // a run is in flight after the step
	want   runState // State after the step
}

// playSteps writes chunks (checking WriteChunk's results against oks),
// then plays steps, and checks that the sink got every chunk in order.
func playSteps(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder,
	chunks string, oks []bool, start runState, steps []runStep) {
	t.Helper()
	want := chunks
	for i, c := range chunks {
		assert.Equal(t, oks[i], w.WriteChunk(chunk(string(c)), nil), "WriteChunk(%q)", c)
	}
	assert.Equal(t, start, stateOf(w, rec), "State after the writes")
	for _, s := range steps {
		if c := s.done; c != "" && s.inside {
			nextWrite(t, sink, c)
		} else if c != "" {
			nextWrite(t, sink, c).Done(nil)
		}
		if s.drain {
			rec.WaitFor(t, "drain")
		}
		if s.write != "" {
			// Before State, which settles what a run completed: WriteChunk
			// must find the exact figure on its own.
			assert.Equal(t, s.ok, w.WriteChunk(chunk(s.write), nil), "WriteChunk(%q) after the done of %q", s.write, s.done)
			want += s.write
		}
		assert.Equal(t, s.want, stateOf(w, rec), "State after the step %+v", s)
		assert.Equal(t, !s.want.NeedDrain, isClosed(w.Ready()), "Ready closed after the step %+v", s)
		if s.run {
			assert.True(t, stream.RunInFlight(w), "a run in flight after the step %+v", s)
		}
	}
	assert.Equal(t, want, sink.Data(), "the bytes the sink got, in order")
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, steps[len(steps)-1].want.Drains, rec.Count("drain"), `"drain"s after Close`)
}

// Node conformance through a run: with HighWaterMark 4 and a sink that
// completes each write later, seven writes, then each done in turn, with
// two writes between them, give the State, WriteChunk results and the one
// "drain" (at Length 0, after the last done) that Node 20 prints for the
// same script (a Writable whose _write keeps its callbacks, called from
// setImmediate).
func TestRunStateStepByStepAsNode(t *testing.T) {
	w, sink, rec := holdingSink(t, stream.Options{HighWaterMark: 4})
	T, F := true, false
	playSteps(t, w, sink, rec, "abcdefg", []bool{T, T, T, F, F, F, F},
		runState{Length: 7, Buffered: 6, Pending: 7, Writing: T, NeedDrain: T},
		[]runStep{
			{done: "a", want: runState{6, 5, 6, T, T, 0}},
			{done: "b", run: T, want: runState{5, 4, 5, T, T, 0}},
			{done: "c", run: T, want: runState{4, 3, 4, T, T, 0}},
			{done: "d", write: "x", ok: F, run: T, want: runState{4, 3, 4, T, T, 0}},
			{done: "e", run: T, want: runState{3, 2, 3, T, T, 0}},
			{done: "f", write: "y", ok: T, run: T, want: runState{3, 2, 3, T, T, 0}},
			{done: "g", run: T, want: runState{2, 1, 2, T, T, 0}},
			{done: "x", run: T, want: runState{1, 0, 1, T, T, 0}},
			{done: "y", drain: T, want: runState{0, 0, 0, F, F, 1}},
		})
}

// The same script with LowWaterMark 2: "drain" comes at the done that
// brings Length down to 2 (f's), inside the run, once; y then returns true
// and needs no drain.
func TestRunDrainAtLowWaterMark(t *testing.T) {
	w, sink, rec := holdingSink(t, stream.Options{HighWaterMark: 4, LowWaterMark: 2})
	T, F := true, false
	playSteps(t, w, sink, rec, "abcdefg", []bool{T, T, T, F, F, F, F},
		runState{Length: 7, Buffered: 6, Pending: 7, Writing: T, NeedDrain: T},
		[]runStep{
			{done: "a", want: runState{6, 5, 6, T, T, 0}},
			{done: "b", run: T, want: runState{5, 4, 5, T, T, 0}},
			{done: "c", run: T, want: runState{4, 3, 4, T, T, 0}},
			{done: "d", write: "x", ok: F, run: T, want: runState{4, 3, 4, T, T, 0}},
			{done: "e", run: T, want: runState{3, 2, 3, T, T, 0}},
			{done: "f", drain: T, write: "y", ok: T, want: runState{3, 2, 3, T, F, 1}},
			{done: "g", run: T, want: runState{2, 1, 2, T, F, 1}},
			{done: "x", run: T, want: runState{1, 0, 1, T, F, 1}},
			{done: "y", want: runState{0, 0, 0, F, F, 1}},
		})
}

// A write that finds the stream at its mark during a run, none needed
// before, moves the run's stop: with HighWaterMark 8 and LowWaterMark 5,
// "drain" comes at the done that brings Length down to 5 (f's), inside
// the run.
func TestRunDrainNeededDuringRun(t *testing.T) {
	w, sink, rec := holdingSink(t, stream.Options{HighWaterMark: 8, LowWaterMark: 5})
	T, F := true, false
	playSteps(t, w, sink, rec, "abcdefg", []bool{T, T, T, T, T, T, T},
		runState{Length: 7, Buffered: 6, Pending: 7, Writing: T},
		[]runStep{
			{done: "a", want: runState{6, 5, 6, T, F, 0}},
			{done: "b", run: T, want: runState{5, 4, 5, T, F, 0}},
			{done: "c", write: "x", ok: T, run: T, want: runState{5, 4, 5, T, F, 0}},
			{write: "y", ok: T, run: T, want: runState{6, 5, 6, T, F, 0}},
			{write: "z", ok: T, run: T, want: runState{7, 6, 7, T, F, 0}},
			{write: "q", ok: F, run: T, want: runState{8, 7, 8, T, T, 0}},
			{done: "d", run: T, want: runState{7, 6, 7, T, T, 0}},
			{done: "e", run: T, want: runState{6, 5, 6, T, T, 0}},
			{done: "f", drain: T, want: runState{5, 4, 5, T, F, 1}},
			{done: "g", run: T, want: runState{4, 3, 4, T, F, 1}},
			{done: "x", run: T, want: runState{3, 2, 3, T, F, 1}},
			{done: "y", run: T, want: runState{2, 1, 2, T, F, 1}},
			{done: "z", run: T, want: runState{1, 0, 1, T, F, 1}},
			{done: "q", want: runState{0, 0, 0, F, F, 1}},
		})
}

// A chunk at which the run must take the lock completing inside its
// WriteFunc: the run's last chunk, or the one whose done makes "drain" due
// (e, with HighWaterMark 4 and LowWaterMark 2).
func TestRunStopDoneInside(t *testing.T) {
	T, F := true, false
	completeInside := func(sink *streamtest.Sink, chunk string) {
		sink.OnCall(func(c *streamtest.Call) {
			if c.Data() == chunk {
				c.Done(nil)
			}
		})
	}
	t.Run("the last chunk", func(t *testing.T) {
		w, sink, rec := holdingSink(t, stream.Options{})
		completeInside(sink, "e")
		playSteps(t, w, sink, rec, "abcde", []bool{T, T, T, T, T},
			runState{Length: 5, Buffered: 4, Pending: 5, Writing: T},
			[]runStep{
				{done: "a", want: runState{4, 3, 4, T, F, 0}},
				{done: "b", run: T, want: runState{3, 2, 3, T, F, 0}},
				{done: "c", run: T, want: runState{2, 1, 2, T, F, 0}},
				{done: "d", want: runState{0, 0, 0, F, F, 0}},
				{done: "e", inside: T, write: "f", ok: T, want: runState{1, 0, 1, T, F, 0}},
				{done: "f", want: runState{0, 0, 0, F, F, 0}},
			})
	})
	t.Run("the drain stop", func(t *testing.T) {
		w, sink, rec := holdingSink(t, stream.Options{HighWaterMark: 4, LowWaterMark: 2})
		completeInside(sink, "e")
		playSteps(t, w, sink, rec, "abcdefg", []bool{T, T, T, F, F, F, F},
			runState{Length: 7, Buffered: 6, Pending: 7, Writing: T, NeedDrain: T},
			[]runStep{
				{done: "a", want: runState{6, 5, 6, T, T, 0}},
				{done: "b", run: T, want: runState{5, 4, 5, T, T, 0}},
				{done: "c", run: T, want: runState{4, 3, 4, T, T, 0}},
				{done: "d", drain: T, want: runState{2, 1, 2, T, F, 1}},
				{done: "e", inside: T, want: runState{2, 1, 2, T, F, 1}},
				{done: "f", want: runState{1, 0, 1, T, F, 1}},
				{done: "g", want: runState{0, 0, 0, F, F, 1}},
			})
	})
}

// A WritableOf with a Size: a run's stop, where "drain" comes, is where
// the weights bring Length down to LowWaterMark. Items 1 to 6 weigh their
// value; with HighWaterMark 10 and LowWaterMark 8, "drain" comes at the
// done of 5, which leaves 6, inside the run of 2 to 6.
func TestRunOfWeightedDrain(t *testing.T) {
	type call struct {
		v    int
		done stream.Callback
	}
	held := make(chan call, 1) // one call in flight at a time
	w := stream.NewWritableOf(func(v int, done stream.Callback) { held <- call{v, done} },
		stream.OptionsOf[int]{Size: func(v int) int { return v }, HighWaterMark: 10, LowWaterMark: 8})
	t.Cleanup(func() {
		w.Destroy(nil)
		for {
			select {
			case c := <-held:
				c.done(nil)
			case <-w.Done():
				return
			case <-time.After(streamtest.Timeout):
				t.Error("the stream did not close after Destroy at the end of the test")
				return
			}
		}
	})
	var drains atomic.Int32
	w.OnDrain(func() { drains.Add(1) })
	for v, ok := range []bool{true, true, true, false, false, false} {
		assert.Equal(t, ok, w.WriteChunk(v+1, nil), "WriteChunk(%d)", v+1)
	}
	for v, length := range []int{20, 18, 15, 11, 6, 0} {
		c := streamtest.Recv(t, held, fmt.Sprintf("the write of %d", v+1))
		require.Equal(t, v+1, c.v, "the item the sink got")
		c.done(nil)
		if v+1 == 5 {
			waitUntil(t, func() bool { return drains.Load() == 1 }, `"drain" after the done of 5`)
		}
		st := w.State()
		assert.Equal(t, length, st.Length, "Length after the done of %d", v+1)
		assert.Equal(t, v+1 < 5, st.NeedDrain, "NeedDrain after the done of %d", v+1)
		if v+1 >= 2 && v+1 <= 4 {
			assert.True(t, stream.RunInFlightOf(w), "a run in flight after the done of %d", v+1)
		}
	}
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, int32(1), drains.Load(), `"drain"s`)
}

// MaxBuffered counts what a run completed as gone: with HighWaterMark 4
// and MaxBuffered 6, the stream full (d e f x y waiting behind c), a
// WriteChunk that fits only once c's done is counted is accepted, and one
// that does not fit even then is dropped.
func TestRunMaxBufferedSeesCompletedChunks(t *testing.T) {
	w, sink, rec := holdingSink(t, stream.Options{HighWaterMark: 4, MaxBuffered: 6})
	run := []string{"a", "b", "c", "d", "e", "f"}
	for _, c := range run {
		w.WriteChunk(chunk(c), nil)
	}
	c := claimRun(t, w, sink, run...)
	for _, s := range []string{"x", "y"} {
		assert.False(t, w.WriteChunk(chunk(s), rec.Callback(s)), "%s: accepted over the high-water mark", s)
	}
	c.Done(nil)
	assert.False(t, w.WriteChunk(chunk("z"), rec.Callback("z")), "z: accepted at MaxBuffered")
	assert.False(t, w.WriteChunk(chunk("r"), rec.Callback("r")), "r: beyond MaxBuffered")
	st := w.State()
	assert.Equal(t, 1, st.Dropped, "Dropped: r only")
	assert.Equal(t, 6, st.Length, "Length: d e f x y z")
	for _, s := range []string{"d", "e", "f", "x", "y", "z"} {
		nextWrite(t, sink, s).Done(nil)
	}
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, "abcdefxyz", sink.Data(), "the bytes the sink got, in order")
	for _, s := range []string{"x", "y", "z"} {
		assert.NoError(t, rec.Err(s), "callback of %s", s)
	}
	assert.ErrorIs(t, rec.Err("r"), stream.ErrDropped, "callback of r")
}

// Cork during a run: what was accepted before it is not sent until Uncork
// (Node's clearBuffer returns while corked), the chunk in flight completes
// normally, and after Uncork the rest goes in order, as a run again. The
// Cork comes from the test goroutine while a chunk is held, or from inside
// the WriteFunc of a chunk of the run, before its done.
func TestRunCork(t *testing.T) {
	for _, inside := range []bool{false, true} {
		t.Run(fmt.Sprintf("inside WriteFunc %v", inside), func(t *testing.T) {
			w, sink, rec := holdingSink(t, stream.Options{})
			if inside {
				sink.OnCall(func(c *streamtest.Call) {
					if c.Data() == "c" {
						w.Cork()
					}
				})
			}
			c := startRun(t, w, sink, "a", "b", "c", "d", "e", "f", "g")
			if !inside {
				w.Cork()
			}
			assert.Equal(t, 1, w.State().Corked, "Corked")
			c.Done(nil)
			st := w.State()
			assert.False(t, st.Writing, "Writing once the chunk in flight completed, corked")
			assert.Equal(t, 4, st.Length, "Length: d e f g")
			assert.Equal(t, 4, st.Buffered, "Buffered: d e f g")
			assert.Equal(t, 3, sink.Count(streamtest.Write), "sink writes while corked")
			w.WriteChunk(chunk("h"), rec.Callback("h"))
			assert.Equal(t, 3, sink.Count(streamtest.Write), "sink writes after a write while corked")

			w.Uncork()
			nextWrite(t, sink, "d").Done(nil)
			e := nextWrite(t, sink, "e")
			assert.True(t, stream.RunInFlight(w), "a run in flight again after Uncork")
			e.Done(nil)
			for _, s := range []string{"f", "g", "h"} {
				nextWrite(t, sink, s).Done(nil)
			}
			require.NoError(t, w.Close(), "Close")
			assert.Equal(t, "abcdefgh", sink.Data(), "the bytes the sink got, in order")
			assert.NoError(t, rec.Err("h"), "callback of h")
		})
	}
}

// Cork and Uncork during a run: the run carries on. They come from the
// test goroutine while a chunk is held, or from inside the WriteFunc of a
// chunk of the run, which the sink completes later or inside.
func TestRunCorkUncorkCarriesOn(t *testing.T) {
	for _, where := range []string{"held", "inside WriteFunc", "inside WriteFunc, done inside"} {
		t.Run(where, func(t *testing.T) {
			w, sink, _ := holdingSink(t, stream.Options{})
			if where != "held" {
				sink.OnCall(func(c *streamtest.Call) {
					if c.Data() == "d" {
						w.Cork()
						w.Uncork()
						if where == "inside WriteFunc, done inside" {
							c.Done(nil)
						}
					}
				})
			}
			c := startRun(t, w, sink, "a", "b", "c", "d", "e", "f")
			if where == "held" {
				w.Cork()
				w.Uncork()
			}
			c.Done(nil)
			d := nextWrite(t, sink, "d")
			if where == "inside WriteFunc, done inside" {
				e := nextWrite(t, sink, "e")
				assert.True(t, stream.RunInFlight(w), "the run still in flight at e")
				e.Done(nil)
			} else {
				assert.True(t, stream.RunInFlight(w), "the run still in flight at d")
				d.Done(nil)
				nextWrite(t, sink, "e").Done(nil)
			}
			f := nextWrite(t, sink, "f")
			assert.True(t, stream.RunInFlight(w), "the run still in flight at f")
			f.Done(nil)
			require.NoError(t, w.Close(), "Close")
			assert.Equal(t, "abcdef", sink.Data(), "the bytes the sink got, in order")
		})
	}
}

// Destroy(err) during a run: the chunk in flight completes, its done late;
// no chunk after it reaches the sink; the Destroy hook runs after that done
// only; a buffered write's callback gets err, a write after Destroy the
// error of a write to a destroyed stream; Err, Close and Flush report err.
func TestRunDestroy(t *testing.T) {
	boom := errors.New("boom")
	for _, inside := range []bool{false, true} {
		t.Run(fmt.Sprintf("inside WriteFunc %v", inside), func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, rec := open(t, sink, stream.Options{Destroy: sink.Destroy})
			if inside {
				sink.OnCall(func(c *streamtest.Call) {
					if c.Data() == "c" {
						w.Destroy(boom)
					}
				})
			}
			run := []string{"a", "b", "c", "d", "e", "f"}
			for _, c := range run {
				w.WriteChunk(chunk(c), nil)
			}
			w.WriteChunk(chunk("g"), rec.Callback("g"))
			c := claimRun(t, w, sink, run...)
			if !inside {
				w.Destroy(boom)
			}
			st := w.State()
			assert.True(t, st.Destroyed, "Destroyed while the chunk in flight is held")
			assert.True(t, st.Writing, "Writing while the chunk in flight is held")
			assert.Equal(t, 5, st.Length, "Length while the chunk in flight is held: c d e f g")
			assert.Equal(t, 4, st.Buffered, "Buffered while the chunk in flight is held: d e f g")
			assert.ErrorIs(t, w.Err(), boom, "Err before the done of the chunk in flight")
			assert.False(t, w.WriteChunk(chunk("h"), rec.Callback("h")), "a write after Destroy")
			select {
			case <-w.Done():
				t.Fatal("the stream closed before the done of the chunk in flight")
			default:
			}

			c.Done(nil)
			streamtest.WaitDone(t, w)
			assert.Equal(t, []string{"write a", "write b", "write c", "destroy boom"}, sink.Log(), "sink calls")
			assert.ErrorIs(t, rec.Err("g"), boom, "callback of g, buffered")
			assert.ErrorIs(t, rec.Err("h"), stream.ErrDestroyed, "callback of h, written after Destroy")
			assert.ErrorIs(t, rec.Err("h"), boom, "callback of h, written after Destroy")
			log := rec.Log()
			assert.Equal(t, []string{"error boom", "close"}, log[len(log)-2:], "the last events")
			assert.Equal(t, 1, rec.Count("error boom"), `"error" once`)
			assert.ErrorIs(t, w.Err(), boom, "Err")
			assert.ErrorIs(t, w.Close(), boom, "Close")
			flushErr := w.Flush(context.Background())
			assert.ErrorIs(t, flushErr, stream.ErrDestroyed, "Flush after close")
			assert.ErrorIs(t, flushErr, boom, "Flush after close")
			assert.Zero(t, w.State().Length, "Length after close")
		})
	}
}

// End during a run: every chunk still reaches the sink, in order, then
// Final, then "finish"; a write after End fails alone. End comes from the
// test goroutine while a chunk is held, or from inside the WriteFunc of a
// chunk of the run.
func TestRunEnd(t *testing.T) {
	for _, inside := range []bool{false, true} {
		t.Run(fmt.Sprintf("inside WriteFunc %v", inside), func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, rec := open(t, sink, stream.Options{Final: sink.Final})
			if inside {
				sink.OnCall(func(c *streamtest.Call) {
					if c.Data() == "d" {
						w.End()
					}
				})
			}
			c := startRun(t, w, sink, "a", "b", "c", "d", "e", "f")
			c.Done(nil)
			d := nextWrite(t, sink, "d")
			if !inside {
				w.End()
			}
			assert.True(t, w.State().Ending, "Ending after End")
			assert.False(t, w.WriteChunk(chunk("x"), rec.Callback("x")), "a write after End")
			d.Done(nil)
			for _, s := range []string{"e", "f"} {
				nextWrite(t, sink, s).Done(nil)
			}
			require.NoError(t, w.Close(), "Close")
			assert.Equal(t, []string{"write a", "write b", "write c", "write d", "write e", "write f", "final"},
				sink.Log(), "sink calls")
			assert.ErrorIs(t, rec.Err("x"), stream.ErrWriteAfterEnd, "callback of x, written after End")
			assert.Equal(t, 1, rec.Count("finish"), `"finish" once`)
			assert.NoError(t, w.Err(), "Err")
		})
	}
}

// Flush during a run returns nil once every chunk accepted before it
// completed, and does not wait for a chunk written after it.
func TestRunFlush(t *testing.T) {
	w, sink, _ := holdingSink(t, stream.Options{})
	c := startRun(t, w, sink, "a", "b", "c", "d", "e", "f")
	flushed := flushAsync(context.Background(), w)
	waitUntil(t, func() bool { return stream.FlushesWaiting(w) == 1 }, "Flush to wait")
	w.WriteChunk(chunk("g"), nil)
	c.Done(nil)
	for _, s := range []string{"d", "e", "f"} {
		select {
		case err := <-flushed:
			t.Fatalf("Flush returned %v before the done of %q", err, s)
		default:
		}
		nextWrite(t, sink, s).Done(nil)
	}
	assert.NoError(t, streamtest.Recv(t, flushed, "Flush to return after the done of f"), "Flush")
	g := nextWrite(t, sink, "g")
	assert.True(t, w.State().Writing, "g in flight when Flush returned")
	g.Done(nil)
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, "abcdefg", sink.Data(), "the bytes the sink got, in order")
}

// A chunk of a run failing (the third of a run of six, its done called
// after its WriteFunc returned, or inside it) destroys the stream with its
// error: the chunks after it never reach the sink, and the callback of a
// buffered write gets the error.
func TestRunChunkFails(t *testing.T) {
	boom := errors.New("boom")
	for _, inside := range []bool{false, true} {
		t.Run(fmt.Sprintf("inside WriteFunc %v", inside), func(t *testing.T) {
			w, sink, rec := holdingSink(t, stream.Options{})
			if inside {
				sink.OnCall(func(c *streamtest.Call) {
					if c.Data() == "e" {
						c.Done(boom)
					}
				})
			}
			run := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
			for _, c := range run {
				w.WriteChunk(chunk(c), nil)
			}
			w.WriteChunk(chunk("i"), rec.Callback("i"))
			claimRun(t, w, sink, run...).Done(nil)
			nextWrite(t, sink, "d").Done(nil)
			e := nextWrite(t, sink, "e")
			if !inside {
				e.Done(boom)
			}
			streamtest.WaitDone(t, w)
			assert.Equal(t, "abcde", sink.Data(), "the bytes the sink got")
			assert.ErrorIs(t, w.Err(), boom, "Err")
			assert.ErrorIs(t, w.Close(), boom, "Close")
			assert.ErrorIs(t, rec.Err("i"), boom, "callback of i, buffered")
			assert.Equal(t, []string{"cb i boom", "error boom", "close"}, rec.Log(), "events")
			assert.Zero(t, w.State().Length, "Length after close")
		})
	}
}

// A done called twice for a chunk of a run destroys the stream with
// ErrMultipleCallback, and no chunk after the one in flight reaches the
// sink: the done of the previous chunk again while the next is in flight
// (stale), twice for the run's last chunk, or twice inside the WriteFunc.
func TestRunDoneTwice(t *testing.T) {
	tests := []struct {
		desc   string
		chunks []string
		// play completes the writes after the run started with the held
		// call first, calling some done twice.
		play     func(t *testing.T, sink *streamtest.Sink, first *streamtest.Call)
		wantData string
	}{
		{
			desc:   "stale, the next chunk in flight",
			chunks: []string{"a", "b", "c", "d", "e", "f"},
			play: func(t *testing.T, sink *streamtest.Sink, c *streamtest.Call) {
				c.Done(nil)
				d := nextWrite(t, sink, "d")
				c.Done(nil)
				d.Done(nil)
			},
			wantData: "abcd",
		},
		{
			desc:   "twice for the run's last chunk",
			chunks: []string{"a", "b", "c", "d"},
			play: func(t *testing.T, sink *streamtest.Sink, c *streamtest.Call) {
				c.Done(nil)
				d := nextWrite(t, sink, "d")
				d.Done(nil)
				d.Done(nil)
			},
			wantData: "abcd",
		},
		{
			desc:   "twice inside the WriteFunc",
			chunks: []string{"a", "b", "c", "d", "e", "f"},
			play: func(t *testing.T, sink *streamtest.Sink, c *streamtest.Call) {
				sink.OnCall(func(c *streamtest.Call) {
					if c.Data() == "d" {
						c.Done(nil)
						c.Done(nil)
					}
				})
				c.Done(nil)
				nextWrite(t, sink, "d") // completed inside
			},
			wantData: "abcd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w, sink, rec := holdingSink(t, stream.Options{})
			tt.play(t, sink, startRun(t, w, sink, tt.chunks...))
			streamtest.WaitDone(t, w)
			assert.ErrorIs(t, w.Err(), stream.ErrMultipleCallback, "Err")
			assert.ErrorIs(t, w.Close(), stream.ErrMultipleCallback, "Close")
			assert.Equal(t, tt.wantData, sink.Data(), "the bytes the sink got")
			assert.Equal(t, []string{"error ErrMultipleCallback", "close"}, rec.Log(), "events")
		})
	}
}

// A WriteFunc panicking on the third chunk of a run, called from the
// goroutine that called done for the second (asynchronously, or inside the
// WriteFunc of the second), panics there; the stream is destroyed with an
// error naming the call and the panic, which the callback of a buffered
// write gets too, and the chunks after it never reach the sink.
// runtime.Goexit in the WriteFunc does the same.
func TestRunSinkPanics(t *testing.T) {
	tests := []struct {
		desc    string
		inside  bool // d completes inside its WriteFunc
		goexit  bool
		wantErr string
	}{
		{desc: "after an asynchronous done", wantErr: "stream: sink panicked (write): sink bug"},
		{desc: "after a done inside the WriteFunc", inside: true, wantErr: "stream: sink panicked (write): sink bug"},
		{desc: "Goexit", goexit: true, wantErr: "stream: sink panicked (write): runtime.Goexit"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w, sink, rec := holdingSink(t, stream.Options{})
			sink.OnCall(func(c *streamtest.Call) {
				switch {
				case c.Data() == "d" && tt.inside:
					c.Done(nil)
				case c.Data() == "e" && tt.goexit:
					runtime.Goexit()
				case c.Data() == "e":
					panic("sink bug")
				}
			})
			run := []string{"a", "b", "c", "d", "e", "f", "g"}
			for _, c := range run {
				w.WriteChunk(chunk(c), nil)
			}
			w.WriteChunk(chunk("h"), rec.Callback("h"))
			c := claimRun(t, w, sink, run...)
			last := c // the done that makes e's call
			if !tt.inside {
				c.Done(nil)
				last = nextWrite(t, sink, "d")
			}
			if tt.goexit {
				exited := make(chan struct{})
				go func() {
					defer close(exited)
					last.Done(nil)
					t.Error("done returned, though the WriteFunc it called exited its goroutine")
				}()
				streamtest.Recv(t, exited, "the goroutine of the done to exit")
			} else {
				assert.PanicsWithValue(t, "sink bug", func() { last.Done(nil) },
					"the WriteFunc's panic reaches the goroutine that called done")
			}
			streamtest.WaitDone(t, w)
			assert.EqualError(t, w.Err(), tt.wantErr, "Err")
			assert.EqualError(t, w.Close(), tt.wantErr, "Close")
			assert.EqualError(t, rec.Err("h"), tt.wantErr, "callback of h, buffered")
			assert.Equal(t, "abcde", sink.Data(), "the bytes the sink got")
		})
	}
}

// A sink that completes every other chunk inside its WriteFunc and the
// others later, from the test goroutine: the 10000 chunks arrive in order,
// through runs, with no sink call nested in another and a stack that does
// not grow, and State is back to empty at the end, with one "drain".
func TestRunMixedSyncAndAsyncDones(t *testing.T) {
	const n = 10000
	var (
		held      = make(chan stream.Callback, 1)
		got       []string // appended by the WriteFunc, one call at a time
		depth     atomic.Int32
		maxDepth  atomic.Int32
		maxFrames int
	)
	w := stream.NewWritable(func(c []byte, done stream.Callback) {
		d := depth.Add(1)
		defer depth.Add(-1)
		if d > maxDepth.Load() {
			maxDepth.Store(d)
		}
		var pcs [256]uintptr
		maxFrames = max(maxFrames, runtime.Callers(0, pcs[:]))
		got = append(got, string(c))
		if i, _ := strconv.Atoi(string(c)); i%2 == 0 {
			done(nil)
		} else {
			held <- done
		}
	}, stream.Options{})
	streamtest.Cleanup(t, w)
	rec := streamtest.Record(w)
	for i := range n {
		w.WriteChunk(chunk(strconv.Itoa(i)), nil)
	}
	inRun := 0
	for range n / 2 {
		streamtest.Recv(t, held, "a held write")(nil)
		if stream.RunInFlight(w) {
			inRun++
		}
	}
	rec.WaitFor(t, "drain")
	st := w.State()
	assert.Equal(t, stream.State{HighWaterMark: stream.DefaultHighWaterMark}, st, "State at the end")
	require.NoError(t, w.Close(), "Close")

	assert.Greater(t, inRun, n/4, "dones after which a run was in flight, of %d", n/2)
	assert.Equal(t, int32(1), maxDepth.Load(), "sink calls nested")
	assert.Less(t, maxFrames, 40, "frames on the stack in the WriteFunc")
	require.Len(t, got, n, "chunks the sink got")
	for i, c := range got {
		if c != strconv.Itoa(i) {
			t.Fatalf("chunk %d is %q", i, c)
		}
	}
	assert.Equal(t, 1, rec.Count("drain"), `"drain" once`)
}

// Eight producers write through runs to a sink completing on a worker
// goroutine of its own, while another goroutine reads State, corks and
// uncorks, and flushes at random: producers 0-3 wait on a false
// WriteChunk, 4-5 pass callbacks, 6 ignores the result, 7 uses Write.
// After End and Close every record arrives exactly once, each producer's
// in its own order, Flush always returned nil, and Length is 0.
func TestRunConcurrentProducers(t *testing.T) {
	const (
		producers = 8
		records   = 1500
		warmup    = 10
	)
	type sinkCall struct {
		chunk []byte
		done  stream.Callback
	}
	calls := make(chan sinkCall, 4) // one call in flight at a time
	var (
		mu   sync.Mutex
		data []byte
	)
	w := stream.NewWritable(func(c []byte, done stream.Callback) {
		calls <- sinkCall{c, done}
	}, stream.Options{HighWaterMark: 256})
	streamtest.Cleanup(t, w)

	// Warm-up writes, before the worker starts, make sure of one run: the
	// second's done finds the other eight waiting.
	for i := range warmup {
		w.WriteChunk(fmt.Appendf(nil, "w %d\n", i), nil)
	}
	firstRun := make(chan bool, 1)
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		n := 0
		for c := range calls {
			if n++; n == 3 {
				firstRun <- stream.RunInFlight(w)
			}
			mu.Lock()
			data = append(data, c.chunk...)
			mu.Unlock()
			c.done(nil)
		}
	}()
	require.True(t, streamtest.Recv(t, firstRun, "the third sink call"), "the third warm-up write went in a run")

	ctx, cancel := context.WithTimeout(context.Background(), streamtest.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	var callbacks atomic.Int64
	for p := range producers {
		wg.Go(func() {
			for i := range records {
				rec := fmt.Appendf(nil, "%d %d\n", p, i)
				switch {
				case p < 4:
					if !w.WriteChunk(rec, nil) {
						if err := w.Wait(ctx); err != nil {
							t.Errorf("producer %d: Wait: %v", p, err)
							return
						}
					}
				case p < 6:
					w.WriteChunk(rec, func(err error) {
						assert.NoError(t, err, "callback of producer %d, record %d", p, i)
						callbacks.Add(1)
					})
				case p == 6:
					w.WriteChunk(rec, nil)
				default:
					if _, err := w.Write(rec); err != nil {
						t.Errorf("producer %d: Write: %v", p, err)
						return
					}
				}
			}
		})
	}
	stop := make(chan struct{})
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			switch rng.IntN(3) {
			case 0:
				st := w.State()
				assert.GreaterOrEqual(t, st.Length, st.Buffered, "Length against Buffered (a record is a byte or more)")
				assert.GreaterOrEqual(t, st.PendingCallbacks, st.Buffered, "PendingCallbacks against Buffered")
				assert.NoError(t, st.Err, "Err")
			case 1:
				w.Cork()
				assert.GreaterOrEqual(t, w.State().Corked, 1, "Corked between Cork and Uncork")
				w.Uncork()
			case 2:
				assert.NoError(t, w.Flush(ctx), "Flush")
			}
		}
	}()
	waitGroup(t, &wg, "the producers")
	close(stop)
	streamtest.Recv(t, chaosDone, "the goroutine calling State, Cork and Flush to stop")
	w.End()
	require.NoError(t, w.Close(), "Close")
	close(calls)
	streamtest.Recv(t, workerDone, "the sink's worker to stop")

	assert.Equal(t, int64(2*records), callbacks.Load(), "callbacks run")
	assert.Zero(t, w.State().Length, "Length after Close")
	next := map[string]int{}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, line := range lines {
		who, seq, _ := strings.Cut(line, " ")
		i, err := strconv.Atoi(seq)
		require.NoError(t, err, "record %q", line)
		require.Equal(t, next[who], i, "the next record of %q", who)
		next[who]++
	}
	assert.Equal(t, warmup, next["w"], "warm-up records")
	for p := range producers {
		assert.Equal(t, records, next[strconv.Itoa(p)], "records of producer %d", p)
	}
}
