package stream

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamkit/stream/internal/ring"
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

	// Writev, if set, receives all buffered chunks in one call whenever two
	// or more are buffered when the sink becomes free (after Uncork, or
	// while a write was in flight). A single chunk always goes to the
	// WriteFunc.
	Writev WritevFunc

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
// A Writable must be created with [NewWritable]; the zero value is not
// usable. It is safe for concurrent use by any number of goroutines. It must
// be ended ([Writable.End], [Writable.Close]) or destroyed
// ([Writable.Destroy]) to release its sink; once [Writable.Done] is closed
// it holds no goroutine.
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
	write     WriteFunc
	writev    WritevFunc
	final     FinalFunc
	destroyFn DestroyFunc
	construct ConstructFunc
	hwm       int
	piece     int // size of the pieces Write and ReadFrom copy into
	stall     time.Duration

	done chan struct{} // closed after the close handlers returned

	// interrupt, if set (by an adapter, right after NewWritable), is called
	// once when the stream is destroyed, under the lock, to unblock a sink
	// call that would otherwise keep the Destroy hook waiting (a write stuck
	// on a socket, say). It must not block or call into the stream.
	interrupt func(err error)

	// fastMax bounds the length of a fast write (see fast.go); 0 disables
	// the fast path. fastDones are its done functions, used in turn, and
	// fastCall stands for an adopted fast write in w.call.
	fastMax   int
	fastDones [8]fastDone
	fastCall  completion
	fast      atomic.Uint64
	// fastCopy is the copy buffer of Write's fast writes, owned by whoever
	// holds fastBusy. It stays with the stream, so it is small: larger
	// Writes copy into pooled slabs, which go back to the pool once written.
	fastCopy []byte

	// completions are reused round-robin by write, writev and final calls,
	// so a stale done is recognised for the last len(completions)-1 calls.
	completions [8]completion
	hookCall    completion // the Destroy hook's
	initCall    completion // Construct's

	mu sync.Mutex // guards the fields below

	end      endState
	teardown teardown
	err      error // first error, sticky

	length           int              // bytes buffered + in flight
	buf              ring.Ring[entry] // accepted, in flight or waiting for the sink
	corked           int
	pendingCallbacks int
	needDrain        bool // a write returned false; cleared by "drain"
	// settled counts the accepted writes whose outcome is known (completed
	// by the sink or failed), in acceptance order; flushes are the waiting
	// Flush calls, in the order of their targets.
	settled uint64
	flushes []*flushWaiter
	// turn is held by a Write that spans more than one round, or by a
	// ReadFrom, until it returns: other Writes wait for it to be closed, so
	// that one Write's bytes are never interleaved with another's.
	turn    chan struct{}
	drainCh chan struct{} // made by Ready while needDrain; closed when it clears

	// adopted is the length of the fast write in flight adopted by the
	// locked path (w.call == &w.fastCall), and fastErr the result of its done
	// if that came while its WriteFunc was still running.
	adopted int
	fastErr error

	// call is the sink call in flight (write, writev, final or construct),
	// nil if none. The first inflight entries of buf are the chunks of a
	// write or writev call in flight; chunks holds the slices handed to
	// Writev, reused.
	call     *completion
	inflight int
	chunks   [][]byte
	callSeq  uint64
	stallFor *completion // the call the stall timer is armed for
	stallAt  time.Time   // when stallFor stalls
	timer    *time.Timer
	stopCtx  func() bool

	events     ring.Ring[event]
	delivering bool // a goroutine is running deliverLocked
	// barrierReached, hookRunning and barrierPassed track the destroy
	// barrier (see evHookBarrier): delivery has reached it; the Destroy hook
	// was started and has not returned yet; delivery went past it. Until
	// then, the callbacks of late writes wait in late, which is delivered
	// at the barrier rather than behind it.
	barrierReached bool
	hookRunning    bool
	barrierPassed  bool
	late           ring.Ring[event]

	nextHandlerID uint64
	onDrain       handlerList[func()]
	onFinish      handlerList[func()]
	onClose       handlerList[func()]
	onError       handlerList[func(error)]
}

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
// at a time, configured by opts. It panics if write is nil or
// opts.HighWaterMark is negative.
func NewWritable(write WriteFunc, opts Options) *Writable {
	if write == nil {
		panic("stream: NewWritable: nil WriteFunc")
	}
	if opts.HighWaterMark < 0 {
		panic(fmt.Sprintf("stream: NewWritable: negative Options.HighWaterMark %d", opts.HighWaterMark))
	}
	hwm := opts.HighWaterMark
	if hwm == 0 {
		hwm = DefaultHighWaterMark
	}
	w := &Writable{
		write:     write,
		writev:    opts.Writev,
		final:     opts.Final,
		destroyFn: opts.Destroy,
		construct: opts.Construct,
		hwm:       hwm,
		piece:     pieceSize(hwm),
		stall:     opts.StallTimeout,
		done:      make(chan struct{}),
	}
	for i := range w.completions {
		w.completions[i].init(w)
	}
	w.hookCall.init(w)
	w.initCall.init(w)
	w.fastCall.init(w)
	w.fastCall.kind = callWrite
	for i := range w.fastDones {
		d := &w.fastDones[i]
		d.w, d.gen = w, uint64(i)
		d.fn = d.complete
	}
	if w.stall <= 0 {
		w.fastMax = maxFastLen
	}
	if w.construct != nil {
		w.call = &w.initCall
		w.initCall.kind = callConstruct
		w.beginLocked(&w.initCall) // no other goroutine has w yet
	}
	if ctx := opts.Context; ctx != nil {
		if ctx.Err() != nil {
			w.mu.Lock()
			w.destroyLocked(context.Cause(ctx))
			w.pumpLocked()
			w.scheduleLocked()
			w.mu.Unlock()
		} else {
			w.stopCtx = context.AfterFunc(ctx, func() { w.Destroy(context.Cause(ctx)) })
		}
	}
	w.mu.Lock()
	w.unlock() // opens the fast path, unless constructing or destroyed
	if w.construct != nil {
		go w.runHook(&w.initCall, callConstruct, nil)
	}
	return w
}

// WriteChunk is Node's write(): it accepts chunk and never blocks. The
// stream takes ownership of chunk until cb runs; the sink receives this very
// slice, as one chunk. cb, which may be nil, runs once with the outcome of
// the write, never inside WriteChunk.
//
// WriteChunk returns false when the buffered length has reached the
// high-water mark (or the stream is destroyed): the caller should wait for
// [Writable.Ready] before writing more. The chunk is accepted either way.
//
// After End, cb gets ErrWriteAfterEnd and nothing else changes: the stream
// still finishes what it accepted before End (unlike Node, which destroys
// it). After Destroy, cb gets an error matching ErrDestroyed (and the
// destroying error, if any).
func (w *Writable) WriteChunk(chunk []byte, cb Callback) bool {
	if cb == nil {
		if v := w.claimFast(len(chunk)); v != 0 {
			return w.writeFast(chunk, v)
		}
	}
	w.checkMade()
	w.mu.Lock()
	w.closeFastLocked()
	if err := w.lateErrLocked(); err != nil {
		w.rejectLocked(err, cb)
		w.mu.Unlock()
		return false
	}
	w.length += len(chunk)
	w.pendingCallbacks++
	w.buf.PushBack(entry{chunk: chunk, cb: cb})
	w.pumpLocked()
	ok := w.belowHighWaterLocked()
	w.scheduleLocked()
	if cb != nil {
		// Writes with callbacks take the lock anyway; reopening the fast
		// path after each would only add two atomics per write.
		w.mu.Unlock()
	} else {
		w.unlock()
	}
	return ok
}

// Write implements io.Writer. It copies p into the stream, in pieces of
// the high-water mark rounded up to a power of two between 4 KiB and 1 MiB,
// and blocks while the stream needs drain, so memory stays bounded
// whatever the size of p. It returns the number of
// bytes accepted and, if that is less than len(p), the stream's error: see
// WriteChunk for the errors of late writes. Write never retains p.
// Consecutive Writes may reach the sink as one chunk.
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
		w.checkMade()
		w.mu.Lock()
		err := w.lateErrLocked()
		w.mu.Unlock()
		return 0, err
	}
	if len(p) <= fastWriteMax && len(p) < w.fastMax {
		if v := w.claimFast(len(p)); v != 0 {
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
	w.checkMade()
	held := false
	defer func() {
		if held {
			w.releaseTurn()
		}
	}()
	// Once all of p is accepted Write succeeds, even if the sink failed on
	// it synchronously: the error is the next call's.
	for len(p) > 0 {
		w.mu.Lock()
		w.closeFastLocked()
		if err := w.lateErrLocked(); err != nil {
			w.rejectLocked(err, nil)
			w.mu.Unlock()
			return n, err
		}
		if ch := w.waitChanLocked(held); ch != nil {
			w.mu.Unlock()
			<-ch
			continue
		}
		k := acceptCopyLocked(w, p)
		n += k
		p = p[k:]
		if len(p) > 0 && !held {
			w.turn = make(chan struct{})
			held = true
		}
		w.pumpLocked()
		w.belowHighWaterLocked()
		w.scheduleLocked()
		w.unlock()
	}
	return n, nil
}

// waitChanLocked returns what a Write or ReadFrom must wait on before it
// may accept bytes: another call's write turn (unless held reports that
// the caller holds it), or Ready while the stream needs drain. It returns
// nil if the caller may go on now.
func (w *Writable) waitChanLocked(held bool) <-chan struct{} {
	switch {
	case w.turn != nil && !held:
		return w.turn
	case w.needDrain:
		return w.readyLocked()
	}
	return nil
}

// acceptCopyLocked copies as much of p into the buffer as one round of a
// Write may take: the room left in the buffered tail, then whole pieces
// while the buffered length is under the high-water mark (at least one).
// It returns the number of bytes accepted.
func acceptCopyLocked[S []byte | string](w *Writable, p S) int {
	n := 0
	if tail := w.bufferedTailLocked(); tail != nil && tail.room() > 0 {
		n = min(len(p), tail.room())
		tail.chunk = append(tail.chunk, p[:n]...)
		w.length += n
	}
	for n < len(p) && (n == 0 || w.length < w.hwm) {
		s := getSlab(w.piece)
		k := copy(s.buf, p[n:])
		w.pendingCallbacks++
		w.buf.PushBack(entry{chunk: s.buf[:k], slab: s})
		w.length += k
		n += k
	}
	return n
}

// releaseTurn ends the write turn of a Write or ReadFrom, waking the Writes
// that wait for it.
func (w *Writable) releaseTurn() {
	w.mu.Lock()
	close(w.turn)
	w.turn = nil
	w.unlock()
}

// bufferedTailLocked returns the last buffered entry, or nil if every entry
// is in flight.
func (w *Writable) bufferedTailLocked() *entry {
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
	w.checkMade()
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
		if err := w.waitTurn(&held); err != nil {
			return total, err
		}
		if s == nil {
			s = getSlab(w.piece)
		}
		n, rerr := r.Read(s.buf)
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
// it does already) and the stream does not need drain, and returns the
// error a write would get now, if any.
func (w *Writable) waitTurn(held *bool) error {
	for {
		w.mu.Lock()
		if err := w.lateErrLocked(); err != nil {
			w.rejectLocked(err, nil)
			w.mu.Unlock()
			return err
		}
		ch := w.waitChanLocked(*held)
		if ch == nil {
			if !*held {
				w.closeFastLocked()
				w.turn = make(chan struct{})
				*held = true
			}
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		<-ch
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
		w.rejectLocked(err, nil)
		return false, err
	}
	if tail := w.bufferedTailLocked(); tail != nil && tail.room() >= n && 2*n < len(s.buf) {
		tail.chunk = append(tail.chunk, s.buf[:n]...)
	} else {
		w.pendingCallbacks++
		w.buf.PushBack(entry{chunk: s.buf[:n], slab: s})
		kept = true
	}
	w.length += n
	w.pumpLocked()
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
// error. Wait must not be called from a callback or event handler of the
// same stream while it needs drain: "drain" runs after the handler
// returns, so the call would hang forever (or until ctx is done).
func (w *Writable) Wait(ctx context.Context) error {
	w.checkMade()
	for {
		w.mu.Lock()
		if err := w.lateErrLocked(); err != nil {
			w.mu.Unlock()
			return err
		}
		if !w.needDrain {
			w.mu.Unlock()
			return nil
		}
		ch := w.readyLocked()
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// flushWaiter is a Flush waiting for the writes accepted before it.
type flushWaiter struct {
	target uint64        // w.settled once they have all settled
	err    error         // the first of their errors
	woken  chan struct{} // closed once their callbacks have run
	wake   Callback      // closes woken; queued behind those callbacks
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
	w.checkMade()
	w.mu.Lock()
	w.closeFastLocked()
	lateErr := w.lateErrLocked()
	if w.teardown == closed {
		w.mu.Unlock()
		<-w.done // the callbacks of every accepted write run before "close"
		return lateErr
	}
	w.corked = 0
	w.pumpLocked()
	f := &flushWaiter{target: w.settled + uint64(w.buf.Len()), woken: make(chan struct{})}
	if w.call == &w.fastCall {
		f.target++ // the adopted fast write, in flight outside buf
	}
	f.wake = func(error) { close(f.woken) }
	w.flushes = append(w.flushes, f)
	w.flushDueLocked()
	w.scheduleLocked()
	w.unlock()

	select {
	case <-f.woken:
	case <-ctx.Done():
		w.mu.Lock()
		w.flushes = slices.DeleteFunc(w.flushes, func(g *flushWaiter) bool { return g == f })
		w.mu.Unlock()
		return context.Cause(ctx)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	return lateErr
}

// settleOneLocked counts the next accepted write, in acceptance order, as
// settled with err, which becomes the result of the Flush calls waiting for
// it that have none yet.
func (w *Writable) settleOneLocked(err error) {
	w.settled++
	if err == nil {
		return
	}
	for _, f := range w.flushes {
		if f.err == nil && f.target >= w.settled {
			f.err = err
		}
	}
}

// flushDueLocked queues the wake-up of every Flush whose writes have all
// settled, behind the callbacks of those writes.
func (w *Writable) flushDueLocked() {
	for len(w.flushes) > 0 && w.flushes[0].target <= w.settled {
		w.events.PushBack(event{kind: evCallback, cb: w.flushes[0].wake})
		w.flushes[0] = nil
		w.flushes = w.flushes[1:]
	}
}

// End signals that no more data will be written: it uncorks the stream
// fully, lets the buffered chunks flush, runs Final, emits "finish" once
// every write callback has run, then runs the Destroy hook and emits
// "close". End does not wait; use Close or Done for that. Calling End again
// is harmless. Writes after End fail with ErrWriteAfterEnd.
func (w *Writable) End() {
	w.checkMade()
	w.mu.Lock()
	w.closeFastLocked()
	w.corked = 0
	if w.end == open && w.err == nil {
		w.end = ending
		w.wakeReadyLocked()
	}
	w.pumpLocked()
	w.scheduleLocked()
	w.mu.Unlock()
}

// Close ends the stream and waits until it has closed. It returns nil only
// if the stream finished: every accepted byte reached the sink, Final and
// the Destroy hook succeeded. Otherwise it returns the stream's error, or
// ErrDestroyed if Destroy(nil) cut the stream short. Close is idempotent
// and safe to call from many goroutines, but must not be called from a
// callback or event handler of the same stream: it waits for events that
// run after them.
func (w *Writable) Close() error {
	w.End() // panics on a Writable not made by NewWritable
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.err != nil:
		return w.err
	case w.end == finished:
		return nil
	default:
		return ErrDestroyed
	}
}

// Destroy tears the stream down without waiting for buffered data: writes
// still buffered get err (or ErrDestroyed if err is nil) in their callbacks,
// "finish" will not be emitted, and once the sink call in flight (if any)
// has settled, the Destroy hook runs, then "error" (if err is not nil) and
// "close". err becomes the stream's error unless it already had one. Only
// the first Destroy has an effect. Destroy does not wait; Done is closed
// after "close".
func (w *Writable) Destroy(err error) {
	w.checkMade()
	w.mu.Lock()
	w.destroyLocked(err)
	w.pumpLocked()
	w.scheduleLocked()
	w.mu.Unlock()
}

// Ready returns a channel that is closed when the stream can take more
// writes without exceeding its high-water mark: at once if no drain is
// needed, else at the next "drain". It is also closed when the stream ends
// or is destroyed, so a waiter is never stranded; its next write then
// returns the error. Waiting on Ready after WriteChunk returned false is
// the Go form of Node's once('drain').
func (w *Writable) Ready() <-chan struct{} {
	w.checkMade()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.readyLocked()
}

// Done returns a channel that is closed after "close": the stream has
// released its sink, every callback has run and the close handlers have
// returned.
func (w *Writable) Done() <-chan struct{} {
	w.checkMade()
	return w.done
}

// checkMade panics if w was not made by NewWritable: the zero value has no
// channels, sink or completions, and would fail later in obscure ways
// (a nil dereference, a mutex left held, a hang). The check is on the
// locked paths only; the fast path cannot open on such a stream.
func (w *Writable) checkMade() {
	if w.done == nil {
		panic("stream: Writable not made by NewWritable")
	}
}

// Err returns the stream's first error: nil if it has none. A Destroy(nil)
// leaves it nil.
func (w *Writable) Err() error {
	w.checkMade()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// State returns a snapshot of the stream's state.
func (w *Writable) State() State {
	w.checkMade()
	w.mu.Lock()
	defer w.mu.Unlock()
	length, pending := w.length, w.pendingCallbacks
	writing := w.call != nil && (w.call.kind == callWrite || w.call.kind == callWritev)
	if v := w.fast.Load(); v&(fastOpen|fastBusy) == fastOpen|fastBusy {
		length += fastLen(v) // a fast write in flight, not adopted
		pending++
		writing = true
	}
	return State{
		Length:           length,
		HighWaterMark:    w.hwm,
		Buffered:         w.buf.Len() - w.inflight,
		Corked:           w.corked,
		PendingCallbacks: pending,
		Writing:          writing,
		NeedDrain:        w.needDrain && w.end == open && w.teardown == alive,
		Ending:           w.end >= ending,
		Ended:            w.end >= ending,
		Finished:         w.end == finished,
		Destroyed:        w.teardown >= destroying,
		Closed:           w.teardown == closed,
		Err:              w.err,
	}
}
