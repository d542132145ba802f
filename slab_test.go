package stream

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A write given up by StallTimeout (or whose sink panicked) may still be
// held by the sink: its pooled copy must not be recycled into another
// Write. Found by the adapters work: a stalled chunk read another stream's
// bytes.
func TestAbandonedWriteKeepsItsSlab(t *testing.T) {
	first := make(chan Callback, 1)
	stalled := make(chan []byte, 1)
	calls := 0
	w := NewWritable(func(chunk []byte, done Callback) {
		calls++
		if calls == 1 {
			first <- done
			return
		}
		stalled <- chunk // never calls done
	}, Options{StallTimeout: 20 * time.Millisecond})
	w.WriteChunk([]byte("x"), nil)
	_, err := w.Write(bytes.Repeat([]byte{'a'}, 1000)) // copied into a pooled slab, buffered
	require.NoError(t, err, "Write behind the first chunk")
	(<-first)(nil) // the copy goes in flight and stalls
	chunk := <-stalled
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the stalled stream to close")
	}
	require.ErrorIs(t, w.Err(), ErrStalled, "the stream stalled")

	for range 100 { // drain the pool: none of these may be the stalled chunk's
		s := getSlab(pieceSize(DefaultHighWaterMark))
		for i := range s.buf {
			s.buf[i] = 'B'
		}
	}
	assert.Equal(t, byte('a'), chunk[0], "the stalled sink's chunk after the pool was reused")
}
