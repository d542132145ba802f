package stream_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// Spec D1-D3 (experiment 01/A): "drain" fires once Length falls to 0, not
// when it merely drops below the high-water mark, and before the callback
// of the write that emptied the buffer.
func TestDrainWhenBufferEmpties(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{HighWaterMark: 4})

	w.WriteChunk(chunk("aa"), rec.Callback("aa"))
	w.WriteChunk(chunk("bb"), rec.Callback("bb"))
	w.WriteChunk(chunk("cc"), rec.Callback("cc"))
	for _, want := range []string{"write aa", "write bb", "write cc"} {
		c := sink.Next(t)
		require.Equal(t, want, c.String(), "next sink call")
		c.Done(nil)
	}
	// A drain not yet delivered when End is called is dropped: wait first.
	rec.WaitFor(t, "cb cc <nil>")
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb aa <nil>", "cb bb <nil>", "drain", "cb cc <nil>", "finish", "close"}, rec.Log(), "events")
}

// Spec D2 (experiments 01/F, 01/H): no "drain" unless WriteChunk returned
// false, and one "drain" per episode.
func TestDrainOncePerEpisode(t *testing.T) {
	tests := []struct {
		desc    string
		hwm     int
		chunks  []string
		wantLog []string
	}{
		{
			desc:    "never false: no drain",
			hwm:     16,
			chunks:  []string{"a", "b"},
			wantLog: []string{"cb a <nil>", "cb b <nil>", "finish", "close"},
		},
		{
			desc:    "false once: one drain",
			hwm:     2,
			chunks:  []string{"a", "b", "c"},
			wantLog: []string{"cb a <nil>", "cb b <nil>", "drain", "cb c <nil>", "finish", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, rec := open(t, sink, stream.Options{HighWaterMark: tt.hwm})

			for _, c := range tt.chunks {
				w.WriteChunk(chunk(c), rec.Callback(c))
			}
			for range tt.chunks {
				sink.Next(t).Done(nil)
			}
			rec.WaitFor(t, "cb "+tt.chunks[len(tt.chunks)-1]+" <nil>") // before End, which drops a pending drain
			w.End()
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantLog, rec.Log(), "events")
		})
	}
}

// test-stream2-writable "write backpressure" (priority case 1): a producer
// that writes until WriteChunk returns false and then waits for "drain"
// sees exactly 17 drains for chunks of 0..49 bytes with HighWaterMark 50,
// and Length >= HighWaterMark whenever WriteChunk returned false.
func TestDrainBackpressureLoop(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{HighWaterMark: 50})
	drained := make(chan struct{}, 1)
	w.OnDrain(func() { drained <- struct{}{} })

	var want strings.Builder
	inFlight := 0 // sink calls of this episode not completed yet
	for i := range 50 {
		c := strings.Repeat("x", i)
		want.WriteString(c)
		ok := w.WriteChunk(chunk(c), nil)
		inFlight++
		if ok || i == 49 {
			continue
		}
		require.GreaterOrEqual(t, w.State().Length, 50, "Length when WriteChunk returned false (chunk %d)", i)
		for ; inFlight > 0; inFlight-- {
			sink.Next(t).Done(nil)
		}
		streamtest.Recv(t, drained, fmt.Sprintf("drain after chunk %d", i))
	}
	w.End()
	for ; inFlight > 0; inFlight-- {
		sink.Next(t).Done(nil)
	}
	streamtest.WaitDone(t, w)

	assert.Equal(t, 17, rec.Count("drain"), "drains")
	assert.Equal(t, want.String(), sink.Data(), "bytes reach the sink in order")
	assert.NoError(t, w.Err(), "Err after a clean end")
}

// Spec D3, D6 (experiment 01/L): when a corked flush completes synchronously
// inside Uncork, "drain" comes before the first of its callbacks.
func TestDrainBeforeCallbacksOfSyncFlush(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{HighWaterMark: 3})

	w.Cork()
	assert.True(t, w.WriteChunk(chunk("a"), rec.Callback("a")), "WriteChunk a, below the high-water mark")
	assert.False(t, w.WriteChunk(chunk("bb"), rec.Callback("bb")), "WriteChunk bb, reaching the high-water mark")
	w.Uncork()
	rec.WaitFor(t, "cb bb <nil>") // before End, which drops a pending drain
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"drain", "cb a <nil>", "cb bb <nil>", "finish", "close"}, rec.Log(), "events")
}

// Spec D4 (test-stream-write-drain, priority case 11) and D5 (experiment
// 06/R): no "drain" once End or Destroy was called, even though NeedDrain
// was set when the in-flight write completes.
func TestNoDrainAfterEndOrDestroy(t *testing.T) {
	tests := []struct {
		desc    string
		act     func(w *stream.Writable)
		wantLog []string
	}{
		{
			desc:    "End",
			act:     func(w *stream.Writable) { w.End() },
			wantLog: []string{"cb asd <nil>", "finish", "close"},
		},
		{
			desc:    "Destroy",
			act:     func(w *stream.Writable) { w.Destroy(nil) },
			wantLog: []string{"cb asd <nil>", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, rec := open(t, sink, stream.Options{HighWaterMark: 1})

			require.False(t, w.WriteChunk(chunk("asd"), rec.Callback("asd")), "WriteChunk above the high-water mark")
			require.True(t, w.State().NeedDrain, "NeedDrain before %s", tt.desc)
			tt.act(w)
			assert.False(t, w.State().NeedDrain, "NeedDrain reads false after %s", tt.desc)
			sink.Next(t).Done(nil)
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantLog, rec.Log(), "events")
		})
	}
}

// Spec D7 (experiment 16/E): a "drain" handler may write, starting a new
// episode with its own "drain".
func TestWriteFromDrainHandler(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{HighWaterMark: 1})
	var drains atomic.Int32
	wrote := make(chan bool, 2) // WriteChunk results in the handler
	third := make(chan struct{})
	w.OnDrain(func() {
		n := drains.Add(1)
		if n == 3 {
			close(third)
			return
		}
		wrote <- w.WriteChunk(chunk(fmt.Sprint(n)), nil)
	})

	require.False(t, w.WriteChunk(chunk("0"), nil), "first WriteChunk")
	for i, want := range []string{"write 0", "write 1", "write 2"} {
		if i > 0 {
			// Complete the write only once WriteChunk returned: completed
			// earlier, WriteChunk would rightly return true.
			assert.False(t, streamtest.Recv(t, wrote, "the drain handler's WriteChunk"), "WriteChunk %d from the drain handler", i)
		}
		c := sink.Next(t)
		require.Equal(t, want, c.String(), "next sink call")
		c.Done(nil)
	}
	streamtest.Recv(t, third, "the third drain")
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, 3, rec.Count("drain"), "one drain per episode")
}

// Spec C5, D3 (test-stream-writable-needdrain-state, priority case 12):
// NeedDrain turns true when WriteChunk returns false, not inside the sink
// call that overflowed; it is false again by the time the write's callback
// runs, "drain" having fired first.
func TestNeedDrainState(t *testing.T) {
	var (
		w          *stream.Writable
		inSink     atomic.Bool
		inCallback atomic.Bool
	)
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	sink.OnCall(func(*streamtest.Call) { inSink.Store(w.State().NeedDrain) })
	w, rec := open(t, sink, stream.Options{HighWaterMark: 1})

	require.False(t, w.WriteChunk(chunk("asdasd"), func(err error) {
		inCallback.Store(w.State().NeedDrain)
		rec.Add("cb " + streamtest.Label(err))
	}), "WriteChunk above the high-water mark")
	assert.False(t, inSink.Load(), "NeedDrain inside the sink call of the overflowing chunk")
	assert.True(t, w.State().NeedDrain, "NeedDrain after WriteChunk returned false")
	c := sink.Next(t)
	assert.True(t, w.State().NeedDrain, "NeedDrain while the write is in flight")
	c.Done(nil)
	rec.WaitFor(t, "cb <nil>")

	assert.False(t, inCallback.Load(), "NeedDrain inside the write callback")
	assert.Equal(t, []string{"drain", "cb <nil>"}, rec.Log(), "drain before the callback")
}

// isClosed reports whether ch is closed now.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// DESIGN: Ready() is closed now if no drain is needed.
func TestReadyClosedWhenNoDrainNeeded(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, _ := open(t, sink, stream.Options{HighWaterMark: 2})

	assert.True(t, isClosed(w.Ready()), "Ready of a fresh stream")
	require.True(t, w.WriteChunk(chunk("a"), nil), "WriteChunk below the high-water mark")
	assert.True(t, isClosed(w.Ready()), "Ready after WriteChunk returned true")
	require.False(t, w.WriteChunk(chunk("b"), nil), "WriteChunk reaching the high-water mark")
	assert.False(t, isClosed(w.Ready()), "Ready after WriteChunk returned false")
}

// DESIGN "Details": Ready never strands a waiter: its channel is also closed
// when the stream ends, errors or is destroyed.
func TestReadyReleasedWithoutDrain(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc string
		act  func(t *testing.T, w *stream.Writable, sink *streamtest.Sink)
	}{
		{
			desc: "End",
			act:  func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) { w.End() },
		},
		{
			desc: "Destroy(nil)",
			act:  func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) { w.Destroy(nil) },
		},
		{
			desc: "Destroy(err)",
			act:  func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) { w.Destroy(boom) },
		},
		{
			desc: "sink error",
			act:  func(t *testing.T, _ *stream.Writable, sink *streamtest.Sink) { sink.Next(t).Done(boom) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, _ := open(t, sink, stream.Options{HighWaterMark: 1})
			require.False(t, w.WriteChunk(chunk("a"), nil), "WriteChunk reaching the high-water mark")
			ready := w.Ready()

			tt.act(t, w, sink)

			streamtest.Recv(t, ready, "Ready to close after "+tt.desc)
		})
	}
}

// DESIGN rule 3: Ready is level-triggered. Every goroutine that took the
// channel while a drain was needed is woken by the drain, and a goroutine
// that asks after it gets a closed channel.
func TestReadyWakesEveryWaiter(t *testing.T) {
	const waiters = 32
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, _ := open(t, sink, stream.Options{HighWaterMark: 1})
	require.False(t, w.WriteChunk(chunk("a"), nil), "WriteChunk reaching the high-water mark")

	waiting := make(chan struct{}, waiters)
	woken := make(chan bool, waiters)
	for range waiters {
		go func() {
			ready := w.Ready()
			waiting <- struct{}{}
			select {
			case <-ready:
				woken <- true
			case <-time.After(streamtest.Timeout):
				woken <- false
			}
		}()
	}
	for range waiters {
		streamtest.Recv(t, waiting, "a waiter to take the Ready channel")
	}
	assert.False(t, isClosed(w.Ready()), "Ready before the drain")

	sink.Next(t).Done(nil)

	for i := range waiters {
		assert.True(t, streamtest.Recv(t, woken, "a waiter's result"), "waiter %d woken by the drain", i)
	}
	assert.True(t, isClosed(w.Ready()), "Ready after the drain")
}
