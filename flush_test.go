package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// flushAsync calls w.Flush(ctx) on a new goroutine and delivers its result.
func flushAsync(ctx context.Context, w *stream.Writable) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- w.Flush(ctx) }()
	return ch
}

// Flush uncorks, sends what is buffered, and returns only after the
// callbacks of every write accepted before it have run; writes made after
// it are not waited for, and the stream stays open.
func TestFlushWaitsForEarlierWrites(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write, streamtest.Writev)
	w := stream.NewWritable(sink.Write, stream.Options{Writev: sink.Writev})
	streamtest.Cleanup(t, w, sink)
	rec := streamtest.Record(w)

	w.Cork()
	w.Cork()
	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.WriteChunk(chunk("b"), rec.Callback("b"))
	fmt.Fprint(w, "c")
	flushed := flushAsync(context.Background(), w)
	call := sink.Next(t) // Flush uncorked both Corks: one writev
	assert.Equal(t, "writev [a b c]", call.String(), "the flushed batch")
	w.WriteChunk(chunk("later"), rec.Callback("later"))
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned %v before its writes completed", err)
	default:
	}
	call.Done(nil)
	require.NoError(t, streamtest.Recv(t, flushed, "Flush to return"), "Flush")
	assert.Equal(t, []string{"cb a <nil>", "cb b <nil>"}, rec.Log(), "callbacks run before Flush returned")
	assert.False(t, w.State().Ended, "Flush does not end the stream")
	sink.Next(t).Done(nil) // "later", not waited for
	assert.NoError(t, w.Close(), "Close")
}

// Flush returns nil at once on an idle stream, and the stream's state
// error on an ended or destroyed one.
func TestFlushIdleAndLate(t *testing.T) {
	sink := streamtest.NewSink()
	w, _ := open(t, sink, stream.Options{})
	w.WriteChunk(chunk("a"), nil) // completes inside the call: nothing pending
	assert.NoError(t, w.Flush(context.Background()), "Flush of an idle stream")

	w.End()
	assert.ErrorIs(t, w.Flush(context.Background()), stream.ErrWriteAfterEnd, "Flush after End")
	streamtest.WaitDone(t, w)
	assert.ErrorIs(t, w.Flush(context.Background()), stream.ErrWriteAfterEnd, "Flush after close")

	boom := errors.New("boom")
	w2, _ := open(t, streamtest.NewSink(), stream.Options{})
	w2.Destroy(boom)
	err := w2.Flush(context.Background())
	assert.ErrorIs(t, err, stream.ErrDestroyed, "Flush after Destroy(err)")
	assert.ErrorIs(t, err, boom, "Flush after Destroy(err) names the cause")
}

// A sink error among the flushed writes is Flush's result; so is a Destroy
// that cuts them short, and ctx.
func TestFlushErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("sink error", func(t *testing.T) {
		sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
		w, rec := open(t, sink, stream.Options{})
		w.WriteChunk(chunk("a"), rec.Callback("a"))
		w.WriteChunk(chunk("b"), rec.Callback("b"))
		flushed := flushAsync(context.Background(), w)
		sink.Next(t).Done(boom)
		err := streamtest.Recv(t, flushed, "Flush to return")
		assert.ErrorIs(t, err, boom, "Flush")
		assert.Equal(t, 2, len(rec.Log())-rec.Count("error boom")-rec.Count("close"), "both callbacks ran by then; log %q", rec.Log())
	})
	t.Run("Destroy(nil)", func(t *testing.T) {
		sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
		w, _ := open(t, sink, stream.Options{})
		w.WriteChunk(chunk("a"), nil)
		w.WriteChunk(chunk("b"), nil)
		flushed := flushAsync(context.Background(), w)
		w.Destroy(nil)
		sink.Next(t).Done(nil)
		assert.ErrorIs(t, streamtest.Recv(t, flushed, "Flush to return"), stream.ErrDestroyed, "Flush")
	})
	t.Run("ctx", func(t *testing.T) {
		sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
		w, _ := open(t, sink, stream.Options{})
		w.WriteChunk(chunk("a"), nil)
		ctx, cancel := context.WithCancelCause(context.Background())
		flushed := flushAsync(ctx, w)
		cancel(boom)
		assert.ErrorIs(t, streamtest.Recv(t, flushed, "Flush to return"), boom, "Flush with a cancelled ctx")
		sink.Next(t).Done(nil)
		assert.NoError(t, w.Close(), "Close: the abandoned Flush left nothing behind")
	})
}

// Flush from many goroutines while others write to a sink that completes
// on its own goroutine: each returns nil once its own earlier Writes are
// in, which the sink has received by then.
func TestFlushConcurrent(t *testing.T) {
	var mu sync.Mutex
	received := map[string]bool{}
	work := make(chan func(), 1)
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		for f := range work {
			f()
		}
	}()
	w := stream.NewWritable(func(c []byte, done stream.Callback) {
		mu.Lock()
		received[string(c)] = true
		mu.Unlock()
		work <- func() { done(nil) }
	}, stream.Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				line := fmt.Sprintf("g%d-%d", g, i)
				w.WriteChunk([]byte(line), nil)
				if err := w.Flush(context.Background()); err != nil {
					t.Errorf("Flush: %v", err)
					return
				}
				mu.Lock()
				ok := received[line]
				mu.Unlock()
				if !ok {
					t.Errorf("Flush returned before the sink received %q", line)
					return
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	streamtest.Recv(t, finished, "every writer to finish")
	assert.NoError(t, w.Close(), "Close")
	close(work)
	<-workerDone
}
