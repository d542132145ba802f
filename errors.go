package stream

import "errors"

// Sentinel errors. Errors returned by this package match them with
// [errors.Is]; most are wrapped with context (for example, a write to a
// stream destroyed with err matches both ErrDestroyed and err).
var (
	// ErrWriteAfterEnd is returned for a write made after End (Node's
	// ERR_STREAM_WRITE_AFTER_END). Unlike in Node, such a write fails alone:
	// the stream still finishes what it accepted before End.
	ErrWriteAfterEnd = errors.New("stream: write after end")

	// ErrDestroyed is returned for a write made after Destroy (Node's
	// ERR_STREAM_DESTROYED), given to the callbacks of writes that were still
	// buffered when a Destroy(nil) cut the stream short, and returned by
	// Close when the stream was destroyed before it finished.
	ErrDestroyed = errors.New("stream: destroyed")

	// ErrMultipleCallback destroys the stream when a sink calls done more
	// than once for one call, or when no call is in flight (Node's
	// ERR_MULTIPLE_CALLBACK).
	ErrMultipleCallback = errors.New("stream: done called more than once")

	// ErrStalled destroys the stream when a sink call does not call done
	// within Options.StallTimeout.
	ErrStalled = errors.New("stream: sink stalled")

	// ErrPrematureClose is returned by Finished for a stream that closed
	// without finishing and without an error (Node's
	// ERR_STREAM_PREMATURE_CLOSE).
	ErrPrematureClose = errors.New("stream: premature close")

	// ErrDropped is the outcome of an item (or chunk) that Overflow
	// dropped at MaxBuffered: the new one with DropNewest, the oldest
	// waiting ones with DropOldest. Its callback and OnWritten get it;
	// the stream goes on.
	ErrDropped = errors.New("stream: dropped at MaxBuffered")

	// ErrBadItemErrors destroys a stream whose Writev completed with an
	// ItemErrors of another length than its batch.
	ErrBadItemErrors = errors.New("stream: ItemErrors does not match the batch")
)

// errSinkPanicked destroys a stream whose sink function or hook panicked.
var errSinkPanicked = errors.New("stream: sink panicked")
