package stream_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
)

// With a hard cap, 64 producers that ignore backpressure cannot make a
// stalled stream hold more than MaxBuffered items: each Overflow policy
// drops instead, every item gets exactly one outcome (nil or ErrDropped),
// and the stream closes cleanly once the sink moves again.
func TestOverflowOfCapsLengthUnder64Producers(t *testing.T) {
	const (
		producers   = 64
		perProducer = 1000
		maxBuffered = 100
		maxBatch    = 30
	)
	for _, policy := range []stream.Overflow{stream.DropNewest, stream.DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			release := make(chan struct{})
			var sinkCalls sync.WaitGroup
			var delivered atomic.Int64
			var ok, dropped, other int // OnWritten runs one item at a time
			w := stream.NewWritableOf(nil, stream.OptionsOf[int]{
				// Stalled: no batch completes until release is closed.
				Writev: func(items []int, done stream.Callback) {
					sinkCalls.Add(1)
					go func() {
						defer sinkCalls.Done()
						<-release
						delivered.Add(int64(len(items)))
						done(nil)
					}()
				},
				MaxBatch:      maxBatch,
				HighWaterMark: maxBuffered / 2,
				MaxBuffered:   maxBuffered,
				Overflow:      policy,
				OnWritten: func(_ int, err error) {
					switch {
					case err == nil:
						ok++
					case errors.Is(err, stream.ErrDropped):
						dropped++
					default:
						other++
					}
				},
			})

			var peak atomic.Int64
			var wg sync.WaitGroup
			for p := range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perProducer {
						w.WriteChunk(p*perProducer+i, nil) // the return value ignored
						l := int64(w.State().Length)
						for {
							old := peak.Load()
							if l <= old || peak.CompareAndSwap(old, l) {
								break
							}
						}
					}
				}()
			}
			wg.Wait()
			st := w.State()
			assert.LessOrEqual(t, peak.Load(), int64(maxBuffered), "peak State().Length under %d producers", producers)
			assert.Equal(t, maxBuffered, st.Length, "Length once the producers stopped: full to the cap")
			total := producers * perProducer
			assert.Equal(t, total-maxBuffered, st.Dropped, "State().Dropped: everything beyond the cap")

			close(release)
			closed := make(chan error, 1)
			go func() { closed <- w.Close() }()
			select {
			case err := <-closed:
				require.NoError(t, err, "Close: dropped items do not fail the stream")
			case <-time.After(10 * time.Second):
				t.Fatalf("Close did not return within 10s after the sink was released: %+v", w.State())
			}
			sinkCalls.Wait()
			assert.Equal(t, maxBuffered, ok, "items acknowledged with nil: the ones the cap kept")
			assert.EqualValues(t, maxBuffered, delivered.Load(), "items the sink got")
			assert.Equal(t, total-maxBuffered, dropped, "items acknowledged with ErrDropped")
			assert.Zero(t, other, "items with another outcome")
		})
	}
}
