package stream_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// panicMessage calls newStream and returns what it panicked with; a stream
// it returned instead is destroyed.
func panicMessage(t *testing.T, newStream func() *stream.Writable) (msg string, panicked bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			msg, panicked = fmt.Sprint(r), true
		}
	}()
	w := newStream()
	w.Destroy(nil)
	streamtest.WaitDone(t, w)
	return "", false
}

// DESIGN "Bad input" and decisions "Misc" (spec A2, A7 as Go programmer
// errors): NewWritable panics on a nil WriteFunc or a negative
// HighWaterMark, with a message that starts with "stream: " and names the
// field.
func TestNewWritablePanics(t *testing.T) {
	tests := []struct {
		desc      string
		write     stream.WriteFunc
		opts      stream.Options
		wantField string
	}{
		{
			desc:      "nil WriteFunc",
			write:     nil,
			opts:      stream.Options{},
			wantField: "WriteFunc",
		},
		{
			desc:      "negative HighWaterMark",
			write:     streamtest.NewSink().Write,
			opts:      stream.Options{HighWaterMark: -1},
			wantField: "HighWaterMark",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			msg, panicked := panicMessage(t, func() *stream.Writable { return stream.NewWritable(tt.write, tt.opts) })

			require.True(t, panicked, "NewWritable panics")
			assert.Contains(t, msg, tt.wantField, "the panic message names the field")
			assert.Regexp(t, "^stream: ", msg, "the panic message starts with the package name")
		})
	}
}

// Spec A2, A3 and DESIGN "Options": HighWaterMark 0 means the default (16
// KiB); any positive value is kept.
func TestHighWaterMarkOption(t *testing.T) {
	tests := []struct {
		desc string
		give int
		want int
	}{
		{desc: "zero means the default", give: 0, want: stream.DefaultHighWaterMark},
		{desc: "one", give: 1, want: 1},
		{desc: "large", give: 1 << 40, want: 1 << 40},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w, _ := open(t, streamtest.NewSink(), stream.Options{HighWaterMark: tt.give})

			assert.Equal(t, tt.want, w.State().HighWaterMark, "State().HighWaterMark")
		})
	}
	assert.Equal(t, 16*1024, stream.DefaultHighWaterMark, "DefaultHighWaterMark")
}

// Spec M (experiment 12/A): a fresh stream's State, Err, Ready and Done.
func TestFreshStream(t *testing.T) {
	w, _ := open(t, streamtest.NewSink(), stream.Options{})

	assert.Equal(t, stream.State{HighWaterMark: stream.DefaultHighWaterMark}, w.State(), "State of a fresh stream")
	assert.NoError(t, w.Err(), "Err of a fresh stream")
	assert.True(t, isClosed(w.Ready()), "Ready of a fresh stream")
	assert.False(t, isClosed(w.Done()), "Done of a fresh stream")
}

// Spec F8, M and DESIGN "Details": Length counts buffered and in-flight
// bytes, Buffered the chunks waiting behind the one in flight,
// PendingCallbacks the accepted writes whose callback has not run (nil
// callbacks included).
func TestStateWhileWriting(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{HighWaterMark: 100})

	w.WriteChunk(chunk("aa"), rec.Callback("aa"))
	w.WriteChunk(chunk("bbb"), nil)
	w.WriteChunk(chunk("c"), rec.Callback("c"))
	assert.Equal(t, stream.State{
		Length:           6,
		HighWaterMark:    100,
		Buffered:         2,
		PendingCallbacks: 3,
		Writing:          true,
	}, w.State(), "State with aa in flight, bbb and c buffered")

	sink.Next(t).Done(nil)
	b := sink.Next(t)
	require.Equal(t, "write bbb", b.String(), "second sink call")
	st := w.State()
	assert.Equal(t, 4, st.Length, "Length with bbb in flight")
	assert.Equal(t, 1, st.Buffered, "Buffered with bbb in flight")
	assert.True(t, st.Writing, "Writing with bbb in flight")

	b.Done(nil)
	sink.Next(t).Done(nil)
	rec.WaitFor(t, "cb c <nil>")
	w.End()
	streamtest.WaitDone(t, w)
	st = w.State()
	assert.Equal(t, 0, st.Length, "Length after close")
	assert.Equal(t, 0, st.PendingCallbacks, "PendingCallbacks after close")
	assert.False(t, st.Writing, "Writing after close")
}

// Spec M (writableNeedDrain, experiment 12/G) and DESIGN "Details":
// NeedDrain reads false once the stream is ending or destroyed.
func TestNeedDrainFalseOnceEndingOrDestroyed(t *testing.T) {
	tests := []struct {
		desc string
		act  func(w *stream.Writable)
	}{
		{desc: "End", act: func(w *stream.Writable) { w.End() }},
		{desc: "Destroy", act: func(w *stream.Writable) { w.Destroy(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, _ := open(t, sink, stream.Options{HighWaterMark: 1})

			require.False(t, w.WriteChunk(chunk("a"), nil), "WriteChunk reaching the high-water mark")
			require.True(t, w.State().NeedDrain, "NeedDrain before %s", tt.desc)
			tt.act(w)

			assert.False(t, w.State().NeedDrain, "NeedDrain after %s", tt.desc)
		})
	}
}

// Spec M (destroyed, closed, errored) and DESIGN "Details": after a Destroy,
// Destroyed turns true at once, Closed once the stream closed; State().Err
// is Err(), nil after Destroy(nil).
func TestStateAfterDestroy(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc string
		err  error
	}{
		{desc: "Destroy(nil)", err: nil},
		{desc: "Destroy(err)", err: boom},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w, _ := open(t, streamtest.NewSink(), stream.Options{})

			w.Destroy(tt.err)
			assert.True(t, w.State().Destroyed, "Destroyed when Destroy returned")
			streamtest.WaitDone(t, w)

			st := w.State()
			assert.True(t, st.Destroyed, "Destroyed after close")
			assert.True(t, st.Closed, "Closed after close")
			assert.False(t, st.Finished, "Finished after a Destroy")
			assert.ErrorIs(t, st.Err, tt.err, "State().Err")
			assert.ErrorIs(t, w.Err(), tt.err, "Err")
		})
	}
}
