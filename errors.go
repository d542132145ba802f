package stream

import "errors"

var (
	ErrWriteAfterEnd    = errors.New("stream: write after end")
	ErrDestroyed        = errors.New("stream: destroyed")
	ErrMultipleCallback = errors.New("stream: callback called multiple times")
	ErrStalled          = errors.New("stream: sink stalled")
	ErrPrematureClose   = errors.New("stream: premature close")
)
