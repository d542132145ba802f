package stream_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// The byte Writable has object mode's batching options, in bytes and
// chunks: MaxBatch caps the chunks of a Writev call, MaxBatchSize its
// bytes, LowWaterMark brings "drain" before empty, and a Writev may fail
// chunks alone with ItemErrors.
func TestWritableBatchOptions(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write, streamtest.Writev)
	w := stream.NewWritable(sink.Write, stream.Options{Writev: sink.Writev, MaxBatch: 2, MaxBatchSize: 5,
		HighWaterMark: 8, LowWaterMark: 4})
	streamtest.Cleanup(t, w, sink)
	rec := streamtest.Record(w)
	for _, c := range []string{"a", "bb", "ccc", "dd", "e", "f"} {
		w.WriteChunk(chunk(c), rec.Callback(c))
	}
	require.True(t, w.State().NeedDrain, "over the mark")
	assert.Equal(t, "write a", sink.Next(t).String(), "the first chunk alone: the sink was free")
	sink.Calls()[0].Done(nil)
	second := sink.Next(t)
	assert.Equal(t, "writev [bb ccc]", second.String(), "2 chunks, 5 bytes")
	second.Done(stream.ItemErrors{nil, errors.New("bad ccc")})
	rec.WaitFor(t, "drain") // Length 4 (dd e f) at LowWaterMark 4
	third := sink.Next(t)
	assert.Equal(t, "writev [dd e]", third.String(), "MaxBatch 2")
	third.Done(nil)
	sink.Next(t).Done(nil)
	assert.NoError(t, w.Close(), "Close: a chunk failing alone is not the stream's error")
	assert.ErrorContains(t, rec.Err("ccc"), "bad ccc", "the failed chunk's callback")
	assert.NoError(t, rec.Err("bb"), "its neighbour")
}

// MaxBuffered caps the bytes buffered: WriteChunk drops with Overflow,
// while Write waits for room instead of dropping, and stays contiguous.
func TestWritableMaxBuffered(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w := stream.NewWritable(sink.Write, stream.Options{HighWaterMark: 4, MaxBuffered: 8})
	streamtest.Cleanup(t, w, sink)
	rec := streamtest.Record(w)
	w.WriteChunk(chunk("1234"), nil)
	w.WriteChunk(chunk("5678"), nil)
	assert.False(t, w.WriteChunk(chunk("9"), rec.Callback("9")), "WriteChunk over MaxBuffered")
	rec.WaitFor(t, "cb 9 ErrDropped")
	assert.Equal(t, 1, w.State().Dropped, "Dropped")

	wrote := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte(strings.Repeat("x", 20)))
		wrote <- err
	}()
	peak := 0
	for done := false; !done; {
		call := sink.Next(t)
		peak = max(peak, w.State().Length)
		call.Done(nil)
		select {
		case err := <-wrote:
			require.NoError(t, err, "Write")
			done = true
		default:
		}
	}
	assert.LessOrEqual(t, peak, 8, "peak Length under MaxBuffered while Write waited")
	sink.Release()
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, "12345678"+strings.Repeat("x", 20), sink.Data(), "what reached the sink")
}

// A Write that blocks between its pieces keeps the fast path closed and
// the other Writes waiting, so even a large Write is contiguous against
// concurrent ones, whatever the sink.
func TestWriteLargeContiguous(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	jobs := make(chan func(), 1)
	go func() {
		for j := range jobs {
			j()
		}
	}()
	w := stream.NewWritable(func(c []byte, done stream.Callback) {
		mu.Lock()
		out.Write(c)
		mu.Unlock()
		jobs <- func() { done(nil) }
	}, stream.Options{HighWaterMark: 1024})
	big := bytes.Repeat([]byte{'B'}, 64<<10)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			w.Write(big)
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				w.Write([]byte("small\n"))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close(), "Close")
	close(jobs)
	s := out.String()
	assert.Equal(t, 4, strings.Count(s, string(big)), "each large Write arrived whole")
	assert.Equal(t, 400, strings.Count(s, "small\n"), "the small ones too")
}
