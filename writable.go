package stream

import (
	"context"
	"io"
	"time"
)

// Callback is called once with the outcome of a write (nil on success).
type Callback func(err error)

// WriteFunc is the _write analogue: it must call done exactly once, from any
// goroutine, at any later time (or before it returns).
type WriteFunc func(chunk []byte, done Callback)

// WritevFunc is the _writev analogue.
type WritevFunc func(chunks [][]byte, done Callback)

// FinalFunc is the _final analogue: it runs before "finish".
type FinalFunc func(done Callback)

// DestroyFunc is the _destroy analogue: it releases resources; "close" follows done.
type DestroyFunc func(err error, done Callback)

// ConstructFunc is the _construct analogue: writes wait until done.
type ConstructFunc func(done Callback)

// Options configures a Writable.
type Options struct {
	HighWaterMark int
	Writev        WritevFunc
	Final         FinalFunc
	Destroy       DestroyFunc
	Construct     ConstructFunc
	Context       context.Context
	StallTimeout  time.Duration
}

// DefaultHighWaterMark is the high-water mark used when Options.HighWaterMark is 0.
const DefaultHighWaterMark = 16 * 1024

// Writable is a Node-style writable stream.
type Writable struct{}

// State is a snapshot of a Writable's internal state.
type State struct {
	Length, HighWaterMark, Buffered, Corked, PendingCallbacks      int
	Writing, NeedDrain, Ending, Ended, Finished, Destroyed, Closed bool
	Err                                                            error
}

func NewWritable(write WriteFunc, opts Options) *Writable { panic("unimplemented") }

func (w *Writable) WriteChunk(chunk []byte, cb Callback) bool { panic("unimplemented") }
func (w *Writable) Write(p []byte) (int, error)               { panic("unimplemented") }
func (w *Writable) WriteString(s string) (int, error)         { panic("unimplemented") }
func (w *Writable) ReadFrom(r io.Reader) (int64, error)       { panic("unimplemented") }
func (w *Writable) End()                                      { panic("unimplemented") }
func (w *Writable) Close() error                              { panic("unimplemented") }
func (w *Writable) Destroy(err error)                         { panic("unimplemented") }
func (w *Writable) Cork()                                     { panic("unimplemented") }
func (w *Writable) Uncork()                                   { panic("unimplemented") }
func (w *Writable) Ready() <-chan struct{}                    { panic("unimplemented") }
func (w *Writable) Done() <-chan struct{}                     { panic("unimplemented") }
func (w *Writable) Err() error                                { panic("unimplemented") }
func (w *Writable) State() State                              { panic("unimplemented") }

func (w *Writable) OnDrain(fn func()) (off func())      { panic("unimplemented") }
func (w *Writable) OnFinish(fn func()) (off func())     { panic("unimplemented") }
func (w *Writable) OnClose(fn func()) (off func())      { panic("unimplemented") }
func (w *Writable) OnError(fn func(error)) (off func()) { panic("unimplemented") }
