package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
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

// Bad input and misuse (issue 5): every public function with nil, zero,
// negative or huge arguments where the type allows, and calls made where
// they are allowed but unusual. Each has a documented result, never a
// deadlock, never a silent loss. The results chosen here:
//
//   - NewWritable(nil, ...) and a negative HighWaterMark panic, naming the
//     field (DESIGN "Bad input"); a huge HighWaterMark is accepted.
//   - WriteChunk(nil, nil) accepts an empty chunk, which reaches the sink.
//   - Write(nil), WriteString("") and ReadFrom of an empty reader accept
//     nothing and return (0, nil) on a live stream.
//   - ReadFrom of a reader that fails returns the reader's error and leaves
//     the stream alone; ReadFrom(nil) panics like io.Copy(w, nil), leaving
//     the stream usable.
//   - An extra Uncork is a no-op; End uncorks any number of Corks.
//   - Close, End and Destroy are safe any number of times from any number
//     of goroutines: every Close returns the same result, the first error
//     wins, "error" fires at most once and "close" once.
//   - End inside a write callback ends the stream normally.
//   - Writes inside an OnClose handler fail at once (ErrWriteAfterEnd after
//     End, ErrDestroyed after a Destroy); a WriteChunk's callback still
//     runs, after "close".
//   - WriteChunk, End, Destroy, Cork, Uncork and State inside the WriteFunc
//     work (writes are buffered behind the call in flight).
//   - A Write blocked on backpressure returns when another goroutine
//     destroys or closes the stream, with the bytes it accepted.
//   - On*(nil) panics at the call, naming the method (a programmer error,
//     like NewWritable(nil)), rather than crash the program when the event
//     fires (bug 5).
//   - A handler or callback that panics on a goroutine of the library
//     crashes the program, as any unrecovered panic does.

func TestMisuseNewWritable(t *testing.T) {
	assert.PanicsWithValue(t, "stream: NewWritable: nil WriteFunc", func() {
		stream.NewWritable(nil, stream.Options{})
	}, "nil WriteFunc")
	assert.Panics(t, func() { stream.NewWritable(streamtest.NewSink().Write, stream.Options{HighWaterMark: -1}) },
		"negative HighWaterMark")
	defer func() {
		v := recover()
		require.NotNil(t, v, "negative HighWaterMark")
		assert.Contains(t, fmt.Sprint(v), "HighWaterMark", "the panic names the field")
		assert.True(t, strings.HasPrefix(fmt.Sprint(v), "stream: "), "the panic message starts with the package")
	}()
	stream.NewWritable(streamtest.NewSink().Write, stream.Options{HighWaterMark: math.MinInt})
}

func TestMisuseHugeHighWaterMark(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w := stream.NewWritable(sink.Write, stream.Options{HighWaterMark: math.MaxInt, StallTimeout: -1})
	streamtest.Cleanup(t, w, sink)
	big := make([]byte, 1<<20)
	assert.True(t, w.WriteChunk(big, nil), "1 MiB under a huge high-water mark")
	assert.True(t, w.WriteChunk(big, nil), "and again while the first is in flight")
	n, err := w.Write(big)
	assert.NoError(t, err, "Write")
	assert.Equal(t, len(big), n, "Write")
	assert.Equal(t, 3<<20, w.State().Length, "Length")
	sink.Next(t).Done(nil)
	sink.Next(t).Done(nil)
	sink.Next(t).Done(nil)
	assert.NoError(t, w.Close(), "Close")
	assert.Equal(t, 3<<20, len(sink.Data()), "bytes at the sink")
}

func TestMisuseEmptyAndNilWrites(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{})
	assert.True(t, w.WriteChunk(nil, nil), "WriteChunk(nil, nil)")
	assert.True(t, w.WriteChunk([]byte{}, rec.Callback("empty")), "WriteChunk of an empty chunk")
	n, err := w.Write(nil)
	assert.Equal(t, 0, n, "Write(nil)")
	assert.NoError(t, err, "Write(nil)")
	n, err = w.WriteString("")
	assert.Equal(t, 0, n, `WriteString("")`)
	assert.NoError(t, err, `WriteString("")`)
	n64, err := w.ReadFrom(strings.NewReader(""))
	assert.Zero(t, n64, "ReadFrom of an empty reader")
	assert.NoError(t, err, "ReadFrom of an empty reader")
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, []string{"write ", "write "}, sink.Log(), "both empty chunks reach the sink; the empty Writes add nothing")
	assert.Equal(t, []string{"cb empty <nil>", "finish", "close"}, rec.Log(), "events")
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// overReader claims to have read more than it was given room for.
type overReader struct{}

func (overReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestMisuseReadFrom(t *testing.T) {
	sink := streamtest.NewSink()
	w, _ := open(t, sink, stream.Options{})
	boom := errors.New("read failed")
	n, err := w.ReadFrom(io.MultiReader(strings.NewReader("ab"), failingReader{boom}))
	assert.EqualValues(t, 2, n, "ReadFrom: bytes accepted before the reader failed")
	assert.ErrorIs(t, err, boom, "ReadFrom returns the reader's error")
	assert.NoError(t, w.Err(), "a reader's error does not destroy the stream")

	assert.Panics(t, func() { w.ReadFrom(nil) }, "ReadFrom(nil) panics, as io.Copy(w, nil) does")
	assert.Panics(t, func() { w.ReadFrom(overReader{}) }, "a reader returning n > len(p) panics")
	// The stream is not left locked or half-written.
	n2, err := w.Write([]byte("cd"))
	assert.Equal(t, 2, n2, "Write after the panics")
	assert.NoError(t, err, "Write after the panics")
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, "abcd", sink.Data(), "bytes at the sink")
}

func TestMisuseCork(t *testing.T) {
	sink := streamtest.NewSink()
	w, _ := open(t, sink, stream.Options{})
	w.Uncork()
	w.Uncork()
	assert.Zero(t, w.State().Corked, "Uncork without Cork is a no-op")
	w.Cork()
	w.WriteChunk(chunk("a"), nil)
	assert.Empty(t, sink.Log(), "one Cork after extra Uncorks still corks")
	w.Uncork()
	assert.Equal(t, []string{"write a"}, sink.Log(), "one Uncork flushes")
	for range 1000 {
		w.Cork()
	}
	w.WriteChunk(chunk("b"), nil)
	assert.Equal(t, 1000, w.State().Corked, "Corked")
	require.NoError(t, w.Close(), "End uncorks fully")
	assert.Equal(t, "ab", sink.Data(), "bytes at the sink")
}

// Close, End and Destroy from many goroutines at once, with writers.
func TestMisuseCloseAndDestroyFromManyGoroutines(t *testing.T) {
	for round := range 20 {
		var cbs atomic.Int64
		var accepted atomic.Int64
		w := stream.NewWritable(func(_ []byte, done stream.Callback) { go done(nil) }, stream.Options{HighWaterMark: 8})
		rec := streamtest.Record(w)
		errs := make([]error, 8)
		for i := range errs {
			errs[i] = fmt.Errorf("destroy %d", i)
		}
		var wg sync.WaitGroup
		results := make(chan error, 32)
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch g % 4 {
				case 0:
					results <- w.Close()
				case 1:
					w.Destroy(errs[g%len(errs)])
				case 2:
					w.Destroy(nil)
					w.End()
				default:
					for range 20 {
						accepted.Add(1)
						w.WriteChunk([]byte("x"), func(error) { cbs.Add(1) })
					}
				}
			}()
		}
		wg.Wait()
		streamtest.WaitDone(t, w)
		want := w.Err()
		if want != nil && want != stream.ErrWriteAfterEnd { // a writer may come after End
			assert.Contains(t, errs, want, "round %d: Err is one of the Destroy errors", round)
		}
		close(results)
		first, firstSet := error(nil), false
		for err := range results {
			if !firstSet {
				first, firstSet = err, true
			}
			assert.Equal(t, first, err, "round %d: every Close returns the same", round)
			switch {
			case want != nil:
				assert.Equal(t, want, err, "round %d: Close returns Err", round)
			case err != nil:
				// Destroy(nil) won: ErrDestroyed; else the stream finished
				// before any Destroy and Close returns nil.
				assert.ErrorIs(t, err, stream.ErrDestroyed, "round %d: Close after Destroy(nil) won", round)
			}
		}
		for deadline := time.Now().Add(streamtest.Timeout); cbs.Load() != accepted.Load(); time.Sleep(time.Millisecond) {
			require.False(t, time.Now().After(deadline), "round %d: %d of %d callbacks", round, cbs.Load(), accepted.Load())
		}
		log := rec.Log()
		errEvents := 0
		for _, e := range log {
			if strings.HasPrefix(e, "error") {
				errEvents++
			}
		}
		assert.Equal(t, map[bool]int{false: 0, true: 1}[want != nil], errEvents, "round %d: error events: %q", round, log)
		assert.Equal(t, 1, rec.Count("close"), "round %d: close events", round)
	}
}

func TestMisuseEndInsideCallback(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})
	w.WriteChunk(chunk("a"), func(err error) {
		rec.Add("cb a " + streamtest.Label(err))
		w.End()
		w.End()
	})
	w.WriteChunk(chunk("b"), rec.Callback("b"))
	streamtest.WaitDone(t, w)
	assert.NoError(t, w.Close(), "Close")
	assert.Equal(t, []string{"cb a <nil>", "cb b <nil>", "finish", "close"}, rec.Log(), "events")
}

func TestMisuseWriteInsideOnClose(t *testing.T) {
	tests := []struct {
		desc    string
		finish  func(w *stream.Writable)
		wantErr error
	}{
		{desc: "after a clean end", finish: func(w *stream.Writable) { w.End() }, wantErr: stream.ErrWriteAfterEnd},
		{desc: "after Destroy(nil)", finish: func(w *stream.Writable) { w.Destroy(nil) }, wantErr: stream.ErrDestroyed},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink()
			w, rec := open(t, sink, stream.Options{})
			var writeErr error
			late := make(chan error, 1)
			w.OnClose(func() {
				_, writeErr = w.Write([]byte("late"))
				w.WriteChunk(chunk("late"), func(err error) { late <- err })
				w.End()
				w.Destroy(errors.New("too late"))
			})
			w.WriteChunk(chunk("a"), nil)
			tt.finish(w)
			streamtest.WaitDone(t, w)
			assert.ErrorIs(t, writeErr, tt.wantErr, "Write inside OnClose")
			assert.ErrorIs(t, streamtest.Recv(t, late, "the late WriteChunk's callback"), tt.wantErr, "WriteChunk inside OnClose")
			assert.NoError(t, w.Err(), "nothing inside OnClose changes the closed stream's error")
			assert.Equal(t, 1, rec.Count("close"), "close events")
		})
	}
}

func TestMisuseCallsInsideWriteFunc(t *testing.T) {
	var w *stream.Writable
	var got bytes.Buffer
	calls := 0
	w = stream.NewWritable(func(c []byte, done stream.Callback) {
		got.Write(c)
		calls++
		if calls == 1 {
			_ = w.State()
			w.Cork()
			w.WriteChunk(chunk("b"), nil) // buffered behind this call
			w.Uncork()
			w.WriteChunk(chunk("c"), nil)
			w.End()
		}
		done(nil)
	}, stream.Options{})
	w.WriteChunk(chunk("a"), nil)
	require.NoError(t, streamtest.Recv(t, closeAsync(w), "Close"), "Close")
	assert.Equal(t, "abc", got.String(), "bytes at the sink")

	var w2 *stream.Writable
	w2 = stream.NewWritable(func(c []byte, done stream.Callback) {
		w2.Destroy(errors.New("from the sink"))
		done(nil)
	}, stream.Options{})
	rec := streamtest.Record(w2)
	w2.WriteChunk(chunk("a"), rec.Callback("a"))
	w2.WriteChunk(chunk("b"), rec.Callback("b")) // late: the stream is destroyed
	streamtest.WaitDone(t, w2)
	rec.WaitFor(t, "cb b ErrDestroyed")
	// A late write's callback does not wait for the call in flight (d
	// "Errors"), so b's comes first.
	assert.Equal(t, []string{"cb b ErrDestroyed", "cb a <nil>", "error from the sink", "close"}, rec.Log(),
		"Destroy inside the WriteFunc: the call in flight keeps its result")
	assert.ErrorContains(t, rec.Err("b"), "from the sink", "the late write's error names the cause")
}

func TestMisuseBlockedWriteUnblocked(t *testing.T) {
	tests := []struct {
		desc    string
		unblock func(w *stream.Writable)
		wantErr error
	}{
		{desc: "Destroy(err)", unblock: func(w *stream.Writable) { w.Destroy(errors.New("boom")) }, wantErr: stream.ErrDestroyed},
		{desc: "Destroy(nil)", unblock: func(w *stream.Writable) { w.Destroy(nil) }, wantErr: stream.ErrDestroyed},
		// The rest of the blocked Write comes after End: a write after end,
		// which fails alone (rule 7).
		{desc: "Close", unblock: func(w *stream.Writable) { go w.Close() }, wantErr: stream.ErrWriteAfterEnd},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, _ := open(t, sink, stream.Options{HighWaterMark: 4096})
			type result struct {
				n   int
				err error
			}
			res := make(chan result, 1)
			go func() {
				n, err := w.Write(make([]byte, 3*4096))
				res <- result{n, err}
			}()
			sink.Next(t) // the first piece is in flight; the Write waits for drain
			for deadline := time.Now().Add(streamtest.Timeout); !w.State().NeedDrain; time.Sleep(time.Millisecond) {
				require.False(t, time.Now().After(deadline), "the Write never filled the buffer")
			}
			tt.unblock(w)
			r := streamtest.Recv(t, res, "the blocked Write to return")
			assert.ErrorIs(t, r.err, tt.wantErr, "Write's error")
			assert.Positive(t, r.n, "Write reports the bytes it accepted")
			assert.Less(t, r.n, 3*4096, "Write reports the bytes it accepted")
		})
	}
}

// crashChild runs the test named name in a child process, with
// STREAM_CRASH_CHILD set, and returns its output and whether it succeeded.
func crashChild(t *testing.T, name string) (string, bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), "STREAM_CRASH_CHILD=1")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func inCrashChild() bool { return os.Getenv("STREAM_CRASH_CHILD") == "1" }

// A handler delivered on a goroutine of the library that panics crashes
// the program: nobody can recover it (Node: an uncaught exception). The
// child process ends a stream, whose "finish" is delivered by a goroutine
// of the library, with a finish handler that panics.
func TestFaultPanicOnLibraryGoroutineCrashes(t *testing.T) {
	if inCrashChild() {
		w := stream.NewWritable(streamtest.NewSink().Write, stream.Options{})
		w.OnFinish(func() { panic("finish handler bug") })
		w.End()
		<-w.Done() // never: the program crashes first
		return
	}
	out, ok := crashChild(t, "TestFaultPanicOnLibraryGoroutineCrashes")
	assert.False(t, ok, "the child process must crash")
	assert.Contains(t, out, "panic: finish handler bug", "the child's output")
}

func TestMisuseNilHandlerPanics(t *testing.T) {
	w := stream.NewWritable(streamtest.NewSink().Write, stream.Options{})
	assert.PanicsWithValue(t, "stream: OnDrain: nil handler", func() { w.OnDrain(nil) }, "OnDrain(nil)")
	assert.PanicsWithValue(t, "stream: OnFinish: nil handler", func() { w.OnFinish(nil) }, "OnFinish(nil)")
	assert.PanicsWithValue(t, "stream: OnError: nil handler", func() { w.OnError(nil) }, "OnError(nil)")
	assert.PanicsWithValue(t, "stream: OnClose: nil handler", func() { w.OnClose(nil) }, "OnClose(nil)")
	assert.NoError(t, w.Close(), "the stream still works after the panics")
}
