package stream

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// PipeReader is the read end of a [Pipe]: an io.Reader, io.WriterTo and
// io.Closer over what is written to the pipe's [Writable].
//
// A PipeReader must be created with [Pipe]; a method of the zero value
// panics. It is safe for concurrent use: Reads and WriteTos from several
// goroutines take turns, each seeing bytes in the order they were written,
// and CloseWithError may be called at any time from any goroutine. Close
// it (or end or destroy the write end) when done: a writer blocked on a
// full pipe waits until the reader reads or closes.
//
//	r, w := stream.Pipe(stream.Options{HighWaterMark: 64 << 10})
//	go func() {
//		if _, err := io.Copy(w, src); err != nil { // blocks while 64 KiB are unread
//			w.Destroy(err) // the reader gets err
//			return
//		}
//		w.End() // the reader gets io.EOF once it read everything
//	}()
//	_, err := io.Copy(dst, r) // r.WriteTo: the chunks as written, no copy
//	r.CloseWithError(err)     // after EOF, harmless
type PipeReader struct {
	w           *Writable
	userFinal   FinalFunc
	userDestroy DestroyFunc

	// rmu serialises Read and WriteTo: only the holder consumes chunks or
	// waits on avail, so one token is enough to wake it.
	rmu sync.Mutex
	// avail holds a token once something changed for the reader (chunks
	// handed over, the end, an error). A token may be stale: the reader
	// re-checks under mu.
	avail chan struct{}
	// bufs is WriteTo's copy of chunks, and vec the net.Buffers that
	// writes (and consumes) it; only the holder of rmu touches them.
	bufs net.Buffers
	vec  net.Buffers

	mu sync.Mutex // guards the fields below; taken under w.mu (interrupt), never the other way round

	// chunks are those of the sink call in flight that the reader has not
	// consumed yet, chunks[0][off:] first; done is that call's done, nil
	// once the reader took it. one backs chunks for a single chunk.
	chunks [][]byte
	off    int
	done   Callback
	one    [1][]byte
	// lent is set while WriteTo hands chunks to its writer without mu:
	// nobody else may complete the call meanwhile.
	lent bool

	// wait is the buffer of a Read waiting for bytes, and waited how many
	// a Write copied into it (see copyToReader).
	wait   []byte
	waited int

	eof    bool  // Final succeeded: every byte was handed over and read
	err    error // the stream was destroyed or failed: what Read returns
	cut    error // the result of the call in flight cut short by err
	closed bool  // CloseWithError was called
}

var (
	_ io.ReadCloser = (*PipeReader)(nil)
	_ io.WriterTo   = (*PipeReader)(nil)
)

// Pipe is a buffered in-memory pipe: what is written to w is read from r,
// in order, with w's high-water mark bounding what is written and not yet
// read.
//
// w is a full [Writable] whose sink is r: WriteChunk hands its very slice
// to the reader, without a copy; Write, WriteString and ReadFrom copy as
// usual (a Write into an empty pipe whose reader waits in Read copies
// straight into the reader's buffer, as io.Pipe does). Its Length counts
// the bytes written and not yet read, going down as the reader reads, also
// within a chunk, so a producer ahead of its reader is pushed back exactly
// as by a slow sink: WriteChunk returns false and Write blocks once the
// high-water mark is reached, until the reader has read the pipe down to
// Options.LowWaterMark. For a pipe that defaults to half the high-water
// mark, not to empty as for other streams: the writer refills the pipe
// while the reader reads the rest, instead of both taking turns. The
// reader receives every chunk buffered while it read the previous ones at
// once (one sink call), and completes that call when it has consumed all
// of them: a chunk's callback runs once the reader has read the chunk and
// the chunks handed over with it, never on the reader's goroutine inside
// Read or WriteTo. So w.Wait returns once the reader has read down to the
// low-water mark, and w.Flush once it has read what was written before the
// call (and the chunks handed over with the last of it).
//
// opts configures w as for [NewWritable], and Pipe panics on the same bad
// options, except that Options.Writev is ignored: the pipe takes the
// buffered chunks in one call itself. MaxBatch and MaxBatchSize then cap
// what the reader takes at once (MaxBatch 1: one chunk at a time, so that
// callbacks and Flush complete chunk by chunk), and StallTimeout bounds how
// long the reader may take to consume what it was handed.
//
// The reader gets io.EOF once w was ended, every accepted byte was read
// and Final (if any) succeeded. After w.Destroy(err) or a failure (Final's
// error, say) it gets the stream's error at once, even with bytes unread,
// and after Destroy(nil) ErrDestroyed: never io.EOF, as the data was cut
// short. Closing r destroys w (see [PipeReader.CloseWithError]). Once both
// ends are closed, no goroutine of the pipe is left.
func Pipe(opts Options) (*PipeReader, *Writable) {
	r := &PipeReader{
		userFinal:   opts.Final,
		userDestroy: opts.Destroy,
		avail:       make(chan struct{}, 1),
	}
	if opts.LowWaterMark == 0 {
		hwm := opts.HighWaterMark
		if hwm == 0 {
			hwm = DefaultHighWaterMark
		}
		opts.LowWaterMark = hwm / 2 // the writer goes on while the reader reads the rest
	}
	opts.Writev = r.writev
	opts.Final = r.final
	opts.Destroy = r.destroy
	w := NewWritable(r.write, opts)
	w.mu.Lock()
	w.interrupt = r.interrupt
	w.deliverElsewhere = true
	w.pipe = r
	w.mu.Unlock()
	r.w = w
	return r, w
}

// Read reads up to len(p) bytes into p. It blocks until at least one byte
// is there, and returns what is buffered, up to len(p), without waiting for
// more. It returns io.EOF once the write end was ended and everything was
// read; the stream's error, at once, after the write end was destroyed or
// failed (ErrDestroyed after Destroy(nil)); io.ErrClosedPipe after r was
// closed. A Read with an empty p returns 0 and the error a Read would get
// now, without waiting.
func (r *PipeReader) Read(p []byte) (int, error) {
	r.checkMade()
	r.rmu.Lock()
	defer r.rmu.Unlock()
	n := 0
	for {
		r.mu.Lock()
		r.wait = nil
		if r.waited > 0 {
			n, r.waited = r.waited, 0
			r.mu.Unlock()
			return n, nil
		}
		if err := r.errLocked(); err != nil {
			r.mu.Unlock()
			return n, err
		}
		if r.chunks != nil {
			from := n
			for len(r.chunks) > 0 {
				c := r.chunks[0][r.off:]
				if len(c) == 0 {
					r.chunks, r.off = r.chunks[1:], 0
					continue
				}
				if n == len(p) {
					break
				}
				k := copy(p[n:], c)
				n += k
				r.off += k
			}
			if len(r.chunks) > 0 {
				r.mu.Unlock()
				r.w.credit(n - from) // p is full: the writer may go on meanwhile
				return n, nil
			}
			done := r.takeDoneLocked()
			r.mu.Unlock()
			if done != nil {
				done(nil) // may hand over the next chunks at once
			}
			if n < len(p) {
				continue // the next chunks may be there already
			}
			return n, nil
		}
		switch {
		case n > 0:
			r.mu.Unlock()
			return n, nil
		case r.eof:
			r.mu.Unlock()
			return 0, io.EOF
		case len(p) == 0:
			r.mu.Unlock()
			return 0, nil
		}
		r.wait = p
		r.mu.Unlock()
		<-r.avail
	}
}

// WriteTo implements io.WriterTo: it writes everything written to the pipe
// to dst, chunk by chunk as the writer handed them over and without a copy
// (one net.Buffers.WriteTo per batch when dst is a net.Conn: a single
// writev), until the write end is ended and everything was read. It returns
// the number of bytes written and nil at the end, the stream's error (as
// Read) when the write end was destroyed, or dst's error (or
// io.ErrShortWrite). An error of dst leaves the pipe as it is, the bytes dst
// did not take still unread: call CloseWithError to pass it on to the
// writer.
//
// While dst.Write runs, the chunks stay with the pipe's write end: their
// callbacks wait for it, and a Destroy of the write end completes only once
// dst.Write has returned.
func (r *PipeReader) WriteTo(dst io.Writer) (int64, error) {
	r.checkMade()
	r.rmu.Lock()
	defer r.rmu.Unlock()
	_, vectored := dst.(net.Conn)
	var total int64
	for {
		r.mu.Lock()
		if err := r.errLocked(); err != nil {
			r.mu.Unlock()
			return total, err
		}
		if r.chunks == nil {
			eof := r.eof
			r.mu.Unlock()
			if eof {
				return total, nil
			}
			<-r.avail
			continue
		}
		r.bufs = append(r.bufs[:0], r.chunks[0][r.off:])
		r.bufs = append(r.bufs, r.chunks[1:]...)
		r.vec = r.bufs
		r.lent = true
		r.mu.Unlock()

		n, werr := r.lend(dst, vectored)
		total += n
		if werr != nil {
			return total, werr
		}
	}
}

// lend writes the chunks of r.vec to dst, without mu, and takes them back.
// Should dst panic, they are taken back unread before the panic goes on,
// so that a later Read or a Destroy can still complete their call.
func (r *PipeReader) lend(dst io.Writer, vectored bool) (n int64, err error) {
	returned := false
	defer func() {
		if !returned {
			r.takeBack(0)
		}
	}()
	n, err = writeChunks(dst, &r.vec, vectored)
	returned = true
	r.takeBack(n)
	return n, err
}

// takeBack marks the first n bytes of the lent chunks as read, and
// completes their call if that was all of them, or if the stream was
// destroyed while they were lent.
func (r *PipeReader) takeBack(n int64) {
	r.mu.Lock()
	r.lent = false
	clear(r.bufs)
	r.consumeLocked(n)
	var done Callback
	var result error
	switch {
	case r.err != nil:
		done, result = r.takeDoneLocked(), r.cut
	case len(r.chunks) == 0:
		done = r.takeDoneLocked()
	}
	r.mu.Unlock()
	switch {
	case done != nil:
		done(result)
	case n > 0:
		r.w.credit(int(n))
	}
}

// writeChunks writes *bufs to dst in order and returns how many bytes dst
// took. bufs points to a field, so that net.Buffers.WriteTo, which takes a
// pointer and consumes what it points to, does not make a slice header
// escape per call.
func writeChunks(dst io.Writer, bufs *net.Buffers, vectored bool) (int64, error) {
	if vectored {
		return bufs.WriteTo(dst)
	}
	var total int64
	for _, b := range *bufs {
		if len(b) == 0 {
			continue
		}
		n, err := dst.Write(b)
		total += int64(n)
		if err == nil && n < len(b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// CloseWithError closes the read end: later Reads return io.ErrClosedPipe,
// and the write end is destroyed with err (io.ErrClosedPipe if err is nil),
// so a Write blocked on the full pipe returns an error matching it, and
// the write end's Close and Err report it. Writes still unread get errors
// matching ErrDestroyed and err in their callbacks. A write end that was
// already destroyed, or that reached the reader's io.EOF (it then
// finishes: its Close returns nil), is left as it is. CloseWithError
// always returns nil.
func (r *PipeReader) CloseWithError(err error) error {
	r.checkMade()
	if err == nil {
		err = io.ErrClosedPipe
	}
	r.mu.Lock()
	r.closed = true
	eof := r.eof
	r.mu.Unlock()
	r.signal() // a Read waiting on another goroutine returns
	if !eof {
		r.w.Destroy(err)
	}
	return nil
}

// Close is CloseWithError(nil).
func (r *PipeReader) Close() error { return r.CloseWithError(nil) }

// checkMade panics if r was not made by Pipe: the zero value has no write
// end, and its Read would block for ever.
func (r *PipeReader) checkMade() {
	if r.avail == nil {
		panic("stream: PipeReader not made by Pipe")
	}
}

// errLocked returns the error Read returns now, or nil.
func (r *PipeReader) errLocked() error {
	if r.closed {
		return io.ErrClosedPipe
	}
	return r.err
}

// consumeLocked marks the first n bytes of chunks as read.
func (r *PipeReader) consumeLocked(n int64) {
	for len(r.chunks) > 0 {
		rest := int64(len(r.chunks[0]) - r.off)
		if n < rest {
			r.off += int(n)
			return
		}
		n -= rest
		r.chunks, r.off = r.chunks[1:], 0
	}
}

// takeDoneLocked returns the done of the call in flight, if the reader has
// not taken it yet, and forgets the call's chunks.
func (r *PipeReader) takeDoneLocked() Callback {
	done := r.done
	r.chunks, r.off, r.done = nil, 0, nil
	r.one[0] = nil
	return done
}

// signal gives the reader a token, unless it has one already.
func (r *PipeReader) signal() {
	select {
	case r.avail <- struct{}{}:
	default:
	}
}

// write is the pipe's WriteFunc: a single chunk.
func (r *PipeReader) write(chunk []byte, done Callback) {
	r.mu.Lock()
	r.one[0] = chunk
	r.handLocked(r.one[:], done)
}

// writev is the pipe's WritevFunc: every chunk buffered meanwhile.
func (r *PipeReader) writev(chunks [][]byte, done Callback) {
	r.mu.Lock()
	r.handLocked(chunks, done)
}

// handLocked hands the chunks of a sink call to the reader and unlocks.
func (r *PipeReader) handLocked(chunks [][]byte, done Callback) {
	if r.err != nil {
		// Destroyed while this call was being made.
		cut := r.cut
		r.one[0] = nil
		r.mu.Unlock()
		done(cut)
		return
	}
	r.chunks, r.off, r.done = chunks, 0, done
	r.mu.Unlock()
	r.signal()
}

// final is the pipe's FinalFunc: once the user's Final succeeded, every
// accepted byte has been read, and the reader gets io.EOF.
func (r *PipeReader) final(done Callback) {
	if r.userFinal == nil {
		r.setEOF()
		done(nil)
		return
	}
	r.userFinal(func(err error) {
		if err == nil {
			r.setEOF()
		}
		done(err)
	})
}

func (r *PipeReader) setEOF() {
	r.mu.Lock()
	r.eof = true
	r.mu.Unlock()
	r.signal()
}

// interrupt is the stream's interrupt: the stream was destroyed (err is its
// error, nil after Destroy(nil)) with a sink call in flight. It runs under
// the stream's lock, so the call's done, if the reader has not taken it and
// is not writing its chunks to WriteTo's writer, runs on a goroutine of its
// own.
func (r *PipeReader) interrupt(err error) {
	if done, cut := r.fail(err); done != nil {
		go done(cut)
	}
}

// destroy is the pipe's DestroyFunc, which runs once nothing is in flight
// (or the stall timer gave up on the call in flight).
func (r *PipeReader) destroy(err error, done Callback) {
	r.fail(err) // a call still held was given up by the stall timer: drop it
	if r.userDestroy == nil {
		done(nil)
		return
	}
	r.userDestroy(err, done)
}

// fail records that the stream was destroyed with err, unless the reader
// got io.EOF already, and wakes the reader. It returns the done of the call
// in flight, unless WriteTo holds its chunks, and the result to complete it
// with.
func (r *PipeReader) fail(err error) (Callback, error) {
	r.mu.Lock()
	if r.eof || r.err != nil {
		r.mu.Unlock()
		return nil, nil
	}
	if err == nil {
		r.err, r.cut = ErrDestroyed, ErrDestroyed
	} else {
		r.err, r.cut = err, fmt.Errorf("%w: %w", ErrDestroyed, err)
	}
	var done Callback
	if !r.lent {
		done = r.takeDoneLocked()
	}
	cut := r.cut
	r.mu.Unlock()
	r.signal()
	return done, cut
}

// userCodeQueuedLocked reports whether delivering the queued events would
// run user code: a callback or a handler. It is the test of the
// deliverElsewhere hook (events.go): the reader completes a call inside
// Read or WriteTo, where a callback that writes to the same pipe would
// wait for that very reader; such deliveries go to a new goroutine, while
// the rest (a "drain" nobody listens to, starting Final or the Destroy
// hook on their own goroutines) is done in place, saving a goroutine per
// drain when the writer is ahead of the reader.
func (w *core[T]) userCodeQueuedLocked() bool {
	if w.late.Len() > 0 || w.fastHeadLocked() != w.fastTaken {
		return true
	}
	for i := range w.events.Len() {
		switch w.events.ev.At(i).kind {
		case evCallback, evWritten, evFastCallbacks, evFinish, evError, evClose:
			return true
		case evDrain, evDrainCheck:
			if len(w.onDrain) > 0 {
				return true
			}
		}
	}
	return false
}

// credit takes n bytes that a Pipe's reader consumed of the write call in
// flight off Length before the call completes, so that a writer waiting
// for room may go on while the reader still reads the rest, and queues
// "drain" if that is due. The caller holds the reader's turn, so the call
// in flight is the one whose bytes it read: only the reader completes it,
// or a Destroy, after which the credit no longer matters.
func (w *core[T]) credit(n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	w.closeFastLocked() // a fast write in flight counts in length from now on
	if w.call == nil || w.call.kind != callWrite && w.call.kind != callWritev || w.teardown != alive {
		w.mu.Unlock()
		return
	}
	w.credited += n
	w.length -= n
	if w.drainDueLocked() {
		w.clearNeedDrainLocked()
		w.queueLocked(event[T]{kind: evDrain})
	}
	w.deliverHereLocked()
	w.unlock()
}

// copyToReader copies what it can of p into the buffer of a Read waiting
// for bytes, if there is one, and returns how many bytes it copied. The
// caller holds w.mu and the pipe is empty: nothing buffered, nothing in
// flight, so these bytes come next; the Write is then complete for them at
// once, as if the reader had read a chunk, without a copy into the stream.
func copyToReader[S []byte | string](r *PipeReader, p S) int {
	r.mu.Lock()
	if r.waited == len(r.wait) || r.closed || r.err != nil {
		r.mu.Unlock()
		return 0
	}
	k := copy(r.wait[r.waited:], p)
	r.waited += k
	r.mu.Unlock()
	r.signal()
	return k
}
