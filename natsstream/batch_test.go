package natsstream

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/streamkit/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the batch publisher alone, against a real server: the sink
// functions NewPublisher wires into a stream.

// publishBatch publishes one batch and waits up to timeout for its done.
func publishBatch(t testing.TB, p *batchPublisher, items []*nats.Msg, timeout time.Duration) []error {
	t.Helper()
	got := make(chan []error, 1)
	p.publish(items, func(errs []error) { got <- errs })
	select {
	case errs := <-got:
		if errs != nil {
			require.Len(t, errs, len(items), "one outcome per item")
		}
		return errs
	case <-time.After(timeout):
		require.FailNow(t, "batch not done", "waited %v for the outcomes of %d items", timeout, len(items))
		return nil
	}
}

// newTestPublisher makes a batch publisher; cleanup stops it.
func newTestPublisher(t testing.TB, js jetstream.JetStream, o Options) *batchPublisher {
	p := newBatchPublisher(js, o)
	t.Cleanup(p.stop)
	return p
}

func TestBatchInOrder(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	createStream(t, js, "ORDER")
	var mu sync.Mutex
	var stats []BatchStats
	p := newTestPublisher(t, js, Options{MaxPending: 256, OnBatch: func(s BatchStats) {
		mu.Lock()
		stats = append(stats, s)
		mu.Unlock()
	}})

	// 20,000 here; the 100,000 of the issue go through the Writable in
	// TestPublisherInOrderFromManyGoroutines.
	const total, size = 20_000, 4096
	for from := 0; from < total; from += size {
		n := min(size, total-from)
		errs := publishBatch(t, p, msgs("ORDER.x", "", from, n), 30*time.Second)
		require.Nil(t, errs, "batch at %d: every message stored", from)
	}

	got := readStream(t, js, "ORDER")
	require.Len(t, got, total, "every message in the stream")
	for i, m := range got {
		if !assert.Equal(t, strconv.Itoa(i), m.data, "message at stream sequence %d", m.seq) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, stats, (total+size-1)/size, "OnBatch once per batch")
	for _, s := range stats {
		assert.LessOrEqual(t, s.PeakPending, 256, "acks outstanding never above MaxPending")
		assert.Zero(t, s.Failed, "no failures")
	}
	assert.Equal(t, 256, stats[0].PeakPending, "a batch larger than MaxPending fills the window")
}

func TestBatchLimitRejectsOnlyTheOverflow(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	createStream(t, js, "FULL", limitMsgs(60))
	p := newTestPublisher(t, js, Options{MaxPending: 16})

	errs := publishBatch(t, p, msgs("FULL.x", "", 0, 100), 10*time.Second)
	require.NotNil(t, errs, "the stream is full after 60 messages")
	for i, err := range errs {
		if i < 60 {
			assert.NoError(t, err, "message %d fits", i)
			continue
		}
		var apiErr *jetstream.APIError
		if assert.ErrorAs(t, err, &apiErr, "message %d: the server's rejection", i) {
			assert.Contains(t, apiErr.Description, "maximum messages", "message %d", i)
		}
	}
	got := readStream(t, js, "FULL")
	require.Len(t, got, 60, "stored messages")
	for i, m := range got {
		assert.Equal(t, strconv.Itoa(i), m.data, "stored message %d", i)
	}
}

func TestBatchRejectedMessageDoesNotFailNeighbours(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	createStream(t, js, "SIZE", func(c *jetstream.StreamConfig) { c.MaxMsgSize = 64 })
	p := newTestPublisher(t, js, Options{MaxPending: 8})

	items := msgs("SIZE.x", "", 0, 50)
	for i := 5; i < len(items); i += 10 {
		items[i].Data = []byte(strings.Repeat("x", 100)) // too large for the stream
	}
	errs := publishBatch(t, p, items, 10*time.Second)
	require.NotNil(t, errs, "some messages are too large")
	var want []string
	for i, err := range errs {
		if i%10 == 5 {
			assert.Error(t, err, "message %d is too large", i)
			continue
		}
		assert.NoError(t, err, "message %d, a neighbour of a rejected one", i)
		want = append(want, strconv.Itoa(i))
	}
	assert.Equal(t, want, storedData(t, js, "SIZE"), "the stored messages, in order")
}

func TestBatchAckTimeout(t *testing.T) {
	ts := startServer(t)
	onDisconnect, down := disconnected()
	_, js := ts.connect(onDisconnect)
	createStream(t, js, "GONE")
	p := newTestPublisher(t, js, Options{MaxPending: 4, AckTimeout: 100 * time.Millisecond})

	serverGone(t, ts, down)
	start := time.Now()
	errs := publishBatch(t, p, msgs("GONE.x", "", 0, 10), 10*time.Second)
	elapsed := time.Since(start)
	require.NotNil(t, errs, "no message can be stored")
	for i, err := range errs {
		assert.ErrorIs(t, err, ErrAckTimeout, "message %d", i)
	}
	// 10 messages, 4 at a time: three rounds of 100ms.
	assert.Less(t, elapsed, 5*time.Second, "the batch ends within a bound set by AckTimeout")
}

func TestBatchServerRestart(t *testing.T) {
	ts := startServer(t)
	nc, js := ts.connect()
	createStream(t, js, "RESTART")
	p := newTestPublisher(t, js, Options{MaxPending: 64, AckTimeout: time.Second})

	// A producer publishes batches until told to stop, recording every
	// item's outcome; the server restarts under it.
	type outcome struct {
		data string
		err  error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		batches  int
	)
	tick := make(chan int, 1000)
	stop := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for from := 0; ; from += 200 {
			select {
			case <-stop:
				return
			default:
			}
			items := msgs("RESTART.x", "", from, 200)
			errs := publishBatch(t, p, items, 30*time.Second)
			mu.Lock()
			for i, m := range items {
				var err error
				if errs != nil {
					err = errs[i]
				}
				outcomes = append(outcomes, outcome{string(m.Data), err})
			}
			batches++
			n := batches
			mu.Unlock()
			tick <- n
		}
	}()
	awaitBatches := func(n int, what string) {
		t.Helper()
		for {
			select {
			case got := <-tick:
				if got >= n {
					return
				}
			case <-time.After(20 * time.Second):
				require.FailNow(t, "timed out", "waited 20s for %s", what)
			}
		}
	}
	awaitBatches(5, "five batches before the restart")
	ts.restart()
	mu.Lock()
	restartedAt := batches
	mu.Unlock()
	awaitBatches(restartedAt+10, "ten batches after the restart")
	close(stop)
	waitFor(t, exited, "the producer to stop")
	require.Eventually(t, nc.IsConnected, 10*time.Second, 10*time.Millisecond, "client reconnected")

	stored := map[string]uint64{}
	var order []string
	for _, m := range readStream(t, js, "RESTART") {
		_, dup := stored[m.data]
		assert.False(t, dup, "message %s stored once", m.data)
		stored[m.data] = m.seq
		order = append(order, m.data)
	}
	mu.Lock()
	defer mu.Unlock()
	var failed int
	for _, o := range outcomes {
		if o.err != nil {
			failed++
			continue
		}
		_, ok := stored[o.data]
		assert.True(t, ok, "message %s was reported stored: it is in the stream", o.data)
	}
	t.Logf("%d messages, %d failed, %d stored", len(outcomes), failed, len(stored))
	assert.Positive(t, failed, "the restart cut some acks short")
	// Without retries, what is stored is in acceptance order.
	for i := 1; i < len(order); i++ {
		prev, _ := strconv.Atoi(order[i-1])
		cur, _ := strconv.Atoi(order[i])
		if !assert.Less(t, prev, cur, "stream order at position %d", i) {
			break
		}
	}
}

func TestBatchContextCancel(t *testing.T) {
	ts := startServer(t)
	onDisconnect, down := disconnected()
	_, js := ts.connect(onDisconnect)
	createStream(t, js, "CTX")
	ctx, cancel := context.WithCancelCause(context.Background())
	p := newTestPublisher(t, js, Options{MaxPending: 4, AckTimeout: time.Minute, Context: ctx})

	serverGone(t, ts, down)
	got := make(chan []error, 1)
	p.publish(msgs("CTX.x", "", 0, 10), func(errs []error) { got <- errs })
	cause := errors.New("shutting down")
	cancel(cause)
	select {
	case errs := <-got:
		require.Len(t, errs, 10, "every item has an outcome")
		for i, err := range errs {
			assert.ErrorIs(t, err, cause, "message %d gets the context's cause", i)
		}
	case <-time.After(10 * time.Second):
		require.FailNow(t, "timed out", "waited 10s for the batch to stop on ctx cancel (AckTimeout is a minute)")
	}

	errs := publishBatch(t, p, msgs("CTX.x", "", 10, 3), 10*time.Second)
	for i, err := range errs {
		assert.ErrorIs(t, err, cause, "message %d after the cancel is not published", i)
	}
}

func TestBatchStopInFlight(t *testing.T) {
	ts := startServer(t)
	onDisconnect, down := disconnected()
	_, js := ts.connect(onDisconnect)
	createStream(t, js, "STOP")
	p := newTestPublisher(t, js, Options{MaxPending: 4, AckTimeout: time.Minute})

	serverGone(t, ts, down)
	got := make(chan []error, 1)
	p.publish(msgs("STOP.x", "", 0, 10), func(errs []error) { got <- errs })
	stopped := make(chan struct{})
	go func() { p.stop(); close(stopped) }()
	waitFor(t, stopped, "stop with a batch in flight (AckTimeout is a minute)")
	select {
	case errs := <-got:
		require.Len(t, errs, 10, "every item has an outcome")
		for i, err := range errs {
			assert.ErrorIs(t, err, stream.ErrDestroyed, "message %d", i)
		}
	default:
		require.FailNow(t, "stop returned before the batch's done ran")
	}

	errs := publishBatch(t, p, msgs("STOP.x", "", 10, 2), time.Second)
	for i, err := range errs {
		assert.ErrorIs(t, err, stream.ErrDestroyed, "message %d after stop", i)
	}
}

func TestBatchConnectionClosed(t *testing.T) {
	ts := startServer(t)
	onDisconnect, down := disconnected()
	nc, js := ts.connect(onDisconnect)
	createStream(t, js, "CLOSED")
	p := newTestPublisher(t, js, Options{MaxPending: 4, AckTimeout: 500 * time.Millisecond})

	// The connection closes with four publishes in flight (the server is
	// gone, so no ack comes): nats.go never resolves those, and fails the
	// later publishes at once.
	serverGone(t, ts, down)
	got := make(chan []error, 1)
	p.publish(msgs("CLOSED.x", "", 0, 10), func(errs []error) { got <- errs })
	require.Eventually(t, func() bool { return js.PublishAsyncPending() == 4 }, 10*time.Second, time.Millisecond,
		"four publishes in flight")
	nc.Close()
	select {
	case errs := <-got:
		require.Len(t, errs, 10, "every item fails")
		for i, err := range errs[:4] {
			assert.ErrorIs(t, err, ErrAckTimeout, "message %d was in flight", i)
		}
		for i, err := range errs[4:] {
			assert.ErrorIs(t, err, nats.ErrConnectionClosed, "message %d came after the close", i+4)
		}
	case <-time.After(10 * time.Second):
		require.FailNow(t, "timed out", "waited 10s for the batch on a closed connection")
	}
}

func TestBatchNoStreamFailsAlone(t *testing.T) {
	ts := startServer(t)
	_, js := ts.connect()
	createStream(t, js, "SOME")
	p := newTestPublisher(t, js, Options{})

	// Every third message goes to a subject no stream listens on: the
	// server answers "no responders", which nats.go would retry after a
	// delay, behind the messages published meanwhile; the publisher turns
	// that retry off, so each fails alone and is sent once (the server's
	// count of messages in tells).
	items := msgs("SOME.x", "", 0, 30)
	for i := 2; i < len(items); i += 3 {
		items[i].Subject = "NONE.x"
	}
	before, err := ts.srv.Varz(nil)
	require.NoError(t, err, "server counters")
	errs := publishBatch(t, p, items, 10*time.Second)
	after, err := ts.srv.Varz(nil)
	require.NoError(t, err, "server counters")
	assert.Equal(t, int64(len(items)), after.InMsgs-before.InMsgs, "the server got each message once: no retry")
	require.NotNil(t, errs, "some messages have no stream")
	var want []string
	for i, err := range errs {
		if i%3 == 2 {
			assert.ErrorIs(t, err, jetstream.ErrNoStreamResponse, "message %d has no stream", i)
			continue
		}
		assert.NoError(t, err, "message %d", i)
		want = append(want, strconv.Itoa(i))
	}
	assert.Equal(t, want, storedData(t, js, "SOME"), "the stored messages, in order")
}
