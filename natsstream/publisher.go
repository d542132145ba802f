package natsstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/streamkit/stream"
)

// Defaults for the zero fields of Options.
const (
	// DefaultMaxPending is the default of Options.MaxPending. It stays below
	// nats.go's own default cap of 4000 asynchronous publishes per
	// JetStream context, so a Publisher does not stall in PublishMsgAsync.
	DefaultMaxPending = 1024

	// DefaultAckTimeout is the default of Options.AckTimeout.
	DefaultAckTimeout = 5 * time.Second
)

// ErrAckTimeout is the outcome of a message whose ack did not arrive within
// Options.AckTimeout. The server may still have stored it.
var ErrAckTimeout = errors.New("natsstream: no ack within AckTimeout")

// Options configures NewPublisher. The zero value is ready to use: every
// zero field means its default.
type Options struct {
	// MaxPending is the most publishes whose ack has not arrived, the
	// backpressure against the server: once a batch has MaxPending
	// publishes outstanding, the next waits for the oldest ack. 0 means
	// DefaultMaxPending. Keep it at or below the JetStream context's
	// PublishAsyncMaxPending (nats.go's default is 4000), or publishes stall
	// in nats.go and may fail with jetstream.ErrTooManyStalledMsgs.
	MaxPending int

	// AckTimeout bounds the wait for each message's ack, counted from its
	// publish: a message without an ack by then gets ErrAckTimeout. 0 means
	// DefaultAckTimeout.
	AckTimeout time.Duration

	// HighWaterMark is the number of messages buffered and in flight at
	// which WriteChunk returns false: what bounds the memory the stream
	// holds. 0 means 4 × MaxPending.
	HighWaterMark int

	// LowWaterMark is the number of messages at or below which a producer
	// that got false may go on ("drain", Ready, Wait). 0 means half the
	// high-water mark, so that producers refill the buffer while a batch
	// is in flight.
	LowWaterMark int

	// MaxBatch is the most messages per batch. 0 means MaxPending, so that
	// a batch is published in one go and done within AckTimeout of its
	// last publish. A larger batch is published in windows of MaxPending,
	// each waiting for the acks of the one before, and takes up to
	// AckTimeout per window when the server is gone.
	MaxBatch int

	// Linger lets a partial batch wait up to this long while no batch is in
	// flight, so that a trickle of messages goes out in fewer batches.
	// 0 is off.
	Linger time.Duration

	// OnWritten, if set, gets each message's outcome, in order: nil once the
	// server stored it, else the error.
	OnWritten func(m *nats.Msg, err error)

	// OnBatch, if set, gets the figures of each batch once all its acks are
	// in, from the goroutine that publishes. It must not block.
	OnBatch func(BatchStats)

	// Context, if set, destroys the stream with context.Cause(Context) when
	// it is done; a batch in flight then stops waiting for its acks, and
	// its messages without an outcome get the cause. (Destroy, by
	// contrast, waits for the batch in flight: the stream gives its sink
	// no signal until the call settles.)
	Context context.Context

	// StallTimeout, if > 0, destroys the stream with stream.ErrStalled when
	// a batch takes longer (see stream.OptionsOf). A batch of up to
	// MaxPending messages takes at most AckTimeout after its last publish:
	// keep StallTimeout above that.
	StallTimeout time.Duration
}

// BatchStats describes one batch, for Options.OnBatch.
type BatchStats struct {
	Items       int           // messages in the batch
	Failed      int           // of which not stored
	PeakPending int           // most acks outstanding at once
	Duration    time.Duration // from the first publish to the last outcome
}

// NewPublisher returns a stream whose items are published to JetStream,
// asynchronously, in order; each item's callback and OnWritten get its ack
// (nil once the server stored it, else the error).
//
// Messages waiting while a batch is in flight go out as the next batch
// (up to MaxBatch) as pipelined PublishMsgAsync calls, with at most
// MaxPending acks outstanding; the batch is done once every ack is in. A
// message the server rejects gets its own error (the batch's done gets
// stream.ItemErrors) and does not fail its neighbours or the stream.
//
// Order: messages reach their subjects in the order the stream accepted
// them. There are no retries: nats.go's retry on "no responders" is turned
// off, because it republishes a message after later ones. A failed message
// that you write again lands after the messages accepted after it; set a
// Nats-Msg-Id header (jetstream.MsgIDHeader) for the server to drop a
// duplicate when the first attempt was stored after all.
//
// A failed outcome does not prove the message is absent (the server may
// have stored it and lost only the ack); nil proves it is stored.
//
// Close flushes what is buffered, waits for every ack and returns the
// first message's error, if any: a Final hook reports it, so the stream
// ends errored and Err returns it too. Flush reports the first error of
// the messages before it without ending the stream. The publishing
// goroutine has ended once Done is closed; the connection and js stay the
// caller's to close. The stream owns a message (and may set its Header to
// an empty map) until its callback runs.
//
// Destroy fails the buffered messages at once; the batch in flight
// finishes first (the stream never tears a sink down under a call in
// flight), which takes at most AckTimeout after its last publish.
// Options.Context, when done, also cuts the batch in flight short.
//
// NewPublisher panics if js is nil or an option is negative.
func NewPublisher(js jetstream.JetStream, opts Options) *stream.WritableOf[*nats.Msg] {
	if js == nil {
		panic("natsstream: NewPublisher with a nil JetStream")
	}
	nonNegative("MaxPending", int64(opts.MaxPending))
	nonNegative("AckTimeout", int64(opts.AckTimeout))
	nonNegative("HighWaterMark", int64(opts.HighWaterMark))
	nonNegative("LowWaterMark", int64(opts.LowWaterMark))
	nonNegative("MaxBatch", int64(opts.MaxBatch))
	hwm := opts.highWaterMark()
	low, maxBatch := opts.LowWaterMark, opts.MaxBatch
	if low == 0 {
		low = hwm / 2
	}
	if maxBatch == 0 {
		maxBatch = opts.maxPending()
	}
	// The worker starts once the stream exists, so that a panic on a bad
	// option leaves no goroutine; no Writev can come before NewPublisher
	// returns.
	var p *batchPublisher
	w := stream.NewWritableOf[*nats.Msg](nil, stream.OptionsOf[*nats.Msg]{
		HighWaterMark: hwm,
		LowWaterMark:  low,
		MaxBatch:      maxBatch,
		Linger:        opts.Linger,
		OnWritten:     opts.OnWritten,
		Context:       opts.Context,
		StallTimeout:  opts.StallTimeout,
		Writev: func(items []*nats.Msg, done stream.Callback) {
			p.publish(items, func(errs []error) {
				if errs == nil {
					done(nil)
					return
				}
				done(stream.ItemErrors(errs))
			})
		},
		Final: func(done stream.Callback) { done(p.firstErr()) },
		Destroy: func(_ error, done stream.Callback) {
			p.stop()
			done(nil)
		},
	})
	p = newBatchPublisher(js, opts)
	return w
}

func nonNegative(name string, v int64) {
	if v < 0 {
		panic(fmt.Sprintf("natsstream: negative Options.%s", name))
	}
}

func (o Options) maxPending() int {
	if o.MaxPending > 0 {
		return o.MaxPending
	}
	return DefaultMaxPending
}

func (o Options) ackTimeout() time.Duration {
	if o.AckTimeout > 0 {
		return o.AckTimeout
	}
	return DefaultAckTimeout
}

func (o Options) highWaterMark() int {
	if o.HighWaterMark > 0 {
		return o.HighWaterMark
	}
	return 4 * o.maxPending()
}
