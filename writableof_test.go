package stream_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// batchSink records the batches handed to a WritableOf[int] and completes
// them as told: at once, or held until the test releases them.
type batchSink struct {
	mu      sync.Mutex
	batches [][]int
	hold    bool
	held    chan heldBatch
	result  func(items []int) error // nil: success
}

type heldBatch struct {
	items []int
	done  stream.Callback
}

func newBatchSink(hold bool) *batchSink {
	return &batchSink{hold: hold, held: make(chan heldBatch, 1024)}
}

func (s *batchSink) writev(items []int, done stream.Callback) {
	s.mu.Lock()
	s.batches = append(s.batches, slices.Clone(items))
	if s.hold {
		s.held <- heldBatch{slices.Clone(items), done} // room for every test's batches
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	var err error
	if s.result != nil {
		err = s.result(items)
	}
	done(err)
}

func (s *batchSink) write(v int, done stream.Callback) { s.writev([]int{v}, done) }

// next returns the next held batch.
func (s *batchSink) next(t *testing.T) heldBatch {
	t.Helper()
	return streamtest.Recv(t, s.held, "a batch to reach the sink")
}

func (s *batchSink) got() [][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

// outcomes records OnWritten and callbacks, in the order they ran.
type outcomes struct {
	mu  sync.Mutex
	log []string
}

func (o *outcomes) written(v int, err error) {
	o.mu.Lock()
	o.log = append(o.log, fmt.Sprintf("w%d %s", v, streamtest.Label(err)))
	o.mu.Unlock()
}

func (o *outcomes) cb(v int) stream.Callback {
	return func(err error) {
		o.mu.Lock()
		o.log = append(o.log, fmt.Sprintf("cb%d %s", v, streamtest.Label(err)))
		o.mu.Unlock()
	}
}

func (o *outcomes) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.log)
}

// release completes every held batch, now and from now on.
func (s *batchSink) release() {
	s.mu.Lock()
	s.hold = false
	var held []heldBatch
	for len(s.held) > 0 {
		held = append(held, <-s.held)
	}
	s.mu.Unlock()
	for _, b := range held {
		b.done(nil)
	}
}

// cleanupOf destroys w at the end of the test, completing the batches
// sinks still hold, and waits for it to close.
func cleanupOf[T any](t *testing.T, w *stream.WritableOf[T], sinks ...*batchSink) {
	t.Cleanup(func() {
		w.Destroy(nil)
		for _, s := range sinks {
			s.release()
		}
		select {
		case <-w.Done():
		case <-time.After(streamtest.Timeout):
			t.Errorf("WritableOf not closed %v after Destroy at the end of the test", streamtest.Timeout)
		}
	})
}

// Node's objectMode counts: the default high-water mark is 16 items, and
// WriteChunk returns false at the 16th; with a Size, Length and the mark
// are in its units (DefaultHighWaterMark by default).
func TestWritableOfCountsAndSize(t *testing.T) {
	sink := newBatchSink(true)
	w := stream.NewWritableOf(sink.write, stream.OptionsOf[int]{})
	cleanupOf(t, w, sink)
	for i := 1; i <= 15; i++ {
		require.True(t, w.WriteChunk(i, nil), "WriteChunk %d of 16", i)
	}
	assert.False(t, w.WriteChunk(16, nil), "the 16th item reaches the default mark")
	st := w.State()
	assert.Equal(t, 16, st.Length, "Length counts items")
	assert.Equal(t, 16, st.HighWaterMark, "objectMode's default mark")
	assert.Equal(t, 15, st.Buffered, "waiting items, one in flight")

	sizedSink := newBatchSink(true)
	sized := stream.NewWritableOf(sizedSink.write, stream.OptionsOf[int]{Size: func(v int) int { return v }})
	cleanupOf(t, sized, sizedSink)
	assert.True(t, sized.WriteChunk(10000, nil), "10000 units under the 16 KiB default")
	assert.False(t, sized.WriteChunk(6384, nil), "16384 units reach it")
	assert.Equal(t, 16384, sized.State().Length, "Length in Size units")
	assert.Equal(t, stream.DefaultHighWaterMark, sized.State().HighWaterMark, "the default mark with a Size")
}

// Size is called once per write and its result kept: changing what the
// item points to afterwards does not change the accounting.
func TestWritableOfSizeOnce(t *testing.T) {
	type rec struct{ n int }
	calls := 0
	var held []stream.Callback
	w := stream.NewWritableOf(func(r *rec, done stream.Callback) { held = append(held, done) },
		stream.OptionsOf[*rec]{Size: func(r *rec) int { calls++; return r.n }, HighWaterMark: 100})
	cleanupOf(t, w)
	r := &rec{n: 30}
	w.WriteChunk(r, nil)
	r.n = 1000
	assert.Equal(t, 30, w.State().Length, "Length after the item changed")
	assert.Equal(t, 1, calls, "Size calls")
	held[0](nil)
	assert.Equal(t, 0, w.State().Length, "Length once the item completed")
}

// "drain" (and Wait) come at LowWaterMark, not only at empty, so a batch
// sink keeps getting full batches.
func TestWritableOfDrainAtLowWaterMark(t *testing.T) {
	sink := newBatchSink(true)
	w := stream.NewWritableOf(nil, stream.OptionsOf[int]{Writev: sink.writev, HighWaterMark: 8, LowWaterMark: 4, MaxBatch: 2})
	cleanupOf(t, w, sink)
	drains := make(chan int, 10)
	w.OnDrain(func() { drains <- w.State().Length })
	for i := range 8 {
		w.WriteChunk(i, nil)
	}
	require.True(t, w.State().NeedDrain, "NeedDrain at the mark")
	waited := make(chan error, 1)
	go func() { waited <- w.Wait(context.Background()) }()
	sink.next(t).done(nil) // [0]: 7 left
	sink.next(t).done(nil) // [1 2]: 5 left
	select {
	case err := <-waited:
		t.Fatalf("Wait returned %v at Length 5, above LowWaterMark 4", err)
	default:
	}
	sink.next(t).done(nil) // [3 4]: 3 left
	assert.NoError(t, streamtest.Recv(t, waited, "Wait to return at LowWaterMark"), "Wait")
	assert.Equal(t, 3, streamtest.Recv(t, drains, "drain"), "Length at drain")
}

// Writev batches take the waiting items up to MaxBatch items and
// MaxBatchSize units, at least one; with write nil a single item is a
// batch of one.
func TestWritableOfBatchLimits(t *testing.T) {
	t.Run("MaxBatch", func(t *testing.T) {
		sink := newBatchSink(true)
		w := stream.NewWritableOf(nil, stream.OptionsOf[int]{Writev: sink.writev, MaxBatch: 3, HighWaterMark: 100})
		cleanupOf(t, w, sink)
		for i := range 8 {
			w.WriteChunk(i, nil)
		}
		for range 4 {
			sink.next(t).done(nil)
		}
		assert.Equal(t, [][]int{{0}, {1, 2, 3}, {4, 5, 6}, {7}}, sink.got(), "batches")
	})
	t.Run("MaxBatchSize", func(t *testing.T) {
		sink := newBatchSink(true)
		w := stream.NewWritableOf(nil, stream.OptionsOf[int]{Writev: sink.writev, MaxBatchSize: 10,
			Size: func(v int) int { return v }, HighWaterMark: 1000})
		cleanupOf(t, w, sink)
		for _, v := range []int{1, 4, 5, 2, 20, 3, 3} {
			w.WriteChunk(v, nil)
		}
		for range 5 {
			sink.next(t).done(nil)
		}
		assert.Equal(t, [][]int{{1}, {4, 5}, {2}, {20}, {3, 3}}, sink.got(),
			"batches: at most 10 units, an item larger than that alone")
	})
	t.Run("write and Writev", func(t *testing.T) {
		sink := newBatchSink(false)
		var singles []int
		w := stream.NewWritableOf(func(v int, done stream.Callback) { singles = append(singles, v); done(nil) },
			stream.OptionsOf[int]{Writev: sink.writev})
		w.WriteChunk(1, nil)
		require.NoError(t, w.Close(), "Close")
		assert.Equal(t, []int{1}, singles, "a single item goes to write when both are set")
		assert.Empty(t, sink.got(), "no Writev call")
	})
}

// ItemErrors fails the right items, in their callbacks and OnWritten, in
// order, and keeps the stream alive; a wrong length destroys it.
func TestWritableOfItemErrors(t *testing.T) {
	bad := errors.New("rejected")
	var out outcomes
	sink := newBatchSink(true)
	w := stream.NewWritableOf(nil, stream.OptionsOf[int]{Writev: sink.writev, OnWritten: out.written})
	cleanupOf(t, w, sink)
	w.WriteChunk(0, out.cb(0))
	w.WriteChunk(1, out.cb(1))
	w.WriteChunk(2, out.cb(2))
	sink.next(t).done(nil) // [0]
	sink.next(t).done(stream.ItemErrors{nil, bad})
	flushed := make(chan error, 1)
	go func() { flushed <- w.Flush(context.Background()) }()
	assert.NoError(t, streamtest.Recv(t, flushed, "Flush"), "Flush after the failing batch: nothing left")
	assert.Equal(t, []string{"w0 <nil>", "cb0 <nil>", "w1 <nil>", "cb1 <nil>", "w2 rejected", "cb2 rejected"}, out.get(), "outcomes")
	assert.NoError(t, w.Err(), "ItemErrors is not the stream's error")

	w.WriteChunk(3, out.cb(3))
	w.WriteChunk(4, out.cb(4))
	sink.next(t).done(nil) // [3]
	flushed2 := make(chan error, 1)
	go func() { flushed2 <- w.Flush(context.Background()) }()
	sink.next(t).done(stream.ItemErrors{nil, nil, nil}) // [4] with 3 outcomes
	assert.ErrorIs(t, streamtest.Recv(t, flushed2, "Flush"), stream.ErrBadItemErrors, "Flush")
	<-w.Done()
	assert.ErrorIs(t, w.Err(), stream.ErrBadItemErrors, "a wrong length destroys the stream")
}

// MaxBuffered with both Overflow policies, under 16 producers and a
// stalled sink: Length never exceeds the cap, every item gets exactly one
// outcome, and Dropped counts the ErrDropped ones.
func TestWritableOfOverflowManyProducers(t *testing.T) {
	for _, policy := range []stream.Overflow{stream.DropNewest, stream.DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			const producers, each, maxBuffered = 16, 200, 32
			release := make(chan struct{})
			var mu sync.Mutex
			peak := 0
			var w *stream.WritableOf[int]
			w = stream.NewWritableOf(nil, stream.OptionsOf[int]{
				Writev: func(items []int, done stream.Callback) {
					go func() { <-release; done(nil) }()
				},
				HighWaterMark: 16, MaxBuffered: maxBuffered, Overflow: policy,
			})
			var outcomesMu sync.Mutex
			got := map[int]int{}
			dropped := 0
			var wg sync.WaitGroup
			for p := range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						v := p*each + i
						w.WriteChunk(v, func(err error) {
							outcomesMu.Lock()
							got[v]++
							if errors.Is(err, stream.ErrDropped) {
								dropped++
							}
							outcomesMu.Unlock()
						})
						mu.Lock()
						peak = max(peak, w.State().Length)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			close(release)
			require.NoError(t, w.Close(), "Close")
			assert.LessOrEqual(t, peak, maxBuffered, "peak Length")
			assert.Len(t, got, producers*each, "items with an outcome")
			for v, n := range got {
				if n != 1 {
					t.Fatalf("item %d had %d outcomes", v, n)
				}
			}
			assert.Positive(t, dropped, "items dropped by a stalled sink")
			assert.Equal(t, dropped, w.State().Dropped, "State.Dropped")
		})
	}
}

// DropOldest evicts the oldest waiting items, never the one in flight;
// when the items in flight alone leave no room the new one is dropped. An
// item larger than MaxBuffered is taken only into an empty stream.
func TestWritableOfDropOldest(t *testing.T) {
	var out outcomes
	sink := newBatchSink(true)
	w := stream.NewWritableOf(sink.write, stream.OptionsOf[int]{HighWaterMark: 3, MaxBuffered: 3,
		Overflow: stream.DropOldest, OnWritten: out.written})
	cleanupOf(t, w, sink)
	for i := range 5 {
		w.WriteChunk(i, nil)
	}
	first := sink.next(t) // 0 in flight; 1 and 2 were evicted for 3 and 4
	assert.Equal(t, []int{0}, first.items, "in flight")
	assert.Equal(t, 2, w.State().Dropped, "Dropped")
	first.done(nil)
	sink.next(t).done(nil)
	sink.next(t).done(nil)
	require.NoError(t, w.Flush(context.Background()), "Flush")
	assert.Equal(t, []string{"w1 ErrDropped", "w2 ErrDropped", "w0 <nil>", "w3 <nil>", "w4 <nil>"}, out.get(),
		"outcomes: an eviction's at once, before the item in flight")

	bigSink := newBatchSink(true)
	big := stream.NewWritableOf(bigSink.write, stream.OptionsOf[int]{Size: func(v int) int { return v },
		HighWaterMark: 10, MaxBuffered: 10})
	cleanupOf(t, big, bigSink)
	big.WriteChunk(50, nil)
	assert.Equal(t, 50, big.State().Length, "an item over MaxBuffered into an empty stream is taken")
	big.WriteChunk(1, nil)
	assert.Equal(t, 1, big.State().Dropped, "but nothing after it while it is there")
}

// Linger lets a partial batch wait for more, at most Linger after its first
// item; it goes at once when full, and when someone flushes. One timer.
func TestWritableOfLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := newBatchSink(false)
		w := stream.NewWritableOf(nil, stream.OptionsOf[int]{Writev: sink.writev, MaxBatch: 4, Linger: 10 * time.Millisecond,
			HighWaterMark: 100})
		start := time.Now()
		w.WriteChunk(1, nil)
		w.WriteChunk(2, nil)
		synctest.Wait()
		assert.Empty(t, sink.got(), "a partial batch lingers")
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, [][]int{{1, 2}}, sink.got(), "the batch went after Linger")
		assert.Equal(t, 10*time.Millisecond, time.Since(start), "virtual time at the flush")

		for i := 3; i <= 6; i++ {
			w.WriteChunk(i, nil)
		}
		synctest.Wait()
		assert.Equal(t, [][]int{{1, 2}, {3, 4, 5, 6}}, sink.got(), "a full batch goes at once")

		w.WriteChunk(7, nil)
		require.NoError(t, w.Flush(context.Background()), "Flush")
		assert.Equal(t, [][]int{{1, 2}, {3, 4, 5, 6}, {7}}, sink.got(), "Flush cuts Linger short")
		require.NoError(t, w.Close(), "Close")
	})
}

// Flush and Wait on a WritableOf return for every reason, as on Writable.
func TestWritableOfFlushAndWait(t *testing.T) {
	boom := errors.New("boom")
	sink := newBatchSink(true)
	w := stream.NewWritableOf(sink.write, stream.OptionsOf[int]{HighWaterMark: 2})
	cleanupOf(t, w, sink)
	w.WriteChunk(1, nil)
	w.WriteChunk(2, nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(boom)
	assert.ErrorIs(t, w.Wait(ctx), boom, "Wait with a done ctx while it needs drain")
	assert.ErrorIs(t, w.Flush(ctx), boom, "Flush with a done ctx and writes pending")
	sink.next(t).done(nil)
	sink.next(t).done(nil)
	assert.NoError(t, w.Wait(context.Background()), "Wait after drain")
	assert.NoError(t, w.Flush(context.Background()), "Flush with nothing pending")
	w.End()
	assert.ErrorIs(t, w.Wait(context.Background()), stream.ErrWriteAfterEnd, "Wait after End")
	assert.ErrorIs(t, w.Flush(context.Background()), stream.ErrWriteAfterEnd, "Flush after End")
	var late error
	lateDone := make(chan struct{})
	w.WriteChunk(3, func(err error) { late = err; close(lateDone) })
	streamtest.Recv(t, lateDone, "the late write's callback")
	assert.ErrorIs(t, late, stream.ErrWriteAfterEnd, "a write after End")
	assert.NoError(t, w.Close(), "Close: the late write failed alone")
}

// Misuse panics in the constructor, naming the field, or in WriteChunk for
// a negative Size; the zero value panics saying it was not made by
// NewWritableOf.
func TestWritableOfBadInput(t *testing.T) {
	noop := func(int, stream.Callback) {}
	tests := []struct {
		desc string
		opts stream.OptionsOf[int]
		want string
	}{
		{"negative HighWaterMark", stream.OptionsOf[int]{HighWaterMark: -1}, "OptionsOf.HighWaterMark"},
		{"negative LowWaterMark", stream.OptionsOf[int]{LowWaterMark: -1}, "OptionsOf.LowWaterMark"},
		{"negative MaxBuffered", stream.OptionsOf[int]{MaxBuffered: -1}, "OptionsOf.MaxBuffered"},
		{"negative MaxBatch", stream.OptionsOf[int]{MaxBatch: -1}, "OptionsOf.MaxBatch"},
		{"negative MaxBatchSize", stream.OptionsOf[int]{MaxBatchSize: -1}, "OptionsOf.MaxBatchSize"},
		{"MaxBuffered below the mark", stream.OptionsOf[int]{MaxBuffered: 8}, "OptionsOf.MaxBuffered 8 below the high-water mark 16"},
	}
	for _, tt := range tests {
		assert.PanicsWithValue(t, "stream: NewWritableOf: "+panicSuffix(tt.want, tt.opts), func() {
			stream.NewWritableOf(noop, tt.opts)
		}, tt.desc)
	}
	assert.PanicsWithValue(t, "stream: NewWritableOf: nil WriteFuncOf and nil OptionsOf.Writev", func() {
		stream.NewWritableOf[int](nil, stream.OptionsOf[int]{})
	}, "both write and Writev nil")
	assert.Panics(t, func() {
		stream.NewWritable(func([]byte, stream.Callback) {}, stream.Options{MaxBuffered: 100})
	}, "Writable: MaxBuffered below the default mark")

	w := stream.NewWritableOf(noop, stream.OptionsOf[int]{Size: func(v int) int { return v }})
	cleanupOf(t, w)
	assert.PanicsWithValue(t, "stream: WritableOf.WriteChunk: OptionsOf.Size returned -3", func() { w.WriteChunk(-3, nil) }, "negative Size")
	assert.Equal(t, 0, w.State().Length, "the panicking write was not accepted")

	var zero stream.WritableOf[int]
	assert.PanicsWithValue(t, "stream: WritableOf not made by NewWritableOf", func() { zero.WriteChunk(1, nil) }, "zero value WriteChunk")
	assert.PanicsWithValue(t, "stream: WritableOf not made by NewWritableOf", func() { zero.Close() }, "zero value Close")
}

// panicSuffix is the expected panic message after the function name.
func panicSuffix(field string, opts stream.OptionsOf[int]) string {
	switch {
	case opts.HighWaterMark < 0:
		return fmt.Sprintf("negative %s %d", field, opts.HighWaterMark)
	case opts.LowWaterMark < 0:
		return fmt.Sprintf("negative %s %d", field, opts.LowWaterMark)
	case opts.MaxBuffered < 0:
		return fmt.Sprintf("negative %s %d", field, opts.MaxBuffered)
	case opts.MaxBatch < 0:
		return fmt.Sprintf("negative %s %d", field, opts.MaxBatch)
	case opts.MaxBatchSize < 0:
		return fmt.Sprintf("negative %s %d", field, opts.MaxBatchSize)
	}
	return field
}

// OnWritten gets every item's outcome in acceptance order with 16
// producers, and the Writev slice is cleared after done.
func TestWritableOfOnWrittenOrder(t *testing.T) {
	type item struct {
		p, i int
		data *[64]byte
	}
	var mu sync.Mutex
	next := map[int]int{}
	var lastBatch []item
	work := make(chan func(), 1)
	go func() {
		for f := range work {
			f()
		}
	}()
	defer close(work)
	w := stream.NewWritableOf(nil, stream.OptionsOf[item]{
		Writev: func(items []item, done stream.Callback) {
			lastBatch = items
			work <- func() { done(nil) }
		},
		MaxBatch: 50,
		OnWritten: func(v item, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil || next[v.p] != v.i {
				t.Errorf("OnWritten(%d/%d, %v), want item %d of producer %d", v.p, v.i, err, next[v.p], v.p)
			}
			next[v.p]++
		},
	})
	var wg sync.WaitGroup
	for p := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if !w.WriteChunk(item{p, i, new([64]byte)}, nil) {
					if err := w.Wait(context.Background()); err != nil {
						t.Errorf("Wait: %v", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close(), "Close")
	for p := range 16 {
		assert.Equal(t, 500, next[p], "outcomes of producer %d", p)
	}
	for i, v := range lastBatch[:cap(lastBatch)] {
		if v.data != nil {
			t.Fatalf("the Writev slice still holds item %d after done", i)
		}
	}
}

// PipelineSeq copies an iterator into a WritableOf with backpressure,
// and stops at the first error of the source, the sink or ctx.
func TestPipelineSeq(t *testing.T) {
	count := func(n int, failAt int, err error) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := range n {
				if i == failAt {
					yield(0, err)
					return
				}
				if !yield(i, nil) {
					return
				}
			}
		}
	}
	t.Run("all", func(t *testing.T) {
		sink := newBatchSink(false)
		w := stream.NewWritableOf(nil, stream.OptionsOf[int]{Writev: sink.writev, HighWaterMark: 8})
		require.NoError(t, stream.PipelineSeq(context.Background(), w, count(1000, -1, nil)), "PipelineSeq")
		var all []int
		for _, b := range sink.got() {
			all = append(all, b...)
		}
		assert.Equal(t, 1000, len(all), "items at the sink")
		assert.True(t, slices.IsSorted(all), "in order")
	})
	t.Run("source error", func(t *testing.T) {
		boom := errors.New("boom")
		w := stream.NewWritableOf(newBatchSink(false).write, stream.OptionsOf[int]{})
		assert.ErrorIs(t, stream.PipelineSeq(context.Background(), w, count(100, 50, boom)), boom, "PipelineSeq")
		assert.ErrorIs(t, w.Err(), boom, "dst destroyed with the source's error")
	})
	t.Run("sink error", func(t *testing.T) {
		boom := errors.New("disk full")
		sink := newBatchSink(false)
		sink.result = func(items []int) error {
			if items[0] >= 10 {
				return boom
			}
			return nil
		}
		w := stream.NewWritableOf(sink.write, stream.OptionsOf[int]{})
		assert.ErrorIs(t, stream.PipelineSeq(context.Background(), w, count(1000, -1, nil)), boom, "PipelineSeq")
	})
	t.Run("ctx", func(t *testing.T) {
		sink := newBatchSink(true)
		w := stream.NewWritableOf(sink.write, stream.OptionsOf[int]{HighWaterMark: 4})
		ctx, cancel := context.WithCancelCause(context.Background())
		stopped := errors.New("shutdown")
		res := make(chan error, 1)
		// The source ends only by ctx.
		go func() { res <- stream.PipelineSeq(ctx, w, count(math.MaxInt, -1, nil)) }()
		sink.next(t).done(nil) // the copy is under way
		cancel(stopped)
		sink.release() // Destroy waits for the call in flight
		assert.ErrorIs(t, streamtest.Recv(t, res, "PipelineSeq to return"), stopped, "PipelineSeq")
	})
}

// OnWritten runs once per item of a Writev batch, even when it panics in
// the middle of one: the goroutine that called done (and recovered) ran
// it up to the panic, and the rest of the batch still gets OnWritten, in
// order, before the stream closes.
func TestWritableOfOnWrittenPanicsMidBatch(t *testing.T) {
	dones := make(chan stream.Callback, 2)
	var mu sync.Mutex
	var seen []int
	w := stream.NewWritableOf(nil, stream.OptionsOf[int]{
		Writev: func(items []int, done stream.Callback) { dones <- done },
		OnWritten: func(v int, err error) {
			mu.Lock()
			seen = append(seen, v)
			mu.Unlock()
			assert.NoError(t, err, "item %d", v)
			if v == 4 {
				panic("OnWritten bug")
			}
		},
	})
	for i := range 10 {
		w.WriteChunk(i, nil)
	}
	streamtest.Recv(t, dones, "the call of item 0")(nil)
	done := streamtest.Recv(t, dones, "the batch of items 1 to 9")
	assert.PanicsWithValue(t, "OnWritten bug", func() { done(nil) }, "OnWritten's panic reaches the goroutine that called done")
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	require.NoError(t, streamtest.Recv(t, closed, "Close"), "Close")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, seen, "OnWritten once per item, in order")
}
