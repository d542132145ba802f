package stream_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// DESIGN rule 9: the handlers of one event run in registration order, and
// off() removes a handler before the event.
func TestHandlersOrderAndOff(t *testing.T) {
	w, rec := open(t, streamtest.NewSink(), stream.Options{})

	w.OnFinish(func() { rec.Add("finish 1") })
	off := w.OnFinish(func() { rec.Add("finish 2") })
	w.OnFinish(func() { rec.Add("finish 3") })
	offClose := w.OnClose(func() { rec.Add("close 2") })
	off()
	offClose()
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"finish", "finish 1", "finish 3", "close"}, rec.Log(), "events")
}

// Decisions "Delivery": a handler registered after its event fired is not
// called; Done is the way to wait for close.
func TestHandlerAfterEventNotCalled(t *testing.T) {
	w, rec := open(t, streamtest.NewSink(), stream.Options{})
	assert.NoError(t, w.Close(), "Close")
	w.OnClose(func() { rec.Add("late close handler") })
	w.OnFinish(func() { rec.Add("late finish handler") })
	// Callbacks and events run in FIFO order: once the late write's callback
	// ran, a handler called for the past events would have run too.
	w.WriteChunk(chunk("late"), rec.Callback("late"))
	rec.WaitFor(t, "cb late ErrWriteAfterEnd")

	assert.Equal(t, []string{"finish", "close", "cb late ErrWriteAfterEnd"}, rec.Log(), "events")
}

// DESIGN rule 9: a handler may call the stream's non-blocking methods: here
// a write callback destroys the stream, and the error handler reads State
// and Err.
func TestHandlersMayCallMethods(t *testing.T) {
	boom := errors.New("boom")
	w, rec := open(t, streamtest.NewSink(), stream.Options{})
	seen := make(chan stream.State, 1)
	w.OnError(func(err error) {
		st := w.State()
		assert.ErrorIs(t, w.Err(), err, "Err in the error handler")
		seen <- st
	})

	w.WriteChunk(chunk("a"), func(error) { w.Destroy(boom) })
	streamtest.WaitDone(t, w)

	st := streamtest.Recv(t, seen, "the error handler")
	assert.True(t, st.Destroyed, "Destroyed in the error handler")
	assert.ErrorIs(t, st.Err, boom, "State().Err in the error handler")
	assert.Equal(t, []string{"error boom", "close"}, rec.Log(), "events")
}
