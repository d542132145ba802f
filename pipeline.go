package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
)

// pipelineBufMin is the smallest read buffer of Pipeline. Each chunk costs
// a sink call and the wake-ups of handing it to the sink's goroutine and
// its buffer back, and on two cores the write reads the buffer from the
// other core's cache: against a 1 MiB read/write loop, a file copy
// measured 0.73× with 256 KiB reads, 0.81× with 512 KiB and 0.97× with
// 1 MiB. Two 512 KiB buffers stay within the 2 MiB a pipeline into a slow
// sink may hold; two of 1 MiB would not.
const pipelineBufMin = 512 * 1024

// Pipeline copies each source, in order, into dst with backpressure, then
// ends dst and waits until it has closed: the analogue of Node's
// stream.pipeline(...srcs, dst, cb). It returns nil only if dst finished:
// every byte read reached the sink, and Final and the Destroy hook
// succeeded.
//
// Pipeline reads into two buffers of its own, of the high-water mark
// rounded up to a power of two between 512 KiB and 1 MiB, and hands each
// read to dst as one chunk, without copying it, while it reads the next
// one. It hands a chunk over only when dst needs no drain, so whatever the
// size of the sources it holds at most those two buffers, plus what dst
// had buffered before. A source whose Read returns little at a time makes
// small chunks: Pipeline does not wait to fill a buffer, so that data
// flows as soon as it is read.
//
// Every source that is an io.Closer is closed once Pipeline is done with
// it: after its EOF, and, if the pipeline fails, the ones not read to the
// end. A source's Close error fails the pipeline.
//
// On the first error (a Read, the sink, ctx being done, or dst being
// destroyed by someone else) Pipeline stops reading, destroys dst with that
// error, closes the io.Closer sources and waits for dst to close; it then
// returns that error, joined with any error from closing the sources. A
// read error comes wrapped with the index of its source; a sink error as
// dst's error; when ctx is done, context.Cause(ctx) (context.Canceled, or
// the cause given to a context.CancelCauseFunc); if dst was destroyed
// without an error, an error matching ErrPrematureClose. errors.Is finds
// the cause in every case. A sink failure stops Pipeline within a read or
// two, not at the end of the source.
//
// To unblock a pending Read when ctx is done or dst fails, Pipeline closes
// the io.Closer sources while Read may still run: os.File, net.Conn and
// io.PipeReader allow that. A Read that cannot be interrupted delays
// Pipeline's return until it returns. Pipeline leaves no goroutine behind.
// It must not be called from a callback or event handler of dst.
//
// Pipeline uses neither the sources' WriteTo nor dst's ReadFrom: both
// would copy the data once more than its own loop, which hands the read
// buffer itself to the sink.
func Pipeline(ctx context.Context, dst *Writable, srcs ...io.Reader) error {
	p := &pipeline{dst: dst, srcs: srcs, closed: make([]bool, len(srcs))}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Cancelling ctx, or dst closing early (see below), stops the copy from
	// outside: destroy dst, which unblocks a wait for drain and interrupts
	// its sink, and close the sources, which unblocks a pending Read.
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(aborted)
		p.fail(context.Cause(ctx))
		p.closeSources()
	})
	off := dst.OnClose(func() {
		if err := closeResult(dst); err != nil {
			cancel(err)
		}
	})

	p.initBufs()
	err := p.copy(ctx)
	off()
	if err != nil {
		p.fail(err)
		p.closeSources()
	} else {
		p.mu.Lock()
		p.ended = true
		p.mu.Unlock()
		dst.End()
	}
	<-dst.Done()
	if !stop() {
		<-aborted
	}
	err = p.result()
	if err == nil {
		p.releaseBufs()
	}
	return err
}

// Finished waits until w has closed, the analogue of Node's
// stream.finished. It returns nil if w finished (every write reached the
// sink, Final and the Destroy hook succeeded), else w's error, or
// ErrPrematureClose if w was destroyed without an error before it
// finished. If ctx is done first it returns context.Cause(ctx) and leaves w
// as it is: Finished never destroys w. On a stream already closed it
// returns at once.
//
// Unlike Node, which reports an error at the "error" event, Finished always
// waits for "close": once it returns, w has released its sink. Called from
// a callback or event handler of w it hangs forever (or until ctx is done),
// since "close" runs after the handler returns.
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

// PipelineSeq writes every value of src, in order, into dst with
// backpressure, then ends dst and waits until it has closed: Pipeline for
// Go values. It returns nil only if dst finished (every item accepted
// reached the sink, or failed alone through ItemErrors or Overflow, in its
// own OnWritten). On the first error it stops ranging over src and
// destroys dst with it: an error yielded by src is returned as it is; a
// sink error as dst's error; when ctx is done, context.Cause(ctx); if dst
// was ended by someone else, ErrWriteAfterEnd; if it was destroyed without
// an error, an error matching ErrPrematureClose. PipelineSeq waits for dst
// to close in every case.
//
// ctx stops the copy between values; a src that blocks producing the next
// value must watch ctx itself. PipelineSeq must not be called from a
// callback or event handler of dst.
func PipelineSeq[T any](ctx context.Context, dst *WritableOf[T], src iter.Seq2[T, error]) error {
	stop := context.AfterFunc(ctx, func() { dst.Destroy(context.Cause(ctx)) })
	defer stop()
	var srcErr, waitErr error
	for v, err := range src {
		if err != nil {
			srcErr = err
			break
		}
		if !dst.WriteChunk(v, nil) {
			if waitErr = dst.Wait(ctx); waitErr != nil {
				break
			}
		}
	}
	if srcErr != nil {
		dst.Destroy(srcErr)
	}
	err := dst.Close()
	switch {
	case srcErr != nil:
		return srcErr
	case err == ErrDestroyed:
		return fmt.Errorf("%w: %w", ErrPrematureClose, err)
	case err == nil && waitErr != nil:
		return waitErr // dst was ended under the copy
	}
	return err
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

// pipeline is the state of one Pipeline call.
type pipeline struct {
	dst  *Writable
	srcs []io.Reader

	// free holds the read buffers the sink is not using: both of them
	// once dst has closed, since every write callback runs before "close".
	free chan *readBuf
	bufs [2]readBuf

	mu        sync.Mutex // guards the fields below
	err       error      // first error
	ended     bool       // the copy succeeded and dst was ended
	errLate   bool       // err came after ended (ctx, while dst was finishing)
	closed    []bool     // closed[i]: srcs[i] was closed, or is being closed
	closeErrs []error    // from closing sources after the first error
}

// readBuf is one of the two read buffers. cb, bound once, returns it to
// free when the sink is done with it, and records a write's error.
type readBuf struct {
	s  *slab
	cb Callback
}

// initBufs takes the two read buffers from the pool.
func (p *pipeline) initBufs() {
	size := pieceSize(max(p.dst.hwm, pipelineBufMin))
	p.free = make(chan *readBuf, len(p.bufs))
	for i := range p.bufs {
		b := &p.bufs[i]
		b.s = getSlab(size)
		b.cb = func(err error) {
			if err != nil {
				if errors.Is(err, ErrDestroyed) {
					// The echo of a Destroy from elsewhere (a rejected,
					// buffered or interrupted write), not a cause: dst closed
					// early, and result reports dst's own error, if any.
					err = ErrPrematureClose
				}
				p.fail(err)
			}
			p.free <- b // never blocks: there is room for every buffer
		}
		p.free <- b
	}
}

// releaseBufs returns the read buffers to the pool after a clean finish.
// After a failure they are left to the collector: dst may have abandoned a
// stalled write (Options.StallTimeout) whose sink still reads one.
func (p *pipeline) releaseBufs() {
	if len(p.free) == len(p.bufs) {
		for i := range p.bufs {
			putSlab(p.bufs[i].s)
		}
	}
}

// copy reads every source into dst and closes it after its EOF.
func (p *pipeline) copy(ctx context.Context) error {
	for i, r := range p.srcs {
		if err := p.copySource(ctx, i, r); err != nil {
			return err
		}
		if err := p.closeSource(i); err != nil {
			return fmt.Errorf("stream: pipeline: closing source %d: %w", i, err)
		}
	}
	return nil
}

// copySource reads srcs[i] until EOF into dst.
func (p *pipeline) copySource(ctx context.Context, i int, r io.Reader) error {
	for {
		var b *readBuf
		select {
		case b = <-p.free:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if err := p.stopped(ctx); err != nil {
			p.free <- b
			return err
		}
		n, rerr := r.Read(b.s.buf)
		if n > 0 {
			select {
			case <-p.dst.Ready():
			case <-ctx.Done():
				p.free <- b
				return context.Cause(ctx)
			}
			// The chunk is the buffer itself; b returns to free through
			// b.cb, also if dst rejects the write.
			p.dst.WriteChunk(b.s.buf[:n], b.cb)
		} else {
			p.free <- b
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			if err := p.stopped(ctx); err != nil {
				return err // the Read failed because the pipeline closed it
			}
			return fmt.Errorf("stream: pipeline: reading source %d: %w", i, rerr)
		}
	}
}

// stopped returns the error that stops the copy: the first error, ctx's,
// or the error of dst if it was destroyed (a sink error, or a Destroy from
// elsewhere), or nil.
func (p *pipeline) stopped(ctx context.Context) error {
	if err := p.firstErr(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if st := p.dst.State(); st.Destroyed {
		if st.Err != nil {
			return st.Err
		}
		return ErrPrematureClose
	}
	return nil
}

func (p *pipeline) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// fail records err if it is the first error and destroys dst with it.
func (p *pipeline) fail(err error) {
	p.mu.Lock()
	first := p.err == nil
	if first {
		p.err = err
		p.errLate = p.ended
	}
	p.mu.Unlock()
	if first {
		p.dst.Destroy(err)
	}
}

// closeSource closes srcs[i] if it is an io.Closer not closed yet.
func (p *pipeline) closeSource(i int) error {
	c, ok := p.srcs[i].(io.Closer)
	if !ok {
		return nil
	}
	p.mu.Lock()
	done := p.closed[i]
	p.closed[i] = true
	p.mu.Unlock()
	if done {
		return nil
	}
	return c.Close()
}

// closeSources closes every io.Closer source not closed yet, after the
// first error, and keeps their errors for the result.
func (p *pipeline) closeSources() {
	for i := range p.srcs {
		if err := p.closeSource(i); err != nil {
			p.mu.Lock()
			p.closeErrs = append(p.closeErrs, fmt.Errorf("stream: pipeline: closing source %d: %w", i, err))
			p.mu.Unlock()
		}
	}
}

// result is Pipeline's return value once dst has closed.
func (p *pipeline) result() error {
	st := p.dst.State()
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.err
	if err == nil || p.errLate {
		// Every source was read: dst's outcome decides. A ctx done while
		// dst was finishing counts only if it destroyed dst first.
		if st.Finished && st.Err == nil {
			return nil
		}
		err = st.Err
	}
	if err == nil || errors.Is(err, ErrPrematureClose) && st.Err != nil {
		// dst closed early: its own error, if it got one (a sink error
		// after a Destroy(nil) from elsewhere, say), is the cause, as
		// Finished reports it.
		err = st.Err
		if err == nil {
			err = ErrPrematureClose
		}
	}
	if len(p.closeErrs) > 0 {
		return errors.Join(append([]error{err}, p.closeErrs...)...)
	}
	return err
}
