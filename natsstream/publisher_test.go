package natsstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/streamkit/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of NewPublisher, used as users use it: the WriteChunk/Wait idiom
// from several goroutines, Close, Destroy, a context, against a real
// server that rejects messages, restarts and goes away.

// outcomes records each message's callback, in the order they ran.
type outcomes struct {
	mu    sync.Mutex
	order []string // data of the messages, in callback order
	errs  map[string]error
	calls map[string]int
}

func newOutcomes() *outcomes {
	return &outcomes{errs: map[string]error{}, calls: map[string]int{}}
}

// cb returns m's callback.
func (o *outcomes) cb(m *nats.Msg) stream.Callback {
	key := string(m.Data)
	return func(err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.order = append(o.order, key)
		o.errs[key] = err
		o.calls[key]++
	}
}

// write writes msgs to w with the documented idiom, returning the first
// error Wait gives.
func write(ctx context.Context, w *stream.WritableOf[*nats.Msg], msgs []*nats.Msg, o *outcomes) error {
	for _, m := range msgs {
		if !w.WriteChunk(m, o.cb(m)) {
			if err := w.Wait(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// closeWithin closes w on another goroutine and waits up to d.
func closeWithin(t *testing.T, w *stream.WritableOf[*nats.Msg], d time.Duration) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- w.Close() }()
	select {
	case err := <-res:
		return err
	case <-time.After(d):
		require.FailNow(t, "timed out", "waited %v for Close", d)
		return nil
	}
}

func TestPublisherInOrderFromManyGoroutines(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	createStream(t, js, "ORDER")
	// OnWritten and OnBatch each run one call at a time, and both are done
	// before Close returns: plain variables will do.
	var written []string // OnWritten order: the acceptance order
	var peak int
	w := NewPublisher(js, Options{
		MaxPending: 256,
		OnWritten: func(m *nats.Msg, err error) {
			assert.NoError(t, err, "message %s stored", m.Data)
			written = append(written, string(m.Data))
		},
		OnBatch: func(s BatchStats) { peak = max(peak, s.PeakPending) },
	})

	const producers, each = 4, 25_000
	o := newOutcomes()
	var wg sync.WaitGroup
	for g := range producers {
		wg.Go(func() {
			assert.NoError(t, write(context.Background(), w, msgs("ORDER.x", fmt.Sprintf("%d-", g), 0, each), o), "producer %d", g)
		})
	}
	wg.Wait()
	require.NoError(t, closeWithin(t, w, time.Minute), "Close after every message was stored")

	got := readStream(t, js, "ORDER")
	require.Len(t, got, producers*each, "every message in the stream")
	require.Len(t, written, producers*each, "OnWritten once per message")
	next := make([]int, producers)
	for i, m := range got {
		require.Equal(t, written[i], m.data, "stream position %d holds the message accepted at %d", i, i)
		var g, n int
		_, err := fmt.Sscanf(m.data, "%d-%d", &g, &n)
		require.NoError(t, err, "message %q", m.data)
		require.Equal(t, next[g], n, "producer %d's messages in its order", g)
		next[g]++
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	assert.Equal(t, written, o.order, "callbacks run in acceptance order")
	for k, n := range o.calls {
		if n != 1 {
			assert.Equal(t, 1, n, "callback of %s runs once", k)
		}
	}
	assert.LessOrEqual(t, peak, 256, "acks outstanding never above MaxPending")
}

func TestPublisherFullStreamFailsOnlyTheRejected(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	createStream(t, js, "FULL", limitMsgs(60))
	w := NewPublisher(js, Options{MaxPending: 16})

	o := newOutcomes()
	require.NoError(t, write(context.Background(), w, msgs("FULL.x", "", 0, 100), o), "writes are accepted")
	flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.Flush(flushCtx)
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr, "Flush reports the first rejection")
	assert.NoError(t, w.Err(), "a rejected message does not destroy the stream")

	more := msgs("FULL.x", "", 100, 1)
	assert.True(t, w.WriteChunk(more[0], o.cb(more[0])), "the stream still takes writes")
	err = closeWithin(t, w, 10*time.Second)
	assert.ErrorAs(t, err, &apiErr, "Close returns the first error")

	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range 101 {
		err := o.errs[strconv.Itoa(i)]
		if i < 60 {
			assert.NoError(t, err, "message %d fits", i)
		} else if assert.ErrorAs(t, err, &apiErr, "message %d is rejected by the server", i) {
			assert.Contains(t, apiErr.Description, "maximum messages", "message %d", i)
		}
	}
	assert.Len(t, readStream(t, js, "FULL"), 60, "stored messages")
}

func TestPublisherRejectedMessageDoesNotFailNeighbours(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	createStream(t, js, "SIZE", func(c *jetstream.StreamConfig) { c.MaxMsgSize = 64 })
	w := NewPublisher(js, Options{})

	batch := msgs("SIZE.x", "", 0, 50)
	for i := 5; i < len(batch); i += 10 {
		batch[i].Data = []byte(strconv.Itoa(i) + strings.Repeat("x", 100)) // too large
	}
	o := newOutcomes()
	w.Cork() // one batch of 50
	require.NoError(t, write(context.Background(), w, batch, o), "writes are accepted")
	w.Uncork()
	assert.Error(t, closeWithin(t, w, 10*time.Second), "Close returns the first rejection")

	o.mu.Lock()
	defer o.mu.Unlock()
	var want []string
	for i, m := range batch {
		err := o.errs[string(m.Data)]
		if i%10 == 5 {
			assert.Error(t, err, "message %d is too large", i)
			continue
		}
		assert.NoError(t, err, "message %d, a neighbour of a rejected one", i)
		want = append(want, string(m.Data))
	}
	assert.Equal(t, want, storedData(t, js, "SIZE"), "the stored messages, in order")
}

func TestPublisherServerRestart(t *testing.T) {
	ts := startServer(t)
	nc, js := ts.connect()
	createStream(t, js, "RESTART")
	var batches atomic.Int64
	w := NewPublisher(js, Options{
		MaxPending: 64,
		AckTimeout: time.Second,
		OnBatch:    func(BatchStats) { batches.Add(1) },
	})

	// Two producers write until the server has restarted and 10 more
	// batches have gone out.
	o := newOutcomes()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ; i += 100 {
				select {
				case <-stop:
					return
				default:
				}
				if err := write(context.Background(), w, msgs("RESTART.x", fmt.Sprintf("%d-", g), i, 100), o); err != nil {
					assert.NoError(t, err, "producer %d", g)
					return
				}
			}
		})
	}
	require.Eventually(t, func() bool { return batches.Load() >= 5 }, 20*time.Second, time.Millisecond, "five batches before the restart")
	ts.restart()
	after := batches.Load()
	require.Eventually(t, func() bool { return batches.Load() >= after+10 }, 20*time.Second, time.Millisecond, "ten batches after the restart")
	close(stop)
	wg.Wait()
	err := closeWithin(t, w, 20*time.Second)
	require.Eventually(t, nc.IsConnected, 10*time.Second, 10*time.Millisecond, "client reconnected")

	stored := map[string]bool{}
	for _, m := range readStream(t, js, "RESTART") {
		assert.False(t, stored[m.data], "message %s stored once", m.data)
		stored[m.data] = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var failed int
	var first error
	for _, key := range o.order {
		if err := o.errs[key]; err != nil {
			failed++
			if first == nil {
				first = err
			}
			continue
		}
		assert.True(t, stored[key], "message %s was reported stored: it is in the stream", key)
	}
	for key, n := range o.calls {
		if n != 1 {
			assert.Equal(t, 1, n, "callback of %s runs once", key)
		}
	}
	t.Logf("%d messages, %d failed, %d stored", len(o.order), failed, len(stored))
	assert.Positive(t, failed, "the restart cut some acks short")
	assert.ErrorIs(t, err, first, "Close returns the first error")
}

func TestPublisherBackpressureWhileServerDown(t *testing.T) {
	ts := startServer(t)
	onDisconnect, down := disconnected()
	_, js := ts.connect(onDisconnect)
	createStream(t, js, "DOWN")
	w := NewPublisher(js, Options{MaxPending: 4, HighWaterMark: 32, AckTimeout: 500 * time.Millisecond})
	serverGone(t, ts, down)

	o := newOutcomes()
	batch := msgs("DOWN.x", "", 0, 1000)
	accepted := 0
	for _, m := range batch {
		accepted++
		if !w.WriteChunk(m, o.cb(m)) {
			break
		}
	}
	assert.Equal(t, 32, accepted, "WriteChunk returns false at the high-water mark")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, w.Wait(ctx), context.DeadlineExceeded, "a producer waits while the server takes nothing")
	assert.LessOrEqual(t, w.State().Length, 32, "what the stream holds stays bounded")

	cause := errors.New("giving up")
	w.Destroy(cause)
	// Destroy waits for the batch in flight, whose acks time out.
	assert.ErrorIs(t, closeWithin(t, w, 10*time.Second), cause, "Close after Destroy")
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range batch[:accepted] {
		err := o.errs[string(m.Data)]
		if !errors.Is(err, ErrAckTimeout) {
			assert.ErrorIs(t, err, cause, "message %s: its ack timed out or the Destroy cut it", m.Data)
		}
	}
	assert.ErrorIs(t, o.errs["0"], ErrAckTimeout, "the first message was in flight")
}

func TestPublisherContextCancel(t *testing.T) {
	ts := startServer(t)
	onDisconnect, down := disconnected()
	_, js := ts.connect(onDisconnect)
	createStream(t, js, "CTX")
	ctx, cancel := context.WithCancelCause(context.Background())
	w := NewPublisher(js, Options{MaxPending: 4, AckTimeout: time.Minute, Context: ctx})
	serverGone(t, ts, down)

	o := newOutcomes()
	batch := msgs("CTX.x", "", 0, 20)
	for _, m := range batch {
		w.WriteChunk(m, o.cb(m))
	}
	cause := errors.New("shutting down")
	cancel(cause)
	err := closeWithin(t, w, 10*time.Second) // AckTimeout is a minute
	assert.ErrorIs(t, err, cause, "Close returns the context's cause")

	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range batch {
		assert.ErrorIs(t, o.errs[string(m.Data)], cause, "message %s", m.Data)
		assert.Equal(t, 1, o.calls[string(m.Data)], "callback of %s runs once", m.Data)
	}
}

func TestPublisherDestroyWithPublishesInFlight(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	createStream(t, js, "DESTROY")
	var batches atomic.Int64
	w := NewPublisher(js, Options{
		MaxPending: 32,
		OnBatch:    func(BatchStats) { batches.Add(1) },
	})

	o := newOutcomes()
	var wg sync.WaitGroup
	cause := errors.New("stop now")
	for g := range 3 {
		wg.Go(func() {
			for i := 0; ; i += 100 {
				err := write(context.Background(), w, msgs("DESTROY.x", fmt.Sprintf("%d-", g), i, 100), o)
				if err != nil {
					assert.ErrorIs(t, err, cause, "producer %d stops on the Destroy", g)
					return
				}
			}
		})
	}
	require.Eventually(t, func() bool { return batches.Load() >= 3 }, 20*time.Second, time.Millisecond, "three batches")
	w.Destroy(cause)
	assert.ErrorIs(t, closeWithin(t, w, 10*time.Second), cause, "Close after Destroy")
	wg.Wait()

	stored := map[string]bool{}
	for _, m := range readStream(t, js, "DESTROY") {
		stored[m.data] = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var ok, failed int
	for key, n := range o.calls {
		assert.Equal(t, 1, n, "callback of %s runs once", key)
		if o.errs[key] == nil {
			ok++
			assert.True(t, stored[key], "message %s was reported stored: it is in the stream", key)
		} else {
			failed++
		}
	}
	t.Logf("%d stored, %d failed at the Destroy", ok, failed)
	assert.Positive(t, ok, "messages before the Destroy are stored")
	assert.Equal(t, ok, len(stored), "the stream holds exactly the messages reported stored")
}

func TestNewPublisherPanicsOnMisuse(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	assert.PanicsWithValue(t, "natsstream: NewPublisher with a nil JetStream",
		func() { NewPublisher(nil, Options{}) }, "nil JetStream")
	tests := []struct {
		desc string
		give Options
		want string
	}{
		{"MaxPending", Options{MaxPending: -1}, "natsstream: negative Options.MaxPending"},
		{"AckTimeout", Options{AckTimeout: -time.Second}, "natsstream: negative Options.AckTimeout"},
		{"HighWaterMark", Options{HighWaterMark: -1}, "natsstream: negative Options.HighWaterMark"},
		{"LowWaterMark", Options{LowWaterMark: -1}, "natsstream: negative Options.LowWaterMark"},
		{"MaxBatch", Options{MaxBatch: -1}, "natsstream: negative Options.MaxBatch"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, func() { NewPublisher(js, tt.give) }, "negative %s", tt.desc)
		})
	}
	// goleak (TestMain) checks that no panic left a worker behind.
}
