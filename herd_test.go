package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
	"github.com/streamkit/stream/internal/wakecount"
)

// Issue 9, deliverable 3: no thundering herd at drain. The goroutines that
// wait for room in Write and Wait are woken one at a time, each handing the
// room on, so that a drain with room for a few writes wakes a few of them,
// not all. internal/wakecount counts the wake-ups.

// parkedIn counts the goroutines blocked on a channel (parked for room)
// inside the stream function named fn, from a dump of every stack.
func parkedIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	parked := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		blocked := bytes.Contains(header, []byte("[chan receive")) || bytes.Contains(header, []byte("[select"))
		if blocked && bytes.Contains(g, []byte("github.com/streamkit/stream."+fn)) {
			parked++
		}
	}
	return parked
}

// requireParked waits until n goroutines are parked in fn, failing with
// what after waitTimeout.
func requireParked(t *testing.T, n int, fn, what string) {
	t.Helper()
	require.Eventually(t, func() bool { return parkedIn(fn) == n }, waitTimeout, millisecond,
		"%d goroutines parked in %s: %s", n, fn, what)
}

const (
	inWrite = "writeCopy"
	inWait  = "(*core[...]).wait("
)

// herdStream opens a stream of high-water mark 256 over a sink that holds
// every call, and fills it with one Write of 256 bytes (goroutine id
// fillerID's line 0), so that it needs drain with that Write in flight.
func herdStream(t *testing.T) (*stream.Writable, *streamtest.Sink) {
	t.Helper()
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write, streamtest.Writev)
	w := stream.NewWritable(sink.Write, stream.Options{HighWaterMark: 256, Writev: sink.Writev})
	streamtest.Cleanup(t, w, sink)
	_, err := w.Write(testLine(fillerID, 0, 256))
	require.NoError(t, err, "the Write that fills the stream")
	require.True(t, w.State().NeedDrain, "the stream needs drain after a Write to the mark")
	return w, sink
}

// fillerID is the goroutine id of herdStream's line.
const fillerID = 64

// 64 Writes blocked on a full stream, then one drain with room for four of
// their lines: only the Writes that take the room (and at most two that
// find it gone) wake; the rest sleep on. Once the sink runs freely every
// Write completes, each goroutine's lines whole and in order.
func TestWriteNoHerd(t *testing.T) {
	const producers, lines, lineLen = 64, 20, 64 // four lines fill the mark
	w, sink := herdStream(t)
	wakecount.Start()
	defer wakecount.Stop()
	var wg sync.WaitGroup
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range lines {
				if _, err := w.Write(testLine(g, s, lineLen)); err != nil {
					t.Errorf("goroutine %d, line %d: %v", g, s, err)
					return
				}
			}
		}()
	}
	requireParked(t, producers, inWrite, "every Write waits for drain")

	sink.Next(t).Done(nil) // "drain": room for four lines
	requireParked(t, producers, inWrite, "the room is taken and every Write waits again")
	drains, wakeups := wakecount.Stop()
	assert.Equal(t, int64(1), drains, "drains")
	assert.LessOrEqual(t, wakeups, int64(2+256/lineLen), "Writes woken by one drain with room for %d lines", 256/lineLen)
	assert.Positive(t, wakeups, "Writes woken by the drain")

	sink.Release()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	streamtest.Recv(t, finished, "every producer to finish its Writes")
	require.NoError(t, w.Close(), "Close")
	want := make([]int, fillerID+1)
	for g := range producers {
		want[g] = lines
	}
	want[fillerID] = 1
	checkLines(t, []byte(sink.Data()), want, parseTestLine)
}

// End, Destroy or a sink error while Writes and Waits queue for room wakes
// every one of them with the error a write gets.
func TestWaitersWokenAll(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		desc   string
		act    func(t *testing.T, w *stream.Writable, sink *streamtest.Sink)
		wantIs []error
	}{
		{"End", func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) { w.End() }, []error{stream.ErrWriteAfterEnd}},
		{"Destroy", func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) { w.Destroy(boom) }, []error{stream.ErrDestroyed, boom}},
		{"sink error", func(t *testing.T, _ *stream.Writable, sink *streamtest.Sink) { sink.Next(t).Done(boom) }, []error{stream.ErrDestroyed, boom}},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			const writers, waiters = 48, 16
			w, sink := herdStream(t)
			errs := make(chan error, writers+waiters)
			for g := range writers {
				go func() {
					n, err := w.Write(testLine(g, 0, 64))
					if n != 0 {
						err = fmt.Errorf("%d bytes accepted, with %w", n, err)
					}
					errs <- err
				}()
			}
			for range waiters {
				go func() { errs <- w.Wait(context.Background()) }()
			}
			requireParked(t, writers, inWrite, "every Write waits for drain")
			requireParked(t, waiters, inWait, "every Wait waits for drain")
			tt.act(t, w, sink)
			for i := range writers + waiters {
				err := streamtest.Recv(t, errs, "a waiting Write or Wait to return")
				for _, want := range tt.wantIs {
					assert.ErrorIs(t, err, want, "result %d", i)
				}
			}
		})
	}
}

// A Wait woken by a drain that returns with its ctx's error instead passes
// the wake-up on: the Wait behind it returns too. Woken and cancelled at
// once, a Wait may take either case of its select, so the test runs many
// rounds to hit the one where it was woken and leaves by ctx.
func TestWaitCancelledPassesWakeup(t *testing.T) {
	const rounds = 100
	for range rounds {
		w, sink := herdStream(t)
		first, cancel := context.WithCancel(context.Background())
		firstErr := make(chan error, 1)
		go func() { firstErr <- w.Wait(first) }()
		requireParked(t, 1, inWait, "the first Wait queues")
		second := waitAsync(context.Background(), w)
		requireParked(t, 2, inWait, "the second Wait queues behind it")

		cancel()
		sink.Next(t).Done(nil) // "drain": wakes the first Wait, if still queued
		err := streamtest.Recv(t, firstErr, "the first Wait to return")
		if err != nil {
			assert.ErrorIs(t, err, context.Canceled, "the first Wait's error")
		}
		if !assert.NoError(t, streamtest.Recv(t, second, "the second Wait to return after the drain"), "the second Wait") {
			return
		}
		sink.Release()
		require.NoError(t, w.Close(), "Close")
	}
}

// A Write that is woken passes the room on to the Write behind it, however
// many: a drain with room for every waiting Write lets each of them in
// (none is stranded), waking each once.
func TestWriteHandOffChain(t *testing.T) {
	const producers = 8
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write, streamtest.Writev)
	w := stream.NewWritable(sink.Write, stream.Options{HighWaterMark: 1024, Writev: sink.Writev})
	streamtest.Cleanup(t, w, sink)
	_, err := w.Write(testLine(fillerID, 0, 1024))
	require.NoError(t, err, "the Write that fills the stream")
	wakecount.Start()
	defer wakecount.Stop()
	done := make(chan error, producers)
	for g := range producers {
		go func() {
			_, err := w.Write(testLine(g, 0, 64)) // eight lines: half the mark
			done <- err
		}()
	}
	requireParked(t, producers, inWrite, "every Write waits for drain")
	sink.Next(t).Done(nil)
	for range producers {
		assert.NoError(t, streamtest.Recv(t, done, "each Write to be let in by the one before"), "Write")
	}
	_, wakeups := wakecount.Stop()
	assert.Equal(t, int64(producers), wakeups, "wake-ups: one per Write")
	sink.Release()
	require.NoError(t, w.Close(), "Close")
	want := make([]int, fillerID+1)
	for g := range producers {
		want[g] = 1
	}
	want[fillerID] = 1
	checkLines(t, []byte(sink.Data()), want, parseTestLine)
}
