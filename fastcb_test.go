package stream_test

// Tests of writes with callbacks on the fast path (fast.go): their callbacks
// are published in a ring of slots and run by a courier goroutine, or by
// whoever delivers events, in write order and in order with everything
// else the stream queues.

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
)

// completeAtOnce completes every write inside the call.
func completeAtOnce(chunk []byte, done stream.Callback) { done(nil) }

// Callbacks of fast writes run in write order, each once, and before what the stream queued after them: Flush returns
// once they ran, "finish" comes after the last.
func TestFastCallbacksInOrderWithEvents(t *testing.T) {
	w := stream.NewWritable(completeAtOnce, stream.Options{})
	var mu sync.Mutex
	var order []int
	finishedAt := -1
	w.OnFinish(func() {
		mu.Lock()
		finishedAt = len(order)
		mu.Unlock()
	})
	const n = 20000
	for i := range n {
		w.WriteChunk(chunk("x"), func(err error) {
			assert.NoError(t, err, "callback %d", i)
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
		if i == n/2 {
			require.NoError(t, w.Flush(t.Context()), "Flush in the middle")
			mu.Lock()
			got := len(order)
			mu.Unlock()
			assert.Equal(t, n/2+1, got, "every callback of a write before Flush ran when it returned")
		}
	}
	require.NoError(t, w.Close(), "Close")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, order, n, "every callback ran once")
	for i, v := range order {
		if v != i {
			t.Fatalf("callback %d ran in place %d", v, i)
		}
	}
	assert.Equal(t, n, finishedAt, `"finish" after every callback`)
}

// When the callbacks waiting outnumber the slots (the first one blocks the
// courier), later writes go through the lock, still in order, none lost,
// and State counts them all as pending.
func TestFastCallbacksOverflowSlots(t *testing.T) {
	w := stream.NewWritable(completeAtOnce, stream.Options{})
	release := make(chan struct{})
	blocked := make(chan struct{})
	var ran []int // appended only by the delivering goroutine, one at a time
	w.WriteChunk(chunk("x"), func(error) {
		close(blocked)
		<-release
		ran = append(ran, 0)
	})
	recvWithin(t, blocked, "the first callback to run")
	const more = 6000 // more than the 4095 slots
	for i := 1; i <= more; i++ {
		w.WriteChunk(chunk("x"), func(error) { ran = append(ran, i) })
	}
	assert.Equal(t, more, w.State().PendingCallbacks, "every callback behind the running one is pending")
	close(release)
	require.NoError(t, w.Flush(t.Context()), "Flush")
	require.Len(t, ran, more+1, "every callback ran once")
	for i, v := range ran {
		if v != i {
			t.Fatalf("callback %d ran in place %d", v, i)
		}
	}
	assert.Equal(t, 0, w.State().PendingCallbacks, "nothing pending after Flush")
	require.NoError(t, w.Close(), "Close")
}

// A callback may write with callbacks to the same stream, more than the
// slots hold, while it runs on the courier: no deadlock, order kept.
func TestFastCallbacksWrittenFromCallback(t *testing.T) {
	w := stream.NewWritable(completeAtOnce, stream.Options{})
	var ran []int
	done := make(chan struct{})
	const more = 6000
	w.WriteChunk(chunk("x"), func(error) {
		ran = append(ran, 0)
		for i := 1; i <= more; i++ {
			w.WriteChunk(chunk("x"), func(error) {
				ran = append(ran, i)
				if i == more {
					close(done)
				}
			})
		}
	})
	recvWithin(t, done, "the last callback written from a callback")
	require.Len(t, ran, more+1, "every callback ran once")
	for i, v := range ran {
		if v != i {
			t.Fatalf("callback %d ran in place %d", v, i)
		}
	}
	require.NoError(t, w.Close(), "Close")
}

// A callback that ends its goroutine (runtime.Goexit, as t.FailNow does)
// does not stop the delivery of later callbacks.
func TestFastCallbackGoexit(t *testing.T) {
	w := stream.NewWritable(completeAtOnce, stream.Options{})
	w.WriteChunk(chunk("x"), func(error) { runtime.Goexit() })
	later := make(chan struct{})
	require.NoError(t, w.Flush(t.Context()), "Flush after the Goexit callback")
	w.WriteChunk(chunk("y"), func(error) { close(later) })
	recvWithin(t, later, "a callback written after the one that called Goexit")
	require.NoError(t, w.Close(), "Close")
}

// Producers writing with callbacks concurrently: each producer's callbacks
// run in its order, each once, and Close returns after all of them.
func TestFastCallbacksManyProducers(t *testing.T) {
	w := stream.NewWritable(completeAtOnce, stream.Options{})
	const producers, each = 8, 5000
	var mu sync.Mutex
	next := make([]int, producers) // the index each producer's next callback must have
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				w.WriteChunk(chunk("x"), func(err error) {
					mu.Lock()
					defer mu.Unlock()
					if assert.NoError(t, err) && next[p] != i {
						t.Errorf("producer %d: callback %d ran when %d was due", p, i, next[p])
					}
					next[p] = i + 1
				})
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Close(), "Close")
	mu.Lock()
	defer mu.Unlock()
	for p, n := range next {
		assert.Equal(t, each, n, "producer %d: callbacks run", p)
	}
}
