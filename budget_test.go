package stream_test

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
)

// goid returns the current goroutine's id, from its stack header.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// DESIGN "Bounded work per call": with a slow synchronous sink and 8
// producers, a WriteChunk runs its own chunk inline but others' chunks only
// up to the documented budget (15 more sink calls); the stream's own
// goroutine carries on past it. Without the budget, the producer that
// finds the sink free runs every chunk the others queue meanwhile.
func TestWriteChunkBoundedWork(t *testing.T) {
	const producers, each = 8, 12
	const budget = 15
	var mu sync.Mutex
	callsOn := map[uint64]int{} // sink calls made on each goroutine
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		id := goid()
		mu.Lock()
		callsOn[id]++
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a slow synchronous sink
		done(nil)
	}, stream.Options{HighWaterMark: 1 << 20})

	var wg sync.WaitGroup
	worst := make([]int, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := goid()
			for range each {
				mu.Lock()
				before := callsOn[id]
				mu.Unlock()
				w.WriteChunk(make([]byte, 10), nil)
				mu.Lock()
				worst[p] = max(worst[p], callsOn[id]-before)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close(), "Close")
	total := 0
	for _, n := range callsOn {
		total += n
	}
	assert.Equal(t, producers*each, total, "sink calls")
	for p, n := range worst {
		assert.LessOrEqual(t, n, 1+budget, "most sink calls inside one WriteChunk of producer %d", p)
	}
}
