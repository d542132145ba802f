package stream

import (
	"context"
	"fmt"
	"time"
)

// WriteFuncOf is the sink of a [WritableOf]: it receives one item and must
// call done exactly once, from any goroutine, at once or later, as a
// [WriteFunc] does. The item belongs to the sink until it calls done.
type WriteFuncOf[T any] func(v T, done Callback)

// WritevFuncOf is the batch sink of a [WritableOf]: it receives waiting
// items in acceptance order, up to OptionsOf.MaxBatch and MaxBatchSize,
// and calls done once for all of them: nil, an error that fails the whole
// batch (and destroys the stream), or an [ItemErrors] with one outcome per
// item. The slice is the stream's, valid until done; the stream clears it
// afterwards so that the items can be garbage collected.
type WritevFuncOf[T any] func(items []T, done Callback)

// Overflow is what WriteChunk does when an item would take Length past
// MaxBuffered.
type Overflow uint8

const (
	// DropNewest refuses the new item: its callback and OnWritten get
	// ErrDropped, and WriteChunk returns false.
	DropNewest Overflow = iota
	// DropOldest evicts the oldest waiting items (never one in flight)
	// until the new one fits; each evicted item's callback and OnWritten
	// get ErrDropped at once, which may be before the outcome of an older
	// item still in flight (held back, the outcomes of a stalled sink's
	// evictions would grow without bound). If the items in flight alone
	// leave no room, the new item is dropped as with DropNewest.
	DropOldest
)

var overflowNames = [...]string{"DropNewest", "DropOldest"}

func (o Overflow) String() string { return enumString(overflowNames[:], o, "Overflow") }

// ItemErrors is a batch outcome with one entry per item: ItemErrors[i] is
// the error of items[i], or nil. Passed to a Writev's done, it fails only
// the items with an error, in their callbacks and OnWritten, and keeps the
// stream alive; any other error fails the whole batch and destroys the
// stream. It must have exactly one entry per item of the batch, else the
// stream is destroyed with ErrBadItemErrors. It works for the byte
// [Writable]'s Writev too, with one entry per chunk.
type ItemErrors []error

// Error summarises the failed items: how many, and the first error.
func (e ItemErrors) Error() string {
	failed, first := 0, error(nil)
	for _, err := range e {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if first == nil {
		return fmt.Sprintf("stream: %d items, none failed", len(e))
	}
	return fmt.Sprintf("stream: %d of %d items failed; first: %v", failed, len(e), first)
}

// OptionsOf configures a [WritableOf]. The zero value gives Node's
// objectMode defaults: every item counts 1, a high-water mark of 16 items,
// no cap, no batching limits.
type OptionsOf[T any] struct {
	// Size gives an item's weight in the units of the marks, called once
	// per WriteChunk before the stream's lock is taken; the result is kept
	// with the item. nil means every item counts 1. A negative result
	// panics in WriteChunk.
	Size func(T) int

	// HighWaterMark is the Length at which WriteChunk starts returning
	// false. 0 means 16 if Size is nil (Node's objectMode default), else
	// DefaultHighWaterMark.
	HighWaterMark int

	// LowWaterMark is the Length at or below which "drain" fires (and Wait
	// and Ready return) after a write returned false. 0: at empty (Node).
	LowWaterMark int

	// MaxBuffered, if positive, is a hard cap on Length, not below the
	// high-water mark: a WriteChunk that would exceed it is handled as
	// Overflow says. An item larger than MaxBuffered is taken only into an
	// empty stream. 0: no cap (Node).
	MaxBuffered int

	// Overflow is what WriteChunk does at MaxBuffered.
	Overflow Overflow

	// Writev, if set, receives the waiting items in batches whenever the
	// sink becomes free and two or more are waiting (or one, when write is
	// nil), up to MaxBatch and MaxBatchSize.
	Writev WritevFuncOf[T]

	// MaxBatch caps the items of one Writev call; 0 takes every waiting
	// item (Node).
	MaxBatch int

	// MaxBatchSize caps the Size units of one Writev call (an item larger
	// than it still goes alone); 0 means no cap.
	MaxBatchSize int

	// Linger, if positive (and Writev is set), lets a partial batch wait
	// while the sink is idle, at most Linger after its first item was
	// accepted, for more items to join it. The batch goes at once when it
	// is full (MaxBatch, MaxBatchSize), at the high-water mark, when a
	// producer waits (a write returned false) or flushes, and at End or
	// Destroy. One timer per stream, never a goroutine per batch.
	Linger time.Duration

	// OnWritten, if set, receives every item's outcome, in acceptance
	// order, just before its callback: nil once the sink completed it, else
	// its error (ErrDropped, ErrWriteAfterEnd, an ItemErrors entry, the
	// stream's error...). It runs like a callback: one at a time, never
	// under the lock, never inside the call that caused it. Unlike a
	// closure per WriteChunk, it costs no allocation.
	OnWritten func(v T, err error)

	// Final, Destroy, Construct, Context and StallTimeout are as in
	// [Options].
	Final        FinalFunc
	Destroy      DestroyFunc
	Construct    ConstructFunc
	Context      context.Context
	StallTimeout time.Duration
}

// objectModeHighWaterMark is the default high-water mark of a WritableOf
// without Size: 16 items, as Node's objectMode.
const objectModeHighWaterMark = 16

// WritableOf is the [Writable] for Go values: records, events, rows,
// messages. Items are accepted into a buffer and handed to a sink, one at a
// time or in batches, with high- and low-water marks in items (or in the
// units of OptionsOf.Size), an optional hard cap with an overflow policy,
// linger for fuller batches, and a per-item outcome. The life cycle,
// ordering, errors and events are exactly those of Writable: the two share
// one engine.
//
// A WritableOf must be created with [NewWritableOf]; every method of the
// zero value panics. It is safe for concurrent use by any number of
// goroutines: items of different goroutines reach the sink in the order
// the stream accepted them. It must be ended ([WritableOf.Close]) or
// destroyed to release its sink; once [WritableOf.Done] is closed it holds
// no goroutine. The stream owns an item from WriteChunk until its callback
// and OnWritten have run.
//
//	w := stream.NewWritableOf(nil, stream.OptionsOf[Event]{
//		Writev:   func(evs []Event, done stream.Callback) { done(insertBatch(evs)) },
//		MaxBatch: 500,
//	})
//	for _, ev := range events {
//		if !w.WriteChunk(ev, nil) {
//			if err := w.Wait(ctx); err != nil {
//				return err
//			}
//		}
//	}
//	return w.Close()
type WritableOf[T any] struct {
	core[T]
	size func(T) int
}

// writableOfName names the type in the panics of a WritableOf not made by
// NewWritableOf.
const writableOfName = "WritableOf"

// NewWritableOf returns a stream that hands accepted items to write, one
// call at a time, or to opts.Writev in batches. write may be nil if Writev
// is set: a single item then goes to Writev as a batch of one; with both
// set a single item goes to write (Node's rule). It panics if both are
// nil, if an option is negative, or if MaxBuffered is below the high-water
// mark, naming the field.
func NewWritableOf[T any](write WriteFuncOf[T], opts OptionsOf[T]) *WritableOf[T] {
	if write == nil && opts.Writev == nil {
		panic("stream: NewWritableOf: nil WriteFuncOf and nil OptionsOf.Writev")
	}
	hwm := opts.HighWaterMark
	if hwm == 0 {
		hwm = objectModeHighWaterMark
		if opts.Size != nil {
			hwm = DefaultHighWaterMark
		}
	}
	marks{opts.HighWaterMark, opts.LowWaterMark, opts.MaxBuffered, opts.MaxBatch, opts.MaxBatchSize}.
		check("NewWritableOf", "OptionsOf", hwm)
	w := &WritableOf[T]{size: opts.Size}
	w.init(settings[T]{
		write:        write,
		writev:       opts.Writev,
		final:        opts.Final,
		destroy:      opts.Destroy,
		construct:    opts.Construct,
		onWritten:    opts.OnWritten,
		hwm:          hwm,
		lwm:          opts.LowWaterMark,
		maxBuffered:  opts.MaxBuffered,
		overflow:     opts.Overflow,
		maxBatch:     opts.MaxBatch,
		maxBatchSize: opts.MaxBatchSize,
		linger:       opts.Linger,
		stall:        opts.StallTimeout,
		ctx:          opts.Context,
	})
	return w
}

// WriteChunk accepts v without waiting for room, as [Writable.WriteChunk]
// does a chunk: cb, which may be nil, runs once with v's outcome (after
// OnWritten), never inside WriteChunk; a free sink is called inline. It
// returns false once Length reached the high-water mark, or when the
// stream is ended or destroyed, or v was dropped at MaxBuffered: the
// caller should then call [WritableOf.Wait] before writing more. After End,
// cb gets ErrWriteAfterEnd and nothing else changes; after Destroy, an
// error matching ErrDestroyed. It panics if OptionsOf.Size returns a
// negative size for v.
func (w *WritableOf[T]) WriteChunk(v T, cb Callback) bool {
	size := 1
	if w.size != nil {
		if size = w.size(v); size < 0 {
			panic(fmt.Sprintf("stream: WritableOf.WriteChunk: OptionsOf.Size returned %d", size))
		}
	}
	if cb == nil {
		f := w.claimFast(size)
		if f == stillBusy {
			f = w.claimFastYielding(size)
		}
		if f != 0 {
			return w.writeFast(v, f)
		}
	} else if f := w.claimFastCallback(size, cb); f != 0 {
		return w.writeFast(v, f)
	}
	w.checkMade(writableOfName)
	return w.writeChunk(v, size, cb)
}

// Wait blocks until the stream can take more items without exceeding its
// high-water mark, as [Writable.Wait]: nil at once if no write returned
// false since the last "drain", else at the next "drain" (Length at or
// below LowWaterMark); the error a write would get now as soon as the
// stream is ended, destroyed or errored; or context.Cause(ctx). A Linger
// batch goes at once while someone waits. Waiting calls are woken one at
// a time, each passing the room on as it returns. Called from a callback
// of the same stream while it needs drain, it hangs forever (or until ctx
// is done).
func (w *WritableOf[T]) Wait(ctx context.Context) error {
	w.checkMade(writableOfName)
	return w.wait(ctx)
}

// Flush sends every waiting item (uncorking the stream, cutting Linger
// short) and returns once the callbacks of every item accepted before the
// call have run: nil if all succeeded, else the first of their errors (an
// ItemErrors entry or ErrDropped counts); on a stream that is ended,
// destroyed or errored, the error a write would get; or
// context.Cause(ctx). It does not end the stream. Called from a callback
// of the same stream, it hangs forever (or until ctx is done).
func (w *WritableOf[T]) Flush(ctx context.Context) error {
	w.checkMade(writableOfName)
	return w.flush(ctx)
}

// Cork buffers every write until a matching Uncork, as [Writable.Cork].
func (w *WritableOf[T]) Cork() {
	w.checkMade(writableOfName)
	w.cork()
}

// Uncork undoes one Cork; the last one flushes what is waiting, in batches
// when Writev is set, as [Writable.Uncork].
func (w *WritableOf[T]) Uncork() {
	w.checkMade(writableOfName)
	w.uncork()
}

// End signals that no more items will be written: the waiting items
// flush, Final runs, "finish" and "close" follow, as [Writable.End]. A
// write after End fails alone with ErrWriteAfterEnd.
func (w *WritableOf[T]) End() {
	w.checkMade(writableOfName)
	w.endStream()
}

// Close ends the stream and waits until it has closed, as
// [Writable.Close]: nil only if every accepted item reached the sink (items
// that failed alone through ItemErrors or were dropped do not make it
// fail: their own callbacks and OnWritten got their errors) and the hooks
// succeeded. From a callback of the same stream it hangs forever.
func (w *WritableOf[T]) Close() error {
	w.checkMade(writableOfName)
	return w.closeStream()
}

// Destroy tears the stream down without waiting for waiting items, as
// [Writable.Destroy].
func (w *WritableOf[T]) Destroy(err error) {
	w.checkMade(writableOfName)
	w.destroy(err)
}

// Ready returns a channel closed when the stream can take more items
// without exceeding its high-water mark, or when it ends or is destroyed,
// as [Writable.Ready]; for select loops (a producer that only waits should
// call Wait, which does not wake every waiter at once).
func (w *WritableOf[T]) Ready() <-chan struct{} {
	w.checkMade(writableOfName)
	return w.ready()
}

// Done returns a channel that is closed after "close".
func (w *WritableOf[T]) Done() <-chan struct{} {
	w.checkMade(writableOfName)
	return w.done
}

// Err returns the stream's first error, or nil.
func (w *WritableOf[T]) Err() error {
	w.checkMade(writableOfName)
	return w.errOf()
}

// State returns a snapshot of the stream's state; Length and HighWaterMark
// are in Size units (items by default), Buffered counts waiting items.
func (w *WritableOf[T]) State() State {
	w.checkMade(writableOfName)
	return w.state()
}

// OnDrain registers fn to run at each "drain", as [Writable.OnDrain]: after
// a write returned false, once Length fell to LowWaterMark.
func (w *WritableOf[T]) OnDrain(fn func()) (off func()) {
	if fn == nil {
		panic("stream: OnDrain: nil handler")
	}
	w.checkMade(writableOfName)
	return register(&w.core, &w.onDrain, fn)
}

// OnFinish registers fn to run at "finish", as [Writable.OnFinish].
func (w *WritableOf[T]) OnFinish(fn func()) (off func()) {
	if fn == nil {
		panic("stream: OnFinish: nil handler")
	}
	w.checkMade(writableOfName)
	return register(&w.core, &w.onFinish, fn)
}

// OnClose registers fn to run at "close", as [Writable.OnClose].
func (w *WritableOf[T]) OnClose(fn func()) (off func()) {
	if fn == nil {
		panic("stream: OnClose: nil handler")
	}
	w.checkMade(writableOfName)
	return register(&w.core, &w.onClose, fn)
}

// OnError registers fn to run with the stream's error, as
// [Writable.OnError]. Items that fail alone (ItemErrors, ErrDropped) are
// not the stream's error.
func (w *WritableOf[T]) OnError(fn func(error)) (off func()) {
	if fn == nil {
		panic("stream: OnError: nil handler")
	}
	w.checkMade(writableOfName)
	return register(&w.core, &w.onError, fn)
}
