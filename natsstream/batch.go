package natsstream

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/streamkit/stream"
)

// A batchPublisher is the sink of NewPublisher's stream: it publishes one batch
// of messages at a time as pipelined asynchronous publishes and reports
// each message's ack.
//
// One goroutine, the worker, owns the JetStream publishing: publish hands
// it a batch and returns at once, so the stream's producers never wait for
// the server inside WriteChunk. The worker keeps at most maxPending
// publishes whose ack has not been collected, waits for the acks in
// publication order (the server acks a stream's messages in the order it
// stores them, so the oldest is almost always the next to resolve), and
// calls the batch's completion once every item has an outcome. Waiting for
// the oldest ack is what frees the slot for the next publish: that is the
// backpressure against the server. Batches never overlap (the stream has
// at most one sink call in flight), so the worker needs no lock.
type batchPublisher struct {
	js         jetstream.JetStream
	maxPending int
	ackTimeout time.Duration
	ctx        context.Context
	onBatch    func(BatchStats)

	batches chan batch    // publish → worker; capacity 1 so that done, on the worker, may publish again
	quit    chan struct{} // closed by stop
	exited  chan struct{} // closed when the worker returns
	stopped sync.Once

	// first is the first error of any item, for Close (through Final).
	// The worker sets it; Final reads it on another goroutine.
	first atomic.Pointer[error]

	// The worker's own state, reused from batch to batch.
	pending []pendingAck // ring of uncollected publishes, oldest at head
	head, n int
	timer   *time.Timer
}

// batch is one sink call: items to publish and the completion that gets
// their outcomes (nil when every item was stored).
type batch struct {
	items []*nats.Msg
	done  func(errs []error)
}

// pendingAck is a publish whose ack the worker has not collected yet.
type pendingAck struct {
	ack      jetstream.PubAckFuture
	item     int       // index in the batch
	deadline time.Time // when AckTimeout runs out for it
}

// publishOpts turns off nats.go's own retry on "no responders": it
// republishes a message after a delay while later messages go out, which
// would store them out of order without telling anyone.
var publishOpts = []jetstream.PublishOpt{jetstream.WithRetryAttempts(0)}

// newBatchPublisher starts the worker; stop ends it.
func newBatchPublisher(js jetstream.JetStream, o Options) *batchPublisher {
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	p := &batchPublisher{
		js:         js,
		maxPending: o.maxPending(),
		ackTimeout: o.ackTimeout(),
		ctx:        ctx,
		onBatch:    o.OnBatch,
		batches:    make(chan batch, 1),
		quit:       make(chan struct{}),
		exited:     make(chan struct{}),
		timer:      time.NewTimer(time.Hour),
	}
	p.timer.Stop()
	p.pending = make([]pendingAck, p.maxPending)
	go p.run()
	return p
}

// publish hands items to the worker. done is called once, from the worker,
// after every item has its outcome: nil if all were stored, else a slice
// with one entry per item (nil for a stored item). publish never blocks
// while no other batch is in flight; done may call publish again. After
// stop, done gets stream.ErrDestroyed for every item. publish must not run
// concurrently with stop (the stream's Destroy hook, which calls stop,
// runs after the last sink call).
func (p *batchPublisher) publish(items []*nats.Msg, done func(errs []error)) {
	select {
	case <-p.quit:
		done(failAll(len(items), stream.ErrDestroyed))
	default:
		p.batches <- batch{items, done}
	}
}

// stop ends the worker and waits for it. A batch in flight stops waiting
// for its acks: the items without an outcome get stream.ErrDestroyed.
// stop is idempotent.
func (p *batchPublisher) stop() {
	p.stopped.Do(func() { close(p.quit) })
	<-p.exited
}

// run is the worker: one batch at a time until stop.
func (p *batchPublisher) run() {
	defer close(p.exited)
	for {
		select {
		case b := <-p.batches:
			b.done(p.publishBatch(b.items))
		case <-p.quit:
			return
		}
	}
}

// firstErr returns the first error of any item so far, or nil.
func (p *batchPublisher) firstErr() error {
	if err := p.first.Load(); err != nil {
		return *err
	}
	return nil
}

// failAll returns n outcomes, all err.
func failAll(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// publishBatch publishes items in order with at most maxPending acks
// outstanding and returns their outcomes (nil if every item was stored).
// It returns early, failing what has no outcome yet, when the context is
// done or stop is called.
func (p *batchPublisher) publishBatch(items []*nats.Msg) []error {
	var errs []error
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(items))
		}
		errs[i] = err
	}
	stats := BatchStats{Items: len(items)}
	start := time.Now()
	next := 0
	if err := context.Cause(p.ctx); err != nil {
		// Publish nothing after the context is done.
		for ; next < len(items); next++ {
			fail(next, err)
		}
	}
	for next < len(items) || p.n > 0 {
		if next < len(items) && p.n < p.maxPending {
			// One clock reading per burst: its publishes are microseconds
			// apart, far below any sensible AckTimeout.
			deadline := time.Now().Add(p.ackTimeout)
			for ; next < len(items) && p.n < p.maxPending; next++ {
				ack, err := p.js.PublishMsgAsync(items[next], publishOpts...)
				if err != nil {
					fail(next, err)
					continue
				}
				p.push(pendingAck{ack, next, deadline})
			}
		}
		stats.PeakPending = max(stats.PeakPending, p.n)
		if p.n == 0 {
			continue
		}
		oldest := p.pending[p.head]
		err, stopErr := p.wait(oldest)
		if stopErr != nil {
			// Stop waiting: everything without an outcome fails with the
			// reason. nats.go resolves the futures later; nobody reads them.
			for ; p.n > 0; p.pop() {
				fail(p.pending[p.head].item, stopErr)
			}
			for ; next < len(items); next++ {
				fail(next, stopErr)
			}
			break
		}
		p.pop()
		if err != nil {
			fail(oldest.item, err)
		}
	}
	for _, err := range errs {
		if err != nil {
			stats.Failed++
			p.first.CompareAndSwap(nil, &err)
		}
	}
	stats.Duration = time.Since(start)
	if p.onBatch != nil {
		p.onBatch(stats)
	}
	return errs
}

// wait waits for a's ack and returns its outcome, or, as stopErr, why the
// worker stopped waiting (the context's cause or stream.ErrDestroyed).
func (p *batchPublisher) wait(a pendingAck) (err, stopErr error) {
	// Most acks are in by the time the worker gets to them: look at the ack
	// before making the error channel or arming the timer (each channel of
	// a future is allocated on first use).
	ok := a.ack.Ok()
	select {
	case <-ok:
		return nil, nil
	default:
	}
	failed := a.ack.Err()
	select {
	case <-ok:
		return nil, nil
	case err := <-failed:
		return err, nil
	default:
	}
	p.timer.Reset(time.Until(a.deadline))
	defer p.timer.Stop()
	select {
	case <-ok:
		return nil, nil
	case err := <-failed:
		return err, nil
	case <-p.timer.C:
		return ErrAckTimeout, nil
	case <-p.ctx.Done():
		return nil, context.Cause(p.ctx)
	case <-p.quit:
		return nil, stream.ErrDestroyed
	}
}

func (p *batchPublisher) push(a pendingAck) {
	p.pending[(p.head+p.n)%len(p.pending)] = a
	p.n++
}

func (p *batchPublisher) pop() {
	p.pending[p.head] = pendingAck{} // let the collector free the future
	p.head = (p.head + 1) % len(p.pending)
	p.n--
}
