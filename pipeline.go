package stream

import (
	"context"
	"io"
)

func Pipeline(ctx context.Context, dst *Writable, srcs ...io.Reader) error { panic("unimplemented") }

// Finished waits until w has closed, the analogue of Node's
// stream.finished. It returns nil if w finished (every write reached the
// sink, Final and the Destroy hook succeeded), else w's error, or
// ErrPrematureClose if w was destroyed without an error before it
// finished. If ctx is done first it returns context.Cause(ctx) and leaves w
// as it is: Finished never destroys w. On a stream already closed it
// returns at once.
//
// Unlike Node, which reports an error at the "error" event, Finished always
// waits for "close": once it returns, w has released its sink. It must not
// be called from a callback or event handler of w.
func Finished(ctx context.Context, w *Writable) error {
	select {
	case <-w.Done():
		return closeResult(w)
	default:
	}
	select {
	case <-w.Done():
		return closeResult(w)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// closeResult is the outcome of a closed (or closing) stream, as Finished
// reports it.
func closeResult(w *Writable) error {
	st := w.State()
	switch {
	case st.Err != nil:
		return st.Err
	case st.Finished:
		return nil
	default:
		return ErrPrematureClose
	}
}
