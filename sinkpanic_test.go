package stream_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
)

// Issue 8, bug 4: a panicking sink function's value is in the stream's
// error, "stream: sink panicked (<call>): <value>", and the panic itself
// goes on up the goroutine that called the sink, where the test recovers
// it. On 03cb6e4 the error said "stream: sink panicked (write)", without
// the value.
//
// Final, Construct and the Destroy hook run on goroutines of the library,
// so a panic there cannot be recovered by anyone and ends the program:
// they are not tested here.

func panickingWrite(chunk []byte, done stream.Callback) { panic("boom") }

// requireSinkPanicked checks the stream's error after its sink panicked
// with "boom" in a call of the given kind: Err and Close report it, with
// the value.
func requireSinkPanicked(t *testing.T, w *stream.Writable, kind string) {
	t.Helper()
	want := "stream: sink panicked (" + kind + "): boom"
	assert.EqualError(t, w.Err(), want, "Err after the sink panicked")
	assert.EqualError(t, w.Close(), want, "Close after the sink panicked")
}

// A Write to an idle stream runs the sink inline (the fast path): the panic
// reaches the Write's caller.
func TestSinkPanicValueInErrorFastWrite(t *testing.T) {
	w := stream.NewWritable(panickingWrite, stream.Options{})
	assert.PanicsWithValue(t, "boom", func() { _, _ = w.Write([]byte("x")) }, "the sink's panic reaches the caller of Write")
	requireSinkPanicked(t, w, "write")
}

// The same through the locked path: WriteChunk with a callback, which gets
// the error too, and a Write too large for the fast path.
func TestSinkPanicValueInErrorLockedWrite(t *testing.T) {
	t.Run("WriteChunk with a callback", func(t *testing.T) {
		w := stream.NewWritable(panickingWrite, stream.Options{})
		got := make(chan error, 1)
		assert.PanicsWithValue(t, "boom", func() { w.WriteChunk([]byte("x"), func(err error) { got <- err }) },
			"the sink's panic reaches the caller of WriteChunk")
		assert.EqualError(t, recvWithin(t, got, "the write's callback"), "stream: sink panicked (write): boom", "the write's callback")
		requireSinkPanicked(t, w, "write")
	})
	t.Run("Write of 4000 bytes", func(t *testing.T) {
		w := stream.NewWritable(panickingWrite, stream.Options{})
		assert.PanicsWithValue(t, "boom", func() { _, _ = w.Write(make([]byte, 4000)) }, "the sink's panic reaches the caller of Write")
		requireSinkPanicked(t, w, "write")
	})
	t.Run("an error value", func(t *testing.T) {
		boom := errors.New("boom")
		w := stream.NewWritable(func([]byte, stream.Callback) { panic(boom) }, stream.Options{})
		assert.PanicsWithError(t, "boom", func() { w.WriteChunk([]byte("x"), nil) }, "the sink's panic reaches the caller of WriteChunk")
		requireSinkPanicked(t, w, "write")
	})
}

// A sink that completes asynchronously: its done makes the next sink call
// on the goroutine that called done, so that is where the panic goes on.
func TestSinkPanicValueInErrorAfterAsyncDone(t *testing.T) {
	held := make(chan stream.Callback, 1)
	calls := 0
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		calls++ // one sink call at a time
		if calls == 2 {
			panic("boom")
		}
		held <- done
	}, stream.Options{})
	w.WriteChunk([]byte("first"), nil)
	w.WriteChunk([]byte("second"), nil)
	done := recvWithin(t, held, "the first sink call")
	assert.PanicsWithValue(t, "boom", func() { done(nil) }, "the second call's panic reaches the goroutine that completed the first")
	requireSinkPanicked(t, w, "write")
}

// A panicking Writev: the call is made inside Uncork, whose caller gets the
// panic.
func TestSinkPanicValueInErrorWritev(t *testing.T) {
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) { done(nil) }, stream.Options{
		Writev: func([][]byte, stream.Callback) { panic("boom") },
	})
	w.Cork()
	w.WriteChunk([]byte("a"), nil)
	w.WriteChunk([]byte("b"), nil)
	require.Equal(t, 2, w.State().Buffered, "two chunks corked, for one Writev")
	assert.PanicsWithValue(t, "boom", w.Uncork, "the Writev's panic reaches the caller of Uncork")
	requireSinkPanicked(t, w, "writev")
}
