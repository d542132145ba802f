package stream_test

// Tests of the lock-free fast path (fast.go): a WriteChunk without callback,
// or a small Write, to an idle stream claims the sink without the lock. Each
// test makes the locked path meet a fast write in flight, where it must
// adopt it: nothing lost, nothing reordered, State exact.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFastWriteStateWhilePending(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, _ := open(t, sink, stream.Options{HighWaterMark: 8})

	assert.True(t, w.WriteChunk(chunk("abc"), nil), "a 3-byte write under an 8-byte mark")
	a := sink.Next(t)
	s := w.State()
	assert.Equal(t, 3, s.Length, "Length counts the pending write")
	assert.Equal(t, 1, s.PendingCallbacks, "PendingCallbacks counts it")
	assert.True(t, s.Writing, "Writing while it is pending")
	assert.Equal(t, 0, s.Buffered, "nothing buffered")

	a.Done(nil)
	s = w.State()
	assert.Equal(t, 0, s.Length, "Length after done")
	assert.Equal(t, 0, s.PendingCallbacks, "PendingCallbacks after done")
	assert.False(t, s.Writing, "Writing after done")
}

// A write that reaches the high-water mark while pending returns false and
// is followed by "drain", like any other.
func TestFastWriteAtHighWaterMark(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{HighWaterMark: 4})

	assert.False(t, w.WriteChunk(chunk("abcd"), nil), "a 4-byte write at a 4-byte mark, pending")
	assert.True(t, w.State().NeedDrain, "NeedDrain after the false return")
	ready := w.Ready()
	sink.Next(t).Done(nil)
	streamtest.Recv(t, ready, "Ready after the write completed")
	rec.WaitFor(t, "drain")
	assert.True(t, w.WriteChunk(chunk("e"), nil), "a write after the drain")
}

// Writes from the locked path queue behind a pending fast write and reach
// the sink after it, in order, and the callback-less writes count as done.
func TestLockedWritesQueueBehindFastWrite(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), nil) // fast
	a := sink.Next(t)
	w.WriteChunk(chunk("b"), rec.Callback("b")) // locked: adopts "a"
	w.WriteChunk(chunk("c"), nil)
	s := w.State()
	assert.Equal(t, 3, s.Length, "Length: a in flight, b and c buffered")
	assert.Equal(t, 2, s.Buffered, "Buffered: b and c")
	assert.Equal(t, 3, s.PendingCallbacks, "PendingCallbacks: a, b, c")

	a.Done(nil)
	sink.Next(t).Done(nil)
	sink.Next(t).Done(nil)
	rec.WaitFor(t, "cb b <nil>")
	assert.Equal(t, []string{"write a", "write b", "write c"}, sink.Log(), "sink calls")
	assert.Equal(t, 0, w.State().PendingCallbacks, "PendingCallbacks at the end")
	require.NoError(t, w.Close(), "Close")
}

// End while a fast write is pending: "finish" waits for it.
func TestEndWaitsForFastWrite(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{Final: sink.Final})

	w.WriteChunk(chunk("a"), nil)
	a := sink.Next(t)
	closed := closeAsync(w)
	assert.Equal(t, 1, w.State().Length, "Length after End, the write still pending")
	assert.Equal(t, 1, sink.Count(streamtest.Write), "no Final while the write is pending")

	a.Done(nil)
	require.NoError(t, streamtest.Recv(t, closed, "Close after the write completed"), "Close")
	assert.Equal(t, []string{"write a", "final"}, sink.Log(), "sink calls")
	assert.Equal(t, []string{"finish", "close"}, rec.Log(), "events")
}

// Destroy while a fast write is pending: the hook waits for it, and an
// error it then reports becomes the stream's.
func TestDestroyWaitsForFastWrite(t *testing.T) {
	boom := errors.New("boom")
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{Destroy: sink.Destroy})

	w.WriteChunk(chunk("a"), nil)
	a := sink.Next(t)
	w.Destroy(nil)
	assert.Equal(t, []string{"write a"}, sink.Log(), "no hook while the write is pending")

	a.Done(boom)
	streamtest.WaitDone(t, w)
	assert.Equal(t, []string{"write a", "destroy boom"}, sink.Log(), "sink calls")
	assert.Equal(t, []string{"error boom", "close"}, rec.Log(), "events")
	assert.ErrorIs(t, w.Close(), boom, "Close")
}

// A sink that writes and ends the stream from inside a fast write, then
// completes it: the inner write is queued, then flushed after it.
func TestReentrantCallsInsideFastWrite(t *testing.T) {
	sink := streamtest.NewSink()
	var w *stream.Writable
	first := true
	sink.OnCall(func(c *streamtest.Call) {
		if first {
			first = false
			w.WriteChunk(chunk("inner"), nil)
			w.End()
		}
	})
	w, rec := open(t, sink, stream.Options{})
	w.WriteChunk(chunk("outer"), nil)
	streamtest.WaitDone(t, w)
	assert.Equal(t, []string{"write outer", "write inner"}, sink.Log(), "sink calls")
	assert.Equal(t, []string{"finish", "close"}, rec.Log(), "events")
	assert.Equal(t, 1, sink.MaxDepth(), "sink calls never nest")
}

func TestFastWriteErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc string
		mode streamtest.Mode
	}{
		{"sync", streamtest.Sync},
		{"async", streamtest.Async},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(tt.mode, streamtest.Write).FailCall(streamtest.Write, 2, boom)
			w, rec := open(t, sink, stream.Options{})
			w.WriteChunk(chunk("a"), nil)
			w.WriteChunk(chunk("b"), nil)
			streamtest.WaitDone(t, w)
			assert.ErrorIs(t, w.Err(), boom, "Err")
			assert.Equal(t, []string{"error boom", "close"}, rec.Log(), "events")
			_, err := w.Write([]byte("late"))
			assert.ErrorIs(t, err, boom, "a later Write")
		})
	}
}

func TestFastWriteDoneTwice(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), nil)
	a := sink.Next(t)
	a.Done(nil)
	w.WriteChunk(chunk("b"), nil)
	b := sink.Next(t)
	a.Done(nil) // stale: "b" is the write in flight
	assert.True(t, w.State().Destroyed, "destroyed by the stale done")
	b.Done(nil)
	streamtest.WaitDone(t, w)
	assert.ErrorIs(t, w.Err(), stream.ErrMultipleCallback, "Err")
	assert.Equal(t, []string{"error ErrMultipleCallback", "close"}, rec.Log(), "events")
}

func TestFastWriteSinkPanics(t *testing.T) {
	w := stream.NewWritable(func([]byte, stream.Callback) { panic("sink bug") }, stream.Options{})
	assert.PanicsWithValue(t, "sink bug", func() { w.WriteChunk(chunk("a"), nil) }, "WriteChunk")
	streamtest.WaitDone(t, w)
	assert.Error(t, w.Err(), "Err after the sink panicked")
	assert.Error(t, w.Close(), "Close after the sink panicked")
}

// Many producers, callback-less writes, a sink completing on other
// goroutines or at once: each producer's chunks arrive once, in its order.
func TestFastPathManyProducers(t *testing.T) {
	for _, mode := range []streamtest.Mode{streamtest.Sync, streamtest.Async} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			const producers, writes = 8, 2000
			var mu sync.Mutex
			next := make([]int, producers)
			var bad []string
			w := stream.NewWritable(func(c []byte, done stream.Callback) {
				// Write may merge records: each is "producer:seq;".
				mu.Lock()
				for _, rec := range strings.Split(strings.TrimSuffix(string(c), ";"), ";") {
					var p, i int
					fmt.Sscanf(rec, "%d:%d", &p, &i)
					if next[p] != i {
						bad = append(bad, rec)
					}
					next[p] = i + 1
				}
				mu.Unlock()
				if mode == streamtest.Async {
					go done(nil)
				} else {
					done(nil)
				}
			}, stream.Options{HighWaterMark: 64})
			var wg sync.WaitGroup
			for p := range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range writes {
						c := fmt.Appendf(nil, "%d:%d;", p, i)
						if p%2 == 0 {
							if !w.WriteChunk(c, nil) {
								<-w.Ready()
							}
						} else {
							w.Write(c)
						}
					}
				}()
			}
			wg.Wait()
			require.NoError(t, w.Close(), "Close")
			assert.Empty(t, bad, "chunks out of order")
			for p := range producers {
				assert.Equal(t, writes, next[p], "chunks of producer %d", p)
			}
		})
	}
}
