package stream

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A panicking WriteFunc propagates to the caller, and the stream is
// destroyed rather than left with a write in flight forever.
func TestPanickingSinkDestroysTheStream(t *testing.T) {
	w := NewWritable(func(chunk []byte, done Callback) {
		panic("sink bug")
	}, Options{})
	got := make(chan error, 1)
	assert.PanicsWithValue(t, "sink bug", func() {
		w.WriteChunk([]byte("x"), func(err error) { got <- err })
	}, "the sink's panic reaches the caller of WriteChunk")
	select {
	case err := <-got:
		assert.ErrorIs(t, err, errSinkPanicked, "the write's callback")
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the callback of the write whose sink panicked")
	}
	assert.ErrorIs(t, w.Close(), errSinkPanicked, "Close after the panic")
	assert.EqualError(t, w.Err(), "stream: sink panicked (write): sink bug", "the error names the call and the panic's value")
}

// A panicking callback, once recovered by whoever called done, leaves the
// stream able to deliver the rest and close.
func TestPanickingCallbackStillLetsTheStreamClose(t *testing.T) {
	held := make(chan Callback, 2)
	w := NewWritable(func(chunk []byte, done Callback) { held <- done }, Options{})
	var second error = errors.New("not called")
	secondRan := make(chan struct{})
	w.WriteChunk([]byte("a"), func(error) { panic("callback bug") })
	w.WriteChunk([]byte("b"), func(err error) { second = err; close(secondRan) })
	done := <-held
	require.PanicsWithValue(t, "callback bug", func() { done(nil) },
		"the callback's panic reaches the sink's goroutine, which called done")
	(<-held)(nil)
	select {
	case <-secondRan:
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the second write's callback")
	}
	assert.NoError(t, second, "the second write's callback")
	assert.NoError(t, w.Close(), "Close after the recovered panic")
}
