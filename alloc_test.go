package stream

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func syncSink(chunk []byte, done Callback) { done(nil) }

// The hot path of a synchronous sink must not allocate: no closure, queue
// entry or goroutine per write (see the performance notes).
func TestWriteChunkToSyncSinkAllocatesNothing(t *testing.T) {
	w := NewWritable(syncSink, Options{})
	chunk := make([]byte, 16)
	for range 100 { // grow the ring and the batch to their working size
		w.WriteChunk(chunk, nil)
	}
	allocs := testing.AllocsPerRun(10000, func() {
		w.WriteChunk(chunk, nil)
	})
	assert.Zero(t, allocs, "allocations per WriteChunk(16 B, nil) to a synchronous sink")
	require.NoError(t, w.Close(), "Close after the writes")
}

func TestWriteToSyncSinkAllocatesNothing(t *testing.T) {
	w := NewWritable(syncSink, Options{})
	p := make([]byte, 16)
	for range 100 {
		w.Write(p)
	}
	allocs := testing.AllocsPerRun(10000, func() {
		w.Write(p)
	})
	assert.Zero(t, allocs, "allocations per Write(16 B) to a synchronous sink (pooled copies)")
	require.NoError(t, w.Close(), "Close after the writes")
}

// A million corked chunks flush through a synchronous sink at the same
// stack depth: the flush is a loop, not a recursion through done.
func TestSyncFlushRunsInConstantStack(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 50_000
	}
	var first, last, calls int
	pcs := make([]uintptr, 512)
	w := NewWritable(func(chunk []byte, done Callback) {
		depth := runtime.Callers(0, pcs)
		if calls == 0 {
			first = depth
		}
		last = depth
		calls++
		done(nil)
	}, Options{HighWaterMark: 1 << 30})
	w.Cork()
	chunk := []byte("x")
	for range n {
		w.WriteChunk(chunk, nil)
	}
	w.Uncork()
	require.Equal(t, n, calls, "every buffered chunk reached the sink in Uncork")
	assert.Equal(t, first, last, "stack depth of the first and of the last sink call")
	require.NoError(t, w.Close(), "Close after the flush")
}

// An idle stream holds no copy buffer of the size of its pieces: a server
// may keep thousands of them open. Write's fast path keeps a small one
// (fastWriteMax); larger Writes copy into pooled slabs.
func TestIdleStreamsAfterWriteStaySmall(t *testing.T) {
	const streams = 2000
	ws := make([]*Writable, streams)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	small, large := make([]byte, 16), make([]byte, 8<<10)
	for i := range ws {
		ws[i] = NewWritable(syncSink, Options{})
		_, err := ws[i].Write(small)
		require.NoError(t, err, "Write 16 B")
		_, err = ws[i].Write(large)
		require.NoError(t, err, "Write 8 KiB")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perStream := int64(after.HeapAlloc-before.HeapAlloc) / streams
	t.Logf("heap per idle stream after two Writes: %d bytes", perStream)
	assert.Less(t, perStream, int64(8<<10), "heap per idle stream (a piece is 16 KiB)")
	for _, w := range ws {
		require.NoError(t, w.Close(), "Close")
	}
}
