package stream

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FromWriter returns a stream whose sink is w: a file, a socket, an
// http.ResponseWriter, os.Stdout, a bufio.Writer... It never closes w.
//
// The blocking writes to w run on one goroutine owned by the stream, one
// call at a time, so the producers never wait for w except through the
// stream's backpressure (Write blocks, WriteChunk returns false). The
// goroutine starts with the first write it is handed and is gone once
// [Writable.Done] is closed; the stream must therefore be ended (End,
// Close) or destroyed.
//
// On Unix, a single chunk for a socket (a net.Conn that is a syscall.Conn:
// TCP, Unix, UDP) is first offered to the socket without blocking, on the
// goroutine that made the sink call, as Node's uv_try_write does: when the
// send buffer has room the write completes before the sink call returns,
// with no goroutine involved. Only what does not fit (the socket is full,
// or a write deadline has passed) goes to the goroutine, and the chunks
// written meanwhile pile up in the stream, to go out together. Chunks
// shorter than a quarter of the high-water mark skip the attempt: several
// of them fit under the mark, and batching them costs less than a system
// call each.
//
// When two or more chunks are buffered they go out in one batch: for a
// net.Conn as one [net.Buffers.WriteTo], which is a single writev on TCP
// and Unix sockets; for other writers small chunks are first gathered into
// one write of up to 64 KiB. After each batch the stream flushes w if it has
// a Flush() error method (bufio.Writer) or is an http.ResponseWriter or
// http.Flusher, so that an HTTP client receives the data as it is written.
// A write that returns n < len(p) without an error fails with
// io.ErrShortWrite. Any error from w destroys the stream with it.
//
// Destroy (or the cancellation of Options.Context) unblocks a write stuck
// on w when w can take a deadline: a net.Conn, an *os.File that supports
// one (pipes), or an http.ResponseWriter through http.ResponseController.
// The write deadline is then set in the past; FromWriter resets it to none
// (the zero time) once the write has returned, losing any deadline the
// caller had set. The interrupted write's callback gets an error matching
// ErrDestroyed, the destroying error if any, and the writer's own error
// (os.ErrDeadlineExceeded for a socket or a pipe); as for the writes still
// buffered, that error does not become the stream's error, so after
// Destroy(nil) [Writable.Err] stays nil. Bytes of the interrupted chunk may
// have been written in part. A write to w that cannot take a deadline and
// never returns keeps the stream from closing: set Options.StallTimeout to
// bound it. The stream then closes without waiting for that write, but the
// adapter's goroutine stays inside it until w returns: the one case where a
// goroutine outlives Done. Use [FromWriteCloser] if closing w unblocks it.
//
// On a socket, "every accepted byte reached the sink" (a nil from Close,
// a write's nil callback) means the bytes were handed to the kernel, not
// that the peer read them: a peer that crashes after that loses them
// without an error here. If the data must be acknowledged, make the peer
// answer (an application-level ack, or the response of an HTTP request)
// and wait for that answer.
//
// w is written to until [Writable.Done] is closed, so wait for it (Close,
// Finished, <-Done()) before w may no longer be used: in an HTTP handler,
// before the handler returns. Pass the request's context as
// Options.Context to destroy the stream when the client goes away.
//
// opts configures the stream as for [NewWritable], except that Writev is
// ignored (the adapter writes batches itself). If opts.Destroy is set it
// runs after the adapter's own Destroy step, on the adapter's goroutine,
// and its error is joined to the writer's Close error, if any.
// FromWriter panics if w is nil.
func FromWriter(w io.Writer, opts Options) *Writable {
	if w == nil {
		panic("stream: FromWriter: nil io.Writer")
	}
	return newWriterSink(w, nil, opts).stream
}

// FromWriteCloser is FromWriter for a writer that the stream owns: it
// closes w in its Destroy step, after a clean finish as after an error or a
// Destroy, and "close" follows the return of w.Close. An error from Close
// becomes the stream's error if it had none, so [Writable.Close],
// [Writable.Err], OnError and Finished report it. When the stream is
// destroyed (or a write stalls) while a write is stuck on a w that takes no
// write deadline, w is closed at once, off the adapter's goroutine, to
// unblock that write (an io.PipeWriter nobody reads, say); it is closed only
// once. FromWriteCloser panics if w is nil.
func FromWriteCloser(w io.WriteCloser, opts Options) *Writable {
	if w == nil {
		panic("stream: FromWriteCloser: nil io.WriteCloser")
	}
	return newWriterSink(w, w, opts).stream
}

// OpenFile opens the named file with os.OpenFile and returns a stream that
// writes to it, the analogue of Node's fs.createWriteStream. flag is as for
// os.OpenFile and must include os.O_WRONLY or os.O_RDWR: Node's "w" is
// os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "a" is os.O_WRONLY|os.O_CREATE|os.O_APPEND
// and "wx" adds os.O_EXCL to "w". perm (before umask) applies to a file the
// call creates; Node's default is 0o666.
//
// An error opening the file is returned at once, as an *fs.PathError, with
// a nil stream. The stream then behaves as [FromWriteCloser] on the file: the
// writes run on a goroutine of the stream, the file is closed in the
// Destroy step, and "close" follows the close of the descriptor; a close
// error is the stream's error. As in Node, the file is closed, not synced:
// a nil from Close does not mean the data reached the disk; call Sync
// yourself (in Options.Final, say) if it must.
func OpenFile(name string, flag int, perm os.FileMode, opts Options) (*Writable, error) {
	if flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errReadOnlyFlag}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return FromWriteCloser(f, opts), nil
}

var errReadOnlyFlag = errors.New("stream: OpenFile needs os.O_WRONLY or os.O_RDWR in flag")

// gatherMax bounds the writes in which writerSink gathers the small chunks
// of a batch for a writer that has no vectored write, and gatherChunk is
// the size from which a chunk is written on its own: copying a few small
// chunks costs much less than one system call each.
const (
	gatherMax   = 64 * 1024
	gatherChunk = 16 * 1024
)

// past is the deadline that makes a blocked write return at once.
var past = time.Unix(1, 0)

// writerSink is the sink of FromWriter and FromWriteCloser: it runs the
// blocking writes on a goroutine of its own, fed through jobs.
type writerSink struct {
	stream      *Writable
	w           io.Writer
	closer      io.Closer  // FromWriteCloser's writer; nil for FromWriter
	vectored    bool       // w is a net.Conn: net.Buffers.WriteTo may be one writev
	try         *trySocket // non-blocking attempts on a socket; nil for other writers
	tryMin      int        // the shortest chunk offered to try
	flush       func() error
	setDeadline func(time.Time) error // nil if w takes no write deadline
	userDestroy DestroyFunc

	start sync.Once
	// jobs feeds the goroutine. The stream makes one sink call at a time,
	// but the Destroy hook may follow a write the stall timer gave up on
	// before the goroutine took it: room for two keeps every send from
	// blocking, including one made on the goroutine itself inside done.
	jobs chan sinkJob

	stopping    atomic.Bool // the Destroy step began: skip writes still queued
	inWrite     atomic.Bool // the goroutine is in a write
	interrupted atomic.Bool // the deadline was set in the past, or closer closed early
	cause       error       // the destroying error; written before interrupted is set

	// closeOnce closes closer once: in the Destroy step, or earlier to
	// unblock a write stuck on a writer that takes no deadline.
	closeOnce sync.Once
	closeErr  error

	// Owned by the goroutine.
	vec     [][]byte
	flushOK bool

	// Counters for tests.
	batches       atomic.Int64 // Writev calls
	vectoredCalls atomic.Int64 // of which went out as one net.Buffers.WriteTo
	inline        atomic.Int64 // write calls completed by a non-blocking attempt
}

type jobKind uint8

const (
	jobWrite jobKind = iota
	jobWritev
	jobRelease
)

type sinkJob struct {
	kind   jobKind
	chunk  []byte
	chunks [][]byte
	err    error // jobRelease: the stream's error
	done   Callback
}

// newWriterSink builds the stream of FromWriter (closer == nil) and
// FromWriteCloser.
func newWriterSink(w io.Writer, closer io.Closer, opts Options) *writerSink {
	s := &writerSink{
		w:           w,
		closer:      closer,
		userDestroy: opts.Destroy,
		jobs:        make(chan sinkJob, 2),
		flushOK:     true,
	}
	_, s.vectored = w.(net.Conn)
	switch fw := w.(type) {
	case interface{ Flush() error }:
		s.flush = fw.Flush
	case http.ResponseWriter:
		// ResponseController finds Flush and SetWriteDeadline through
		// wrappers that have an Unwrap method.
		rc := http.NewResponseController(fw)
		s.flush = rc.Flush
		s.setDeadline = rc.SetWriteDeadline
	case http.Flusher:
		s.flush = func() error { fw.Flush(); return nil }
	}
	if dw, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		s.setDeadline = dw.SetWriteDeadline
	}
	if s.flush == nil {
		// A flush may block: only a writer that needs none is written inline.
		s.try = newTrySocket(w)
		s.tryMin = cmp.Or(opts.HighWaterMark, DefaultHighWaterMark) / 4
	}
	opts.Writev = s.writev
	opts.Destroy = s.destroy
	s.stream = NewWritable(s.write, opts)
	s.stream.mu.Lock()
	s.stream.interrupt = s.interrupt
	s.stream.mu.Unlock()
	return s
}

// write is the stream's WriteFunc. A socket takes what fits at once; the
// rest of the chunk, or all of it for other writers, goes to the goroutine.
// The stream makes one sink call at a time, so the goroutine is idle here.
//
// A chunk shorter than a quarter of the high-water mark goes to the
// goroutine at once: four or more such chunks can pile up in the stream
// while it is written, and go out together as one writev, where writing
// each inline would cost a system call (and, on TCP, a segment) apiece.
// On loopback with a 256 KiB mark and 16 KiB chunks, trying every chunk
// inline took 1.35× the CPU time of batching them.
func (s *writerSink) write(chunk []byte, done Callback) {
	if s.try != nil && len(chunk) >= s.tryMin {
		n, err := s.try.write(chunk)
		if n == len(chunk) || err != nil {
			s.inline.Add(1)
			done(s.result(err))
			return
		}
		chunk = chunk[n:]
	}
	s.start.Do(s.spawn)
	s.jobs <- sinkJob{kind: jobWrite, chunk: chunk, done: done}
}

// writev is the stream's WritevFunc.
func (s *writerSink) writev(chunks [][]byte, done Callback) {
	s.batches.Add(1)
	s.start.Do(s.spawn)
	s.jobs <- sinkJob{kind: jobWritev, chunks: chunks, done: done}
}

// destroy is the stream's DestroyFunc. It runs once nothing is in flight,
// unless the stall timer gave up on a write that is still blocked: that one
// is interrupted too, so that the goroutine can release the writer.
func (s *writerSink) destroy(err error, done Callback) {
	s.stopping.Store(true)
	if s.inWrite.Load() && !s.interrupted.Load() {
		s.unblock(false /* may block */)
	}
	s.start.Do(s.spawn)
	s.jobs <- sinkJob{kind: jobRelease, err: err, done: done}
}

// unblock makes a write stuck on the writer return: a write deadline in
// the past where the writer takes one; else, for a writer the stream owns,
// closing it early (an io.PipeWriter, most WriteClosers). Closing may block,
// so with background it runs on a goroutine of its own; the Destroy step
// waits for it through closeOnce.
func (s *writerSink) unblock(background bool) {
	if s.setDeadline != nil {
		// Set the flag first: the write returns as soon as the deadline is set.
		s.interrupted.Store(true)
		if s.setDeadline(past) == nil {
			return
		}
		s.interrupted.Store(false) // an *os.File on a regular file, say
	}
	if s.closer == nil {
		return
	}
	s.interrupted.Store(true)
	if background {
		go s.closeWriter()
	} else {
		s.closeWriter()
	}
}

// closeWriter closes the writer the stream owns, once, and returns the
// error of that Close.
func (s *writerSink) closeWriter() error {
	s.closeOnce.Do(func() { s.closeErr = s.closer.Close() })
	return s.closeErr
}

// interrupt is the stream's interrupt hook, called under its lock when it
// is destroyed with a write in flight: a deadline in the past makes a
// blocked write return, and so does closing a writer the stream owns.
// Setting a deadline does not block, except that an HTTP/2 response waits
// for its connection's serve loop to take the reset; a Close runs on a
// goroutine of its own.
func (s *writerSink) interrupt(err error) {
	s.cause = err
	s.unblock(true /* under the stream's lock: must not block */)
}

func (s *writerSink) spawn() { go s.run() }

// run is the goroutine that owns the writer. It returns after the Destroy
// step, which is always the last job.
func (s *writerSink) run() {
	for j := range s.jobs {
		if j.kind == jobRelease {
			s.release(j.err, j.done)
			return
		}
		j.done(s.do(&j))
	}
}

// do performs one write or writev job and flushes.
func (s *writerSink) do(j *sinkJob) error {
	s.inWrite.Store(true)
	var err error
	switch {
	case s.stopping.Load():
		// A write the stall timer gave up on: the stream is gone, and its
		// chunks may already be reused.
		err = ErrDestroyed
	case j.kind == jobWrite:
		err = s.writeFull(j.chunk)
	default:
		err = s.writeBatch(j.chunks)
	}
	if err == nil && s.flush != nil && s.flushOK {
		err = s.flush()
		if errors.Is(err, http.ErrNotSupported) {
			s.flushOK, err = false, nil
		}
	}
	s.inWrite.Store(false)
	return s.result(err)
}

// result is the outcome of a write for its callback: err, marked as the
// echo of a Destroy if the write was interrupted.
func (s *writerSink) result(err error) error {
	if err != nil && s.interrupted.Load() {
		if s.cause != nil {
			return fmt.Errorf("%w: %w: write interrupted: %w", ErrDestroyed, s.cause, err)
		}
		return fmt.Errorf("%w: write interrupted: %w", ErrDestroyed, err)
	}
	return err
}

// writeFull writes p with one Write, enforcing the io.Writer contract.
func (s *writerSink) writeFull(p []byte) error {
	n, err := s.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return err
}

// writeBatch writes 2+ chunks: one net.Buffers.WriteTo on a net.Conn (a
// writev on TCP and Unix sockets); else runs of small chunks gathered into
// one write, and large chunks as they are.
func (s *writerSink) writeBatch(chunks [][]byte) error {
	if s.vectored {
		s.vectoredCalls.Add(1)
		total := 0
		for _, c := range chunks {
			total += len(c)
		}
		// WriteTo consumes the Buffers it is given: hand it a copy of the
		// slice header so that vec keeps its capacity.
		s.vec = append(s.vec[:0], chunks...)
		b := net.Buffers(s.vec)
		n, err := b.WriteTo(s.w)
		clear(s.vec)
		if cap(s.vec) > maxKeptChunks {
			s.vec = nil // do not hold a burst's slice
		}
		if err == nil && n < int64(total) {
			err = io.ErrShortWrite
		}
		return err
	}
	// The gather buffer goes back to the pool after the batch (a writer
	// must not keep what it is given): an idle stream holds none.
	var gather *slab
	defer func() {
		if gather != nil {
			putSlab(gather)
		}
	}()
	var g []byte
	for _, c := range chunks {
		if len(c) >= gatherChunk {
			if len(g) > 0 {
				if err := s.writeFull(g); err != nil {
					return err
				}
				g = g[:0]
			}
			if err := s.writeFull(c); err != nil {
				return err
			}
			continue
		}
		if g == nil {
			gather = getSlab(gatherMax)
			g = gather.buf[:0]
		}
		if len(g)+len(c) > cap(g) {
			if err := s.writeFull(g); err != nil {
				return err
			}
			g = g[:0]
		}
		g = append(g, c...)
	}
	if len(g) > 0 {
		return s.writeFull(g)
	}
	return nil
}

// release is the Destroy step, on the goroutine: close the writer
// (FromWriteCloser) or clear the deadline set to interrupt a write
// (FromWriter), then run the user's Destroy hook, if any.
func (s *writerSink) release(err error, done Callback) {
	var cerr error
	if s.closer != nil {
		cerr = s.closeWriter()
	} else if s.interrupted.Load() {
		_ = s.setDeadline(time.Time{})
	}
	if s.userDestroy == nil {
		done(cerr)
		return
	}
	s.userDestroy(err, func(uerr error) {
		switch {
		case cerr == nil:
			done(uerr)
		case uerr == nil:
			done(cerr)
		default:
			done(errors.Join(cerr, uerr))
		}
	})
}
