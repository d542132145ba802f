package stream_test

import (
	"errors"
	"fmt"
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

// Spec C3, C4: the return value is computed after the sink call, and the
// comparison with the high-water mark is strict.
func TestWriteChunkReturnValue(t *testing.T) {
	tests := []struct {
		desc   string
		hwm    int
		mode   streamtest.Mode
		chunks []string
		want   []bool
	}{
		{
			desc:   "below the high-water mark",
			hwm:    4,
			mode:   streamtest.Hold,
			chunks: []string{"aa"},
			want:   []bool{true},
		},
		{
			desc:   "reaching the high-water mark returns false",
			hwm:    4,
			mode:   streamtest.Hold,
			chunks: []string{"aa", "bb", "cc"},
			want:   []bool{true, false, false},
		},
		{
			desc:   "one byte reaches a high-water mark of 1",
			hwm:    1,
			mode:   streamtest.Hold,
			chunks: []string{"a"},
			want:   []bool{false},
		},
		{
			desc:   "a chunk larger than the high-water mark, in flight",
			hwm:    2,
			mode:   streamtest.Hold,
			chunks: []string{"abcdef"},
			want:   []bool{false},
		},
		{
			desc:   "a chunk larger than the high-water mark, completed synchronously",
			hwm:    2,
			mode:   streamtest.Sync,
			chunks: []string{"abcdef"},
			want:   []bool{true},
		},
		{
			desc:   "high-water mark 1, completed synchronously",
			hwm:    1,
			mode:   streamtest.Sync,
			chunks: []string{"a", "b"},
			want:   []bool{true, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(tt.mode, streamtest.Write)
			w, _ := open(t, sink, stream.Options{HighWaterMark: tt.hwm})

			var got []bool
			for _, c := range tt.chunks {
				got = append(got, w.WriteChunk(chunk(c), nil))
			}

			assert.Equal(t, tt.want, got, "WriteChunk results for %q with HighWaterMark %d", tt.chunks, tt.hwm)
			assert.Equal(t, !tt.want[len(tt.want)-1], w.State().NeedDrain, "NeedDrain after the last WriteChunk")
		})
	}
}

// Spec C2 and DESIGN rule 1: with nothing in flight, WriteChunk hands the
// chunk to the sink before it returns.
func TestWriteChunkCallsSinkWhenIdle(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, _ := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), nil)

	assert.Equal(t, []string{"write a"}, sink.Log(), "sink calls when WriteChunk returned")
	assert.Equal(t, 1, sink.Held(), "held sink calls when WriteChunk returned")
}

// Spec E1 and DESIGN rule 2: one sink call at a time, chunks in order.
func TestOneWriteInFlight(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	for _, c := range []string{"a", "b", "c"} {
		w.WriteChunk(chunk(c), rec.Callback(c))
	}
	require.Equal(t, []string{"write a"}, sink.Log(), "sink calls while a is in flight")
	st := w.State()
	assert.True(t, st.Writing, "Writing while a is in flight")
	assert.Equal(t, 2, st.Buffered, "Buffered (b and c) while a is in flight")
	assert.Equal(t, 3, st.Length, "Length counts in-flight and buffered bytes")

	for _, want := range []string{"write a", "write b", "write c"} {
		c := sink.Next(t)
		require.Equal(t, want, c.String(), "next sink call")
		c.Done(nil)
	}
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"write a", "write b", "write c"}, sink.Log(), "sink calls")
	assert.Equal(t, []string{"cb a <nil>", "cb b <nil>", "cb c <nil>", "finish", "close"}, rec.Log(), "events")
	assert.Equal(t, 1, sink.MaxDepth(), "sink calls never nest")
}

// test-stream2-writable "write fast/slow": chunks written with backpressure
// into a sink that completes on other goroutines arrive in order, and their
// callbacks run in order before "finish" (priority case 2).
func TestChunksArriveInOrder(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Write)
	w, rec := open(t, sink, stream.Options{HighWaterMark: 100})

	var wantChunks, wantLog []string
	for i := range 50 {
		c := strings.Repeat(string(rune('a'+i%26)), i+1)
		wantChunks = append(wantChunks, "write "+c)
		wantLog = append(wantLog, fmt.Sprintf("cb %d <nil>", i))
		if !w.WriteChunk(chunk(c), rec.Callback(fmt.Sprint(i))) {
			streamtest.Recv(t, w.Ready(), "Ready after WriteChunk returned false")
		}
	}
	w.End()
	streamtest.WaitDone(t, w)

	var log []string // without the drains, whose number depends on timing
	for _, e := range rec.Log() {
		if e != "drain" {
			log = append(log, e)
		}
	}
	assert.Equal(t, wantChunks, sink.Log(), "sink calls in write order")
	assert.Equal(t, append(wantLog, "finish", "close"), log, "callbacks in order, then finish and close")
}

// DESIGN rule 2 and spec C1: an empty chunk (nil included) still reaches the
// sink and its callback runs; an empty last chunk does not stop "finish".
func TestEmptyChunkReachesSink(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{})

	assert.True(t, w.WriteChunk([]byte{}, rec.Callback("empty")), "WriteChunk of an empty chunk")
	assert.True(t, w.WriteChunk(nil, rec.Callback("nil")), "WriteChunk of a nil chunk")
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"write ", "write "}, sink.Log(), "empty chunks reach the sink")
	assert.Equal(t, []string{"cb empty <nil>", "cb nil <nil>", "finish", "close"}, rec.Log(), "events")
}

// DESIGN "Details": a nil callback is allowed and still counts in
// PendingCallbacks until its write completes.
func TestNilCallback(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), nil)
	w.WriteChunk(chunk("b"), rec.Callback("b"))
	assert.Equal(t, 2, w.State().PendingCallbacks, "PendingCallbacks counts the write with a nil callback")

	sink.Next(t).Done(nil)
	sink.Next(t).Done(nil)
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb b <nil>", "finish", "close"}, rec.Log(), "events")
	assert.Equal(t, 0, w.State().PendingCallbacks, "PendingCallbacks after close")
}

// probe is a handler that detects being run inside the call that caused it:
// it waits until the test closes returned, which the test does once that
// call has returned. Run inside the call, it would wait in vain.
type probe struct {
	returned chan struct{}
	ran      chan struct{}
	once     sync.Once
	inside   atomic.Bool
}

func newProbe() *probe {
	return &probe{returned: make(chan struct{}), ran: make(chan struct{})}
}

func (p *probe) run() {
	select {
	case <-p.returned:
	case <-time.After(streamtest.Timeout):
		p.inside.Store(true)
	}
	p.once.Do(func() { close(p.ran) })
}

func (p *probe) cb(error) { p.run() }

// DESIGN rule 9 and spec E3: callbacks and events never run inside the
// WriteChunk/Uncork/End/Destroy call that caused them.
func TestDeliveryNeverInsideCall(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc string
		hwm  int
		// run registers p and makes the call that causes it to run.
		run func(w *stream.Writable, sink *streamtest.Sink, p *probe)
	}{
		{
			desc: "callback of a write completed synchronously, in WriteChunk",
			run: func(w *stream.Writable, _ *streamtest.Sink, p *probe) {
				w.WriteChunk(chunk("a"), p.cb)
			},
		},
		{
			desc: "callback of a corked write, in Uncork",
			run: func(w *stream.Writable, _ *streamtest.Sink, p *probe) {
				w.Cork()
				w.WriteChunk(chunk("a"), p.cb)
				w.Uncork()
			},
		},
		{
			desc: "drain, in Uncork",
			hwm:  1,
			run: func(w *stream.Writable, _ *streamtest.Sink, p *probe) {
				w.OnDrain(p.run)
				w.Cork()
				w.WriteChunk(chunk("a"), nil)
				w.Uncork()
			},
		},
		{
			desc: "finish, in End",
			run: func(w *stream.Writable, _ *streamtest.Sink, p *probe) {
				w.OnFinish(p.run)
				w.End()
			},
		},
		{
			desc: "close, in Destroy",
			run: func(w *stream.Writable, _ *streamtest.Sink, p *probe) {
				w.OnClose(p.run)
				w.Destroy(nil)
			},
		},
		{
			desc: "error, in Destroy",
			run: func(w *stream.Writable, _ *streamtest.Sink, p *probe) {
				w.OnError(func(error) { p.run() })
				w.Destroy(boom)
			},
		},
		{
			desc: "error of a synchronous sink failure, in WriteChunk",
			run: func(w *stream.Writable, sink *streamtest.Sink, p *probe) {
				sink.FailCall(streamtest.Write, 1, boom)
				w.OnError(func(error) { p.run() })
				w.WriteChunk(chunk("a"), nil)
			},
		},
		{
			desc: "callback of a write after Destroy, in WriteChunk",
			run: func(w *stream.Writable, _ *streamtest.Sink, p *probe) {
				w.Destroy(nil)
				w.WriteChunk(chunk("a"), p.cb)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink()
			w, _ := open(t, sink, stream.Options{HighWaterMark: tt.hwm})
			p := newProbe()

			tt.run(w, sink, p)
			close(p.returned)

			streamtest.Recv(t, p.ran, "the handler to run")
			assert.False(t, p.inside.Load(), "the handler ran inside the call that caused it")
		})
	}
}

// Spec E9 and DESIGN rule 10: a WriteChunk from inside the sink is buffered
// and dispatched after the outer call completes, without nesting sink calls.
func TestWriteChunkFromSink(t *testing.T) {
	var (
		w        *stream.Writable
		innerOK  bool
		innerBuf int
	)
	sink := streamtest.NewSink()
	sink.OnCall(func(c *streamtest.Call) {
		if c.String() == "write a" {
			innerOK = w.WriteChunk(chunk("b"), nil)
			innerBuf = w.State().Buffered
		}
	})
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.End()
	streamtest.WaitDone(t, w)

	assert.True(t, innerOK, "WriteChunk from inside the sink returns true below the high-water mark")
	assert.Equal(t, 1, innerBuf, "the inner chunk is buffered while the outer write is in flight")
	assert.Equal(t, []string{"write a", "write b"}, sink.Log(), "sink calls")
	assert.Equal(t, 1, sink.MaxDepth(), "the inner chunk is not written from inside the outer sink call")
	assert.NoError(t, rec.Err("a"), "callback of a")
	assert.NoError(t, w.Err(), "Err after a clean end")
}
