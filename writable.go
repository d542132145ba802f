package stream

import (
	"context"
	"io"
	"time"
)

// Callback receives the outcome of a write or of a sink call: nil on
// success, else the error.
type Callback func(err error)

// WriteFunc is the sink: the analogue of Node's _write. It receives one
// chunk and must call done exactly once, with nil or the error, from any
// goroutine, either before it returns or at any later time. The chunk
// belongs to the sink until it calls done and must not be used after.
//
// The stream makes at most one sink call at a time. When done is called
// after the WriteFunc returned, it makes the next sink call (for the next
// buffered chunk) and runs the finished write's callback before it returns,
// on the goroutine that called done, as Node does. So a WriteFunc that
// hands chunks to a worker goroutine, which then calls done, must not wait
// for that worker: give the channel room for the one call in flight.
type WriteFunc func(chunk []byte, done Callback)

// WritevFunc is the vectored sink, the analogue of Node's _writev: it
// receives every buffered chunk, in order, in one call. The slice and the
// chunks are valid until done is called.
type WritevFunc func(chunks [][]byte, done Callback)

// FinalFunc runs once after End, when every write has completed, before
// "finish" (Node's _final). An error passed to done destroys the stream
// instead of finishing it.
type FinalFunc func(done Callback)

// DestroyFunc releases the sink's resources (Node's _destroy). It runs once
// per stream, after "finish" or when the stream is destroyed, never while a
// sink call is in flight. err is the stream's error, nil after a clean
// finish or Destroy(nil). "close" follows done; an error passed to done
// becomes the stream's error if it had none.
type DestroyFunc func(err error, done Callback)

// ConstructFunc prepares the sink before any write (Node's _construct). It
// is called on a goroutine of its own right after NewWritable returns;
// writes are buffered until it calls done. An error destroys the stream.
//
// Like Final and Destroy, it runs on a goroutine of the library, never on
// one that called done, so a hook may wait for the sink's own goroutines.
type ConstructFunc func(done Callback)

// Options configures a Writable. The zero value gives a stream with the
// default high-water mark and no optional hooks.
type Options struct {
	// HighWaterMark is the buffered length, in bytes, at which WriteChunk
	// starts returning false and Write starts blocking. 0 means
	// DefaultHighWaterMark; a negative value panics. Node's highWaterMark 0
	// ("every asynchronous write returns false") is written as 1.
	HighWaterMark int

	// LowWaterMark is the buffered length, in bytes, at or below which
	// "drain" fires (and Wait and Ready return) after a write returned
	// false. 0 (the default) means at empty, as in Node; for a [Pipe], half
	// the high-water mark.
	LowWaterMark int

	// MaxBuffered, if positive, is a hard cap on the buffered length in
	// bytes; it must not be below the high-water mark. A WriteChunk that
	// would exceed it is handled as Overflow says; Write, WriteString and
	// ReadFrom never drop bytes: they wait for room instead. A chunk larger
	// than MaxBuffered is taken only into an empty stream.
	MaxBuffered int

	// Overflow is what WriteChunk does at MaxBuffered: DropNewest (the
	// default) fails the new chunk with ErrDropped; DropOldest evicts the
	// oldest waiting chunks (never one in flight, nor the bytes of a Write)
	// with ErrDropped.
	Overflow Overflow

	// Writev, if set, receives all buffered chunks in one call whenever two
	// or more are buffered when the sink becomes free (after Uncork, or
	// while a write was in flight), up to MaxBatch and MaxBatchSize. A
	// single chunk always goes to the WriteFunc. Writev may complete with
	// an ItemErrors to fail some chunks without failing the stream.
	Writev WritevFunc

	// MaxBatch, if positive, caps the chunks of one Writev call; 0 (the
	// default) takes every waiting chunk, as Node does.
	MaxBatch int

	// MaxBatchSize, if positive, caps the bytes of one Writev call (a
	// single chunk larger than it still goes alone); 0 means no cap.
	MaxBatchSize int

	// Linger, if positive (and Writev is set), lets a partial batch wait
	// while the sink is idle, at most Linger after its first chunk was
	// accepted, for more chunks to join it. The batch goes at once when it
	// is full (MaxBatch, MaxBatchSize), at the high-water mark, when a
	// producer waits (a write returned false) or flushes, and at End or
	// Destroy. One timer per stream.
	Linger time.Duration

	// Final, if set, runs after End once every write has completed, before
	// "finish".
	Final FinalFunc

	// Destroy, if set, runs once when the stream is torn down, after the
	// sink call in flight (if any) has settled; "close" follows its done.
	Destroy DestroyFunc

	// Construct, if set, runs before any write reaches the sink.
	Construct ConstructFunc

	// Context, if set, destroys the stream with context.Cause(Context) when
	// it is done before the stream closed (Node's signal option). A context
	// that is already done destroys the stream inside NewWritable.
	Context context.Context

	// StallTimeout, if positive, bounds every sink call and hook: one that
	// has not called done after StallTimeout destroys the stream with an
	// error matching ErrStalled, and its late done is ignored. 0 (the
	// default) or a negative value disables the check.
	StallTimeout time.Duration
}

// DefaultHighWaterMark is the high-water mark of a stream whose
// Options.HighWaterMark is 0: 16 KiB, as in Node v20.
const DefaultHighWaterMark = 16 * 1024

// Writable is a buffered, asynchronous writer in the manner of Node's
// stream.Writable: writes are accepted into a buffer and handed to a sink
// one call at a time, with a high-water mark that signals backpressure, and
// a life cycle that ends in "finish" and "close".
//
// A Writable must be created with [NewWritable]; every method of the zero
// value panics. It is safe for concurrent use by any number of goroutines:
// what is atomic is one Write, WriteString or ReadFrom call (its bytes reach
// the sink in order, never interleaved with another Write's) and one
// WriteChunk's chunk. Chunks of different goroutines reach the sink in the
// order the stream accepted them; a WriteChunk may land between the pieces
// of a Write larger than its piece size. It must be ended ([Writable.End],
// [Writable.Close]) or destroyed ([Writable.Destroy]) to release its sink;
// once [Writable.Done] is closed it holds no goroutine of its own (an
// adapter's writer stuck in a call that cannot be interrupted is the one
// exception: see [FromWriter]).
//
// # When a call takes time
//
// No method waits for the sink except those that say they wait (Write,
// WriteString and ReadFrom under backpressure, Wait, Flush, Close). But the
// stream runs a sink call on the goroutine that finds the sink free, as
// Node does: WriteChunk, Write, End, Uncork and Flush run the WriteFunc (or
// Writev) inline when the sink is idle. With a sink that completes
// synchronously, End, Uncork and Flush go on with every chunk buffered, so
// with a sink that takes 20 ms per call an End with five chunks buffered
// returns after about 100 ms. WriteChunk and Write go on with the chunks
// other goroutines queued meanwhile only for 15 more sink calls (a budget
// that keeps the combining of fast sinks); past it the stream's own
// goroutine carries on, so a slow sink cannot hold one producer hostage to
// the others' writes. A WriteChunk or Write that finds another goroutine's
// write inside the WriteFunc spins briefly, then yields the processor
// (runtime.Gosched) up to 16 times, so that the producers sharing it take
// their turns, before it buffers its chunk behind that write. A sink that completes later (done from its own goroutine) makes these
// calls return at once; Final, Construct and the Destroy hook always run
// on goroutines of their own.
//
//	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
//		_, err := os.Stdout.Write(chunk)
//		done(err)
//	}, stream.Options{})
//	fmt.Fprintln(w, "hello")
//	if err := w.Close(); err != nil {
//		log.Fatal(err)
//	}
type Writable struct {
	core[[]byte]

	piece int // size of the pieces Write and ReadFrom copy into
	// fastCopyMax is the largest Write that may take the fast path:
	// fastWriteMax, or MaxBuffered if less (a fast write is not split).
	fastCopyMax int
	// fastCopy is the copy buffer of Write's fast writes, owned by whoever
	// holds fastBusy. It stays with the stream, so it is small: larger
	// Writes copy into pooled slabs, which go back to the pool once written.
	fastCopy []byte
	// pipe, set by Pipe, is the read end this stream writes to: a Write
	// into an empty pipe whose reader waits copies into the reader's buffer.
	pipe *PipeReader
}

// writableName names the type in the panics of a Writable not made by
// NewWritable.
const writableName = "Writable"

var (
	_ io.Writer       = (*Writable)(nil)
	_ io.StringWriter = (*Writable)(nil)
	_ io.ReaderFrom   = (*Writable)(nil)
	_ io.Closer       = (*Writable)(nil)
)

// closedChan is returned by Ready when no drain is needed.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// NewWritable returns a stream that hands accepted chunks to write, one call
// at a time, configured by opts. It panics if write is nil, an option is
// negative, or opts.MaxBuffered is below the high-water mark, naming the
// field.
func NewWritable(write WriteFunc, opts Options) *Writable {
	if write == nil {
		panic("stream: NewWritable: nil WriteFunc")
	}
	hwm := opts.HighWaterMark
	if hwm == 0 {
		hwm = DefaultHighWaterMark
	}
	marks{opts.HighWaterMark, opts.LowWaterMark, opts.MaxBuffered, opts.MaxBatch, opts.MaxBatchSize}.
		check("NewWritable", "Options", hwm)
	w := &Writable{piece: pieceSize(hwm), fastCopyMax: fastWriteMax}
	if opts.MaxBuffered > 0 {
		w.fastCopyMax = min(fastWriteMax, opts.MaxBuffered)
	}
	w.init(settings[[]byte]{
		write:        write,
		writev:       opts.Writev,
		final:        opts.Final,
		destroy:      opts.Destroy,
		construct:    opts.Construct,
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

// WriteChunk is Node's write(): it accepts chunk without waiting for room.
// The stream takes ownership of chunk until cb runs; the sink receives this
// very slice, as one chunk. cb, which may be nil, runs once with the outcome
// of the write, never inside WriteChunk. If the sink is free, WriteChunk
// makes the sink call itself, so it takes as long as a synchronous
// WriteFunc does (see "When a call takes time" on [Writable]).
//
// WriteChunk returns false when the buffered length has reached the
// high-water mark (or the stream is ended or destroyed): the caller should
// call [Writable.Wait] before writing more. The chunk is accepted either
// way, unless the stream is ended or destroyed.
//
// After End, cb gets ErrWriteAfterEnd and nothing else changes: the stream
// still finishes what it accepted before End (unlike Node, which destroys
// it). After Destroy, cb gets an error matching ErrDestroyed (and the
// destroying error, if any).
func (w *Writable) WriteChunk(chunk []byte, cb Callback) bool {
	if cb == nil {
		v := w.claimFast(len(chunk))
		if v == stillBusy {
			v = w.claimFastYielding(len(chunk))
		}
		if v != 0 {
			return w.writeFast(chunk, v)
		}
	} else if v := w.claimFastCallback(len(chunk), cb); v != 0 {
		return w.writeFast(chunk, v)
	}
	w.checkMade(writableName)
	return w.writeChunk(chunk, len(chunk), cb)
}

// Write implements io.Writer. It copies p into the stream, in pieces of
// the high-water mark rounded up to a power of two between 4 KiB and 1 MiB,
// and blocks while the stream needs drain, so memory stays bounded
// whatever the size of p. Writes that block queue in order: "drain" wakes
// the first, and each one that leaves room after its bytes wakes the
// next. It returns the number of bytes accepted and, if that is less than
// len(p), the stream's error: see WriteChunk for the errors of late
// writes. Write never retains p. Consecutive Writes may reach the sink as
// one chunk.
func (w *Writable) Write(p []byte) (int, error) {
	return writeCopy(w, p)
}

// WriteString implements io.StringWriter like Write, without converting s
// to a byte slice first.
func (w *Writable) WriteString(s string) (int, error) {
	return writeCopy(w, s)
}

// writeCopy is Write for both byte slices and strings.
//
// A Write is contiguous: its bytes are never interleaved with another
// Write's. Each round accepts as much of p as the high-water mark allows in
// one critical section (filling the buffered tail, then new pieces); a
// Write that needs more than one round holds the write turn (w.turn) until
// it is done, and other Writes wait for it.
func writeCopy[S []byte | string](w *Writable, p S) (n int, err error) {
	if len(p) == 0 {
		// Nothing to accept, but a late Write still reports the error.
		w.checkMade(writableName)
		w.mu.Lock()
		err := w.lateErrLocked()
		w.mu.Unlock()
		return 0, err
	}
	if len(p) <= w.fastCopyMax && len(p) < w.fastMax {
		v := w.claimFast(len(p))
		if v == stillBusy {
			v = w.claimFastYielding(len(p))
		}
		if v != 0 {
			// The holder of the claim owns fastCopy, and the sink is done
			// with it once the previous fast write's done released the claim.
			if w.fastCopy == nil {
				w.fastCopy = make([]byte, fastWriteMax)
			}
			k := copy(w.fastCopy, p)
			w.writeFast(w.fastCopy[:k], v)
			return k, nil
		}
	}
	w.checkMade(writableName)
	// No defer for the turn: it would cost a closure on every Write. Should
	// the sink panic inside a round, the stream is destroyed, and a turn
	// left held is never waited for: every Write checks lateErr first.
	held := false
	var q *waiter // once it waited
	// Once all of p is accepted Write succeeds, even if the sink failed on
	// it synchronously: the error is the next call's.
	for len(p) > 0 {
		w.mu.Lock()
		w.closeFastLocked()
		wait := w.mustWaitLocked(w.turn && !held)
		if err := w.lateErrLocked(); err != nil {
			if q != nil {
				w.putWaiterLocked(q) // every other waiter was woken too
			}
			w.mu.Unlock()
			if held {
				w.releaseTurn()
			}
			return n, err
		}
		if wait {
			if q == nil {
				q = w.getWaiterLocked(true)
			}
			w.sleepLocked(q, held)
			continue
		}
		k := 0
		if w.pipe != nil && w.call == nil && w.buf.Len() == 0 && w.corked == 0 {
			k = copyToReader(w.pipe, p) // nothing is ahead of these bytes
		}
		if k < len(p) {
			k += acceptCopyLocked(w, p[k:])
		}
		n += k
		p = p[k:]
		if len(p) > 0 && !held {
			w.turn = true
			held = true
		}
		w.pumpProducerLocked()
		w.belowHighWaterLocked()
		if q != nil {
			w.putWaiterLocked(q)
			q = nil
			w.wakeNextLocked() // the room left, handed on
		}
		w.scheduleLocked()
		w.unlock()
	}
	if held {
		w.releaseTurn()
	}
	return n, nil
}

// acceptCopyLocked copies as much of p into the buffer as one round of a
// Write may take: the room left in the buffered tail, then whole pieces
// while the buffered length is under the high-water mark (at least one,
// and all of p if it fits in a piece).
// It returns the number of bytes accepted.
//
// With MaxBuffered set it takes no more than leaves Length at the cap, and
// returns 0 with needDrain set when the cap leaves no room: the Write then
// waits for "drain". Unlike a WriteChunk, a Write never goes over the cap,
// since it can be split.
func acceptCopyLocked[S []byte | string](w *Writable, p S) int {
	limit := len(p)
	if w.maxBuffered > 0 {
		w.syncRunLocked() // a run's Length is an upper bound
		limit = min(limit, max(w.maxBuffered-w.length, 0))
		if limit == 0 {
			w.setNeedDrainLocked()
			return 0
		}
	}
	n := 0
	if tail := w.bufferedTailLocked(); tail != nil && tailRoom(tail) > 0 {
		n = min(limit, tailRoom(tail))
		tail.item = append(tail.item, p[:n]...)
		tail.size += n
		w.length += n
	}
	// A Write no larger than a piece goes in this round whatever the mark:
	// split across rounds, End or a WriteChunk could come between its parts.
	for n < limit && (n == 0 || w.length < w.hwm || len(p) <= w.piece) {
		s := getSlab(w.piece)
		k := copy(s.buf[:min(len(s.buf), limit-n)], p[n:])
		w.acceptLocked(s.buf[:k], k, nil, s)
		n += k
	}
	return n
}

// releaseTurn ends the write turn of a Write or ReadFrom, waking the first
// Write that waits for it if the stream has room.
func (w *Writable) releaseTurn() {
	w.mu.Lock()
	w.turn = false
	w.wakeNextLocked()
	w.unlock()
}

// bufferedTailLocked returns the last buffered entry, or nil if every entry
// is in flight.
func (w *Writable) bufferedTailLocked() *entry[[]byte] {
	if w.buf.Len() == w.inflight {
		return nil
	}
	return w.buf.Back()
}

// ReadFrom implements io.ReaderFrom: it reads r until EOF into buffers of
// its own and accepts what it reads, blocking while the stream needs drain.
// It returns the number of bytes accepted and the first error other than
// io.EOF, from r or from the stream. It does not end the stream. Like a
// Write, it is contiguous: other Writes wait until it returns.
func (w *Writable) ReadFrom(r io.Reader) (total int64, err error) {
	w.checkMade(writableName)
	var s *slab
	held := false
	defer func() {
		if s != nil {
			putSlab(s)
		}
		if held {
			w.releaseTurn()
		}
	}()
	for {
		room, err := w.waitTurn(&held)
		if err != nil {
			return total, err
		}
		if s == nil {
			s = getSlab(w.piece)
		}
		n, rerr := r.Read(s.buf[:min(room, len(s.buf))])
		if n > 0 {
			kept, err := w.acceptRead(s, n)
			if kept {
				s = nil
			}
			if err != nil {
				return total, err
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// waitTurn blocks until the caller holds the write turn (*held says whether
// it does already) and the stream does not need drain, and returns how many
// bytes MaxBuffered leaves room for, or the error a write would get now.
func (w *Writable) waitTurn(held *bool) (room int, err error) {
	var q *waiter // once it waited
	for {
		w.mu.Lock()
		room = w.piece
		if w.maxBuffered > 0 {
			w.syncRunLocked() // a run's Length is an upper bound
			room = w.maxBuffered - w.length
			if room <= 0 {
				w.setNeedDrainLocked()
			}
		}
		wait := w.mustWaitLocked(w.turn && !*held)
		if err := w.lateErrLocked(); err != nil {
			if q != nil {
				w.putWaiterLocked(q) // every other waiter was woken too
			}
			w.mu.Unlock()
			return 0, err
		}
		if !wait {
			if !*held {
				w.closeFastLocked()
				w.turn = true
				*held = true
			}
			if q != nil {
				w.putWaiterLocked(q)
				w.wakeNextLocked() // a Wait may go on beside a ReadFrom
			}
			w.mu.Unlock()
			return room, nil
		}
		if q == nil {
			q = w.getWaiterLocked(true)
		}
		w.sleepLocked(q, *held)
	}
}

// acceptRead accepts the n bytes ReadFrom read into s. A mostly full slab
// is handed to the stream as it is (kept reports true); a short read is
// copied into the buffered tail when it fits, so that a reader returning
// tiny reads cannot pin a slab per read.
func (w *Writable) acceptRead(s *slab, n int) (kept bool, err error) {
	w.mu.Lock()
	defer w.unlock()
	w.closeFastLocked()
	if err := w.lateErrLocked(); err != nil {
		return false, err
	}
	if tail := w.bufferedTailLocked(); tail != nil && tailRoom(tail) >= n && 2*n < len(s.buf) {
		tail.item = append(tail.item, s.buf[:n]...)
		tail.size += n
		w.length += n
	} else {
		w.acceptLocked(s.buf[:n], n, nil, s)
		kept = true
	}
	w.pumpProducerLocked()
	w.belowHighWaterLocked()
	w.scheduleLocked()
	return kept, nil
}

// Wait blocks until the stream can take more writes without exceeding its
// high-water mark, and returns nil then: at once if no write returned false
// since the last "drain", else at the next "drain". It returns the error a
// write would get now as soon as the stream is ended, destroyed or errored
// (ErrWriteAfterEnd, or an error matching ErrDestroyed and the cause), and
// context.Cause(ctx) if ctx is done first. It is the blocking twin of
// [Writable.Ready]:
//
//	if !w.WriteChunk(chunk, nil) {
//		if err := w.Wait(ctx); err != nil {
//			return err
//		}
//	}
//
// Unlike a loop on <-w.Ready(), which spins on a dead stream (Ready is
// closed, WriteChunk returns false), this loop ends with the stream's
// error. Waiting calls queue in order with the Writes that wait: "drain"
// wakes the first, and each one that returns wakes the next if the stream
// still has room then, so many producers are not all woken at each drain
// to fight for a few bytes of room. Wait must not be called from a
// callback or event handler of the same stream while it needs drain:
// "drain" runs after the handler returns, so the call would hang forever
// (or until ctx is done).
func (w *Writable) Wait(ctx context.Context) error {
	w.checkMade(writableName)
	return w.wait(ctx)
}

// Flush sends everything the stream has buffered and waits until every
// write accepted before the call has its outcome: it uncorks the stream
// fully, and returns once the callbacks of those writes have run. It
// returns nil if they all succeeded, else the first of their errors; on a
// stream that is ended, destroyed or errored, the error a write would get
// (after those callbacks); or context.Cause(ctx) if ctx is done first.
// Flush does not end the stream: writes may go on, from other goroutines
// too, and are not waited for. It is what a logger's Sync needs.
//
// Flush must not be called from a callback or event handler of the same
// stream: the callbacks it waits for run after the handler returns, so it
// would hang forever (or until ctx is done).
func (w *Writable) Flush(ctx context.Context) error {
	w.checkMade(writableName)
	return w.flush(ctx)
}

// End signals that no more data will be written: it uncorks the stream
// fully, lets the buffered chunks flush, runs Final, emits "finish" once
// every write callback has run, then runs the Destroy hook and emits
// "close". End does not wait for an asynchronous sink; use Close or Done
// for that. With a sink that completes synchronously it flushes the buffer
// inline (see "When a call takes time" on [Writable]). Calling End again is
// harmless. Writes after End fail with ErrWriteAfterEnd, alone: what was
// accepted before End still reaches the sink.
func (w *Writable) End() {
	w.checkMade(writableName)
	w.endStream()
}

// Close ends the stream and waits until it has closed. It returns nil only
// if the stream finished: every accepted byte reached the sink, Final and
// the Destroy hook succeeded. Otherwise it returns the stream's error, or
// ErrDestroyed if Destroy(nil) cut the stream short. Close is idempotent
// and safe to call from many goroutines. Called from a callback or event
// handler of the same stream, it hangs forever: it waits for "close", which
// runs after the handler returns. The same holds for [Finished] and
// <-[Writable.Done].
func (w *Writable) Close() error {
	w.checkMade(writableName)
	return w.closeStream()
}

// Destroy tears the stream down without waiting for buffered data: writes
// still buffered get err (or ErrDestroyed if err is nil) in their callbacks,
// "finish" will not be emitted, and once the sink call in flight (if any)
// has settled, the Destroy hook runs, then "error" (if err is not nil) and
// "close". err becomes the stream's error unless it already had one. Only
// the first Destroy has an effect. Destroy does not wait; Done is closed
// after "close".
func (w *Writable) Destroy(err error) {
	w.checkMade(writableName)
	w.destroy(err)
}

// Ready returns a channel that is closed when the stream can take more
// writes without exceeding its high-water mark: at once if no drain is
// needed, else at the next "drain". It is also closed when the stream ends
// or is destroyed, so a waiter is never stranded; its next write then
// returns the error. Ready is for select loops; a producer that only
// waits should call [Writable.Wait], which also returns the stream's error:
// a loop on <-Ready() alone keeps writing to a dead stream. Being a
// channel, it wakes every goroutine that selects on it at once; Wait wakes
// its callers one at a time, as the room allows.
func (w *Writable) Ready() <-chan struct{} {
	w.checkMade(writableName)
	return w.ready()
}

// Done returns a channel that is closed after "close": the stream has
// released its sink, every callback has run and the close handlers have
// returned. Waiting on it from a callback or handler of the same stream
// hangs forever.
func (w *Writable) Done() <-chan struct{} {
	w.checkMade(writableName)
	return w.done
}

// Err returns the stream's first error: nil if it has none. A Destroy(nil)
// leaves it nil.
func (w *Writable) Err() error {
	w.checkMade(writableName)
	return w.errOf()
}

// State returns a snapshot of the stream's state.
func (w *Writable) State() State {
	w.checkMade(writableName)
	return w.state()
}

// Cork makes the stream buffer every write, even when the sink is free,
// until a matching Uncork: n Corks need n Uncorks. Batching small writes
// this way lets a stream with Options.Writev hand them to the sink in one
// vectored call. End uncorks fully.
func (w *Writable) Cork() {
	w.checkMade(writableName)
	w.cork()
}

// Uncork undoes one Cork. When the last Cork is undone and no sink call is
// in flight, the buffered chunks flush at once: all of them in one Writev
// call if there are two or more and Options.Writev is set, else one by one
// through the WriteFunc, on the calling goroutine (a synchronous sink runs
// inside Uncork). With a call in flight, they flush when it completes. An
// Uncork without a Cork does nothing.
func (w *Writable) Uncork() {
	w.checkMade(writableName)
	w.uncork()
}

// OnDrain registers fn to run at each "drain": after a write returned false,
// once the buffered length has fallen to Options.LowWaterMark (zero by
// default). It returns a function that unregisters fn.
//
// Handlers of an event run in registration order, one at a time, on a
// goroutine that holds no lock; see the package documentation for what a
// handler may call. A nil fn panics, as with every On method.
func (w *Writable) OnDrain(fn func()) (off func()) {
	if fn == nil {
		panic("stream: OnDrain: nil handler")
	}
	w.checkMade(writableName)
	return register(&w.core, &w.onDrain, fn)
}

// OnFinish registers fn to run at "finish": after End, once every accepted
// byte reached the sink, Final succeeded and every write callback ran. It
// returns a function that unregisters fn.
func (w *Writable) OnFinish(fn func()) (off func()) {
	if fn == nil {
		panic("stream: OnFinish: nil handler")
	}
	w.checkMade(writableName)
	return register(&w.core, &w.onFinish, fn)
}

// OnClose registers fn to run at "close", the last event of a stream: after
// the Destroy hook called done, and after every callback of a write accepted
// before it. It returns a function that unregisters fn. Done is closed once
// the close handlers have returned.
func (w *Writable) OnClose(fn func()) (off func()) {
	if fn == nil {
		panic("stream: OnClose: nil handler")
	}
	w.checkMade(writableName)
	return register(&w.core, &w.onClose, fn)
}

// OnError registers fn to run with the stream's error, once, just before
// "close", if the stream has one. Registering a handler is optional: the
// error also reaches the write callbacks, [Writable.Err], Write and
// [Writable.Close]. It returns a function that unregisters fn.
func (w *Writable) OnError(fn func(error)) (off func()) {
	if fn == nil {
		panic("stream: OnError: nil handler")
	}
	w.checkMade(writableName)
	return register(&w.core, &w.onError, fn)
}
