package natsstream

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
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
	// which WriteChunk returns false. 0 means 8 × MaxPending.
	HighWaterMark int

	// LowWaterMark is the number of messages at or below which a producer
	// that got false may go on ("drain", Ready, Wait). 0 means half the
	// high-water mark, so that producers refill the buffer while a batch
	// is in flight.
	LowWaterMark int

	// MaxBatch is the most messages per batch. 0 means half the high-water
	// mark.
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
	// it is done; a batch in flight then stops waiting for its acks.
	Context context.Context

	// StallTimeout, if > 0, destroys the stream with stream.ErrStalled when
	// a batch takes longer (see stream.OptionsOf). A batch takes up to
	// AckTimeout after its last publish: keep StallTimeout above it.
	StallTimeout time.Duration
}

// BatchStats describes one batch, for Options.OnBatch.
type BatchStats struct {
	Items       int           // messages in the batch
	Failed      int           // of which not stored
	PeakPending int           // most acks outstanding at once
	Duration    time.Duration // from the first publish to the last outcome
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
	return 8 * o.maxPending()
}
