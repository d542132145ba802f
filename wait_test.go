package stream_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// waitAsync calls w.Wait(ctx) on a new goroutine and delivers its result.
func waitAsync(ctx context.Context, w *stream.Writable) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- w.Wait(ctx) }()
	return ch
}

// overMark opens a stream of high-water mark 4 over a holding sink and
// writes past the mark, so that it needs drain with one write in flight.
func overMark(t *testing.T) (*stream.Writable, *streamtest.Sink) {
	t.Helper()
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, _ := open(t, sink, stream.Options{HighWaterMark: 4})
	require.False(t, w.WriteChunk(chunk("abcd"), nil), "a write reaching the mark returns false")
	return w, sink
}

// Wait returns nil at once when no drain is needed, also with a done ctx
// (there is room, so nothing to wait for).
func TestWaitRoom(t *testing.T) {
	sink := streamtest.NewSink()
	w, _ := open(t, sink, stream.Options{})
	assert.NoError(t, w.Wait(context.Background()), "Wait on a fresh stream")
	w.WriteChunk(chunk("a"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, w.Wait(ctx), "Wait with room and a done ctx")
}

// Every way a Wait on a stream that needs drain returns: "drain", End,
// Destroy(nil), Destroy(err), a sink error, and ctx.
func TestWaitReturns(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc   string
		act    func(w *stream.Writable, sink *streamtest.Sink, cancel context.CancelCauseFunc)
		wantIs []error // nil: Wait returns nil
	}{
		{desc: "drain", act: func(w *stream.Writable, sink *streamtest.Sink, _ context.CancelCauseFunc) {
			sink.Next(t).Done(nil)
		}},
		{desc: "End", act: func(w *stream.Writable, _ *streamtest.Sink, _ context.CancelCauseFunc) {
			w.End()
		}, wantIs: []error{stream.ErrWriteAfterEnd}},
		{desc: "Destroy(nil)", act: func(w *stream.Writable, _ *streamtest.Sink, _ context.CancelCauseFunc) {
			w.Destroy(nil)
		}, wantIs: []error{stream.ErrDestroyed}},
		{desc: "Destroy(err)", act: func(w *stream.Writable, _ *streamtest.Sink, _ context.CancelCauseFunc) {
			w.Destroy(boom)
		}, wantIs: []error{stream.ErrDestroyed, boom}},
		{desc: "sink error", act: func(w *stream.Writable, sink *streamtest.Sink, _ context.CancelCauseFunc) {
			sink.Next(t).Done(boom)
		}, wantIs: []error{stream.ErrDestroyed, boom}},
		{desc: "ctx", act: func(w *stream.Writable, _ *streamtest.Sink, cancel context.CancelCauseFunc) {
			cancel(boom)
		}, wantIs: []error{boom}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w, sink := overMark(t)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			const waiters = 8
			results := make([]<-chan error, waiters)
			for i := range results {
				results[i] = waitAsync(ctx, w)
			}
			tt.act(w, sink, cancel)
			for i, ch := range results {
				err := streamtest.Recv(t, ch, "a Wait to return")
				if tt.wantIs == nil {
					assert.NoError(t, err, "waiter %d", i)
				}
				for _, want := range tt.wantIs {
					assert.ErrorIs(t, err, want, "waiter %d", i)
				}
			}
		})
	}
}

// The documented loop ends on a dead stream: a producer using Wait stops
// with the stream's error after the sink fails, instead of spinning (bug 5:
// the <-Ready() loop made 199,830 calls after a client disconnected).
func TestWaitLoopEndsOnDeadStream(t *testing.T) {
	gone := errors.New("client gone")
	var calls atomic.Int64
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		if calls.Add(1) == 100 {
			done(gone)
			return
		}
		done(nil)
	}, stream.Options{HighWaterMark: 1})
	defer w.Destroy(nil)
	producer := make(chan error, 1)
	writes := 0
	go func() {
		ctx := context.Background()
		for {
			writes++
			if !w.WriteChunk(chunk("event\n"), nil) {
				if err := w.Wait(ctx); err != nil {
					producer <- err
					return
				}
			}
		}
	}()
	err := streamtest.Recv(t, producer, "the producer loop to end")
	assert.ErrorIs(t, err, gone, "the loop's error")
	assert.Less(t, writes, 200, "writes made by the loop: it stops right after the failure")
}

// Many producers wait while a sink completes on its own goroutine: however
// Wait races the drain, no waiter is stranded and every chunk arrives.
func TestWaitRacesDrain(t *testing.T) {
	work := make(chan stream.Callback, 1)
	stop := make(chan struct{})
	var workers sync.WaitGroup
	workers.Add(1)
	go func() {
		defer workers.Done()
		for {
			select {
			case done := <-work:
				done(nil)
			case <-stop:
				return
			}
		}
	}()
	var got atomic.Int64
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		got.Add(int64(len(chunk)))
		work <- done
	}, stream.Options{HighWaterMark: 64})
	const producers, perProducer = 16, 500
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perProducer {
				if !w.WriteChunk(make([]byte, 16), nil) {
					if err := w.Wait(context.Background()); err != nil {
						t.Errorf("Wait: %v", err)
						return
					}
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	streamtest.Recv(t, finished, "every producer to finish its writes")
	assert.NoError(t, w.Close(), "Close")
	close(stop)
	workers.Wait()
	assert.Equal(t, int64(producers*perProducer*16), got.Load(), "bytes the sink received")
}
