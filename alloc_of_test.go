package stream

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// record is a small struct of the object-mode tests.
type record struct {
	ID  int64
	TS  int64
	Val float64
}

// newAckedRecords returns a WritableOf[record] with a synchronous Writev
// sink, batches of up to maxBatch and an OnWritten that counts the
// successes into *acked.
func newAckedRecords(maxBatch int, acked *int) *WritableOf[record] {
	return NewWritableOf(nil, OptionsOf[record]{
		Writev:        func(items []record, done Callback) { done(nil) },
		MaxBatch:      maxBatch,
		HighWaterMark: 2 * maxBatch,
		OnWritten: func(_ record, err error) {
			if err == nil {
				*acked++
			}
		},
	})
}

// With OnWritten instead of a callback per item, object mode costs
// nothing per item once the stream's buffers have their working size: no
// closure, queue entry or goroutine per WriteChunk, whether the items go
// to Writev one at a time (a free sink) or in batches.
func TestWriteChunkOfWithOnWrittenAllocatesNothing(t *testing.T) {
	t.Run("one at a time", func(t *testing.T) {
		acked := 0
		w := newAckedRecords(500, &acked)
		for i := range 1000 { // grow the ring, the batch and the event queue
			w.WriteChunk(record{ID: int64(i)}, nil)
		}
		allocs := testing.AllocsPerRun(10000, func() {
			w.WriteChunk(record{ID: 1, Val: 1}, nil)
		})
		assert.Zero(t, allocs, "allocations per WriteChunk with OnWritten into a free Writev sink")
		require.NoError(t, w.Close(), "Close after the writes")
		assert.Equal(t, 1000+10001, acked, "items acknowledged by OnWritten (AllocsPerRun runs once more)")
	})
	t.Run("batches of 500", func(t *testing.T) {
		acked := 0
		w := newAckedRecords(500, &acked)
		batch := func() {
			w.Cork()
			for i := range 500 {
				w.WriteChunk(record{ID: int64(i)}, nil)
			}
			w.Uncork() // one Writev call of 500
		}
		batch()
		allocs := testing.AllocsPerRun(100, batch)
		if raceEnabled {
			// About one allocation per batch here with -race, none without.
			t.Logf("with the race detector: %.0f allocations per batch of 500", allocs)
		} else {
			assert.Zero(t, allocs, "allocations per batch of 500 WriteChunks with OnWritten into a Writev sink")
		}
		require.NoError(t, w.Close(), "Close after the writes")
		assert.Equal(t, 500*102, acked, "items acknowledged by OnWritten")
	})
}

// A closure per WriteChunk (a callback that captures the item) costs its
// own allocation: one per item, nothing else. The test logs the figure;
// OnWritten is the way to a per-item outcome without it.
func TestWriteChunkOfWithClosureAllocatesTheClosure(t *testing.T) {
	w := NewWritableOf(nil, OptionsOf[record]{
		Writev:        func(items []record, done Callback) { done(nil) },
		MaxBatch:      500,
		HighWaterMark: 1000,
	})
	acked := 0
	write := func(id int64) {
		w.WriteChunk(record{ID: id}, func(err error) {
			if err == nil && id >= 0 {
				acked++
			}
		})
	}
	for i := range 1000 {
		write(int64(i))
	}
	allocs := testing.AllocsPerRun(10000, func() { write(1) })
	t.Logf("a closure callback per WriteChunk: %.2f allocations per item", allocs)
	assert.Equal(t, 1.0, allocs, "allocations per WriteChunk with a closure callback: the closure alone")
	require.NoError(t, w.Close(), "Close after the writes")
	assert.Equal(t, 1000+10001, acked, "callbacks that got nil")
}
