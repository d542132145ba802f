package stream

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/streamkit/stream/internal/wakecount"
)

// State is a snapshot of a Writable's internal state, the analogue of Node's
// _writableState and writable* getters. It is taken under the stream's lock,
// so its fields are consistent with each other, but the stream may have moved
// on by the time the caller reads them.
type State struct {
	// Length is the number of bytes (for a WritableOf, units of its Size:
	// items by default) accepted and not yet completed by the
	// sink: buffered plus in flight (Node's writableLength).
	Length int
	// HighWaterMark is the stream's high-water mark, in the units of Length.
	HighWaterMark int
	// Buffered is the number of chunks waiting for the sink, not counting
	// the ones in flight (Node's bufferedRequestCount).
	Buffered int
	// Corked is the Cork nesting depth (Node's writableCorked).
	Corked int
	// PendingCallbacks counts accepted writes whose callback, nil or not,
	// has not run yet (Node's pendingcb).
	PendingCallbacks int
	// Dropped counts the items (chunks) that Overflow dropped at
	// MaxBuffered since the stream was made.
	Dropped int

	// Writing reports whether a write or writev sink call is in flight.
	// It is false while Final runs.
	Writing bool
	// NeedDrain reports whether a write returned false and "drain" has not
	// fired yet; it reads false once the stream is ending or destroyed
	// (Node's writableNeedDrain).
	NeedDrain bool
	// Ending and Ended report whether End has been called (Node's ending and
	// writableEnded); End on a stream that already has an error sets neither.
	Ending, Ended bool
	// Finished reports whether "finish" has been emitted.
	Finished bool
	// Destroyed reports whether the stream was destroyed: by Destroy, by an
	// error, or after "finish".
	Destroyed bool
	// Closed reports whether the Destroy hook has called done; "close"
	// follows.
	Closed bool
	// Err is the stream's first error, as returned by [Writable.Err].
	Err error
}

// enumString names v from names, or as typ(v) if it is out of range.
func enumString[T ~uint8](names []string, v T, typ string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

// endState is where a stream is on its way to "finish". It only moves
// forward.
type endState uint8

const (
	// open: the stream accepts writes. End moves it to ending, unless the
	// stream already has an error.
	open endState = iota
	// ending: End was called. Buffered chunks still flush; once the last
	// write completed, Final (if any) starts and the state moves to
	// finalizing, else straight to finishing.
	ending
	// finalizing: Final is in flight. Its success moves to finishing; its
	// error destroys the stream.
	finalizing
	// finishing: "finish" is queued behind every pending callback. A Destroy
	// before it is delivered cancels it.
	finishing
	// finished: "finish" was delivered. The stream then destroys itself.
	finished
)

var endStateNames = [...]string{"open", "ending", "finalizing", "finishing", "finished"}

func (s endState) String() string { return enumString(endStateNames[:], s, "endState") }

// teardown is where a stream is on its way to "close". It only moves
// forward, independently of endState.
type teardown uint8

const (
	// alive: not destroyed. Destroy, a sink error, ctx, or the delivery of
	// "finish" move it to destroying.
	alive teardown = iota
	// destroying: destroyed, waiting for the sink call in flight (write,
	// writev, final or construct) to settle. Once nothing is in flight the
	// buffered callbacks are failed, the Destroy hook starts and the state
	// moves to closing.
	destroying
	// closing: the Destroy hook is running. Its done moves to closed and
	// queues "error" (if the stream has an error) and "close".
	closing
	// closed: the hook called done. Done() closes once "close" was
	// delivered.
	closed
)

var teardownNames = [...]string{"alive", "destroying", "closing", "closed"}

func (s teardown) String() string { return enumString(teardownNames[:], s, "teardown") }

// callKind is the kind of a sink call.
type callKind uint8

const (
	callWrite callKind = iota
	callWritev
	callFinal
	callConstruct
	callDestroy
)

var callKindNames = [...]string{"write", "writev", "final", "construct", "destroy"}

func (k callKind) String() string { return enumString(callKindNames[:], k, "callKind") }

// Phases of a completion. A sink call starts inCall; done moves it to
// syncDone if the sink function has not returned yet, and the dispatching
// goroutine completes the call after the return. If the function returns
// first, the dispatcher moves it to awaiting and done completes the call
// itself (marking it settled). It stays there until the completion is
// reused, or becomes abandoned when the stall timer gave up on it; a done
// that finds it so, or idle, is a second done.
const (
	phaseIdle uint32 = iota
	phaseInCall
	phaseSyncDone
	phaseAwaiting
	phaseAbandoned
)

// completion is the done callback of one sink call. It is reused from call
// to call so that handing done to the sink allocates nothing.
type completion[T any] struct {
	w     *core[T]
	fn    Callback // c.complete, bound once
	phase atomic.Uint32
	kind  callKind // guarded by w.mu
	err   error    // guarded by w.mu; the result of a syncDone call
	// settled, guarded by w.mu, marks a call completed in phase awaiting,
	// which stays awaiting until the completion is reused.
	settled bool
}

func (c *completion[T]) init(w *core[T]) {
	c.w = w
	c.fn = c.complete
}

// complete is the done callback handed to the sink.
func (c *completion[T]) complete(err error) {
	// Fast path: a successful completion before the sink function returned
	// needs no lock; the dispatcher finishes the job.
	if err == nil && c.phase.Load() == phaseInCall && c.phase.CompareAndSwap(phaseInCall, phaseSyncDone) {
		return
	}
	w := c.w
	w.mu.Lock()
	switch c.phase.Load() {
	case phaseInCall:
		c.err = err
		if c.phase.CompareAndSwap(phaseInCall, phaseSyncDone) {
			w.mu.Unlock()
			return
		}
		// The sink function returned meanwhile: complete here.
		fallthrough
	case phaseAwaiting:
		if c.settled {
			w.doneTwiceLocked(c)
			break
		}
		c.settled = true // rather than an atomic store to idle: one less per chunk
		w.settleLocked(c, err, false)
		if w.pumpAfterDone() {
			w.deliverHereLocked()
			w.unlock()
		}
		return
	case phaseAbandoned:
		// The stall timer gave up on this call; its result no longer counts.
	default:
		w.doneTwiceLocked(c)
	}
	w.mu.Unlock()
}

// doneTwiceLocked handles a done for a call that is not in flight: called
// twice, or late. The first call counted; this one is an error of the sink.
func (w *core[T]) doneTwiceLocked(c *completion[T]) {
	if c.kind != callDestroy {
		w.destroyLocked(fmt.Errorf("%w (%v)", ErrMultipleCallback, c.kind))
		w.pumpLocked()
		w.scheduleLocked()
	}
}

// pumpLocked starts the next sink call whenever one can start, and settles
// calls whose done ran before the sink function returned, in a loop, so a
// synchronous sink flushes any number of buffered chunks in constant stack.
// It returns when nothing can start or a call is pending asynchronously.
// Writes run on the calling goroutine, the Destroy hook on a goroutine of
// its own (see runHook). mu is held on entry and on return, but released
// around each sink call.
func (w *core[T]) pumpLocked() { w.pumpUpTo(false, -1) }

// inlineBudget is how many sink calls a producer's WriteChunk, Write,
// WriteString or ReadFrom makes inline for chunks that other goroutines
// queued, beyond the first call it makes (its own chunk's): past it, the
// stream's own goroutine carries on. With a synchronous sink such a call
// so takes at most 1+inlineBudget sink calls, while a fast sink still
// combines the writes of many producers, inlineBudget+1 at a time.
const inlineBudget = 15

// pumpProducerLocked is pumpLocked for a producer's write, which runs others'
// chunks only up to inlineBudget.
func (w *core[T]) pumpProducerLocked() { w.pumpUpTo(false, inlineBudget) }

// carryOn runs the sink calls a producer left past its budget, on a
// goroutine of the stream, and delivers what they caused.
func (w *core[T]) carryOn() {
	w.mu.Lock()
	w.carrying = false
	w.pumpLocked()
	w.deliverHereLocked()
	w.unlock()
}

// pumpAfterDone is pumpLocked on the goroutine of a done that came after
// its WriteFunc returned, an asynchronous sink's: there it takes waiting
// chunks as a run (see run.go), and when it leaves a call pending and its
// caller has no event to deliver, it returns false with mu released, which
// saves a lock and unlock per call.
func (w *core[T]) pumpAfterDone() (locked bool) { return w.pumpUpTo(true, -1) }

// pumpUpTo is pump, making at most 1+budget sink calls if budget is not
// negative; if more could start, it hands them to carryOn.
func (w *core[T]) pumpUpTo(mayUnlock bool, budget int) (locked bool) {
	for calls := 0; ; calls++ {
		if calls > budget && budget >= 0 && w.buf.Len() > 0 && w.call == nil {
			if !w.carrying {
				w.carrying = true
				go w.carryOn()
			}
			return true
		}
		// Runs are for the goroutines of asynchronous sinks (see run.go).
		if mayUnlock && w.startRunLocked() {
			first := w.runBase
			w.mu.Unlock()
			if !w.runFrom(first) {
				return false // the pending chunk's done carries on
			}
			continue
		}
		c, chunk := w.startLocked()
		if c == nil {
			return true
		}
		kind, batch, err := c.kind, w.batch, w.err
		if kind == callDestroy {
			go w.runHook(c, kind, err)
			return true
		}
		nothingToDeliver := mayUnlock && (w.events.Len() == 0 || w.delivering)
		w.mu.Unlock()
		w.invoke(c, kind, chunk, batch, err)
		// A load first: a synchronous sink leaves syncDone, and a failing
		// CAS costs as much as a successful one.
		if c.phase.Load() == phaseInCall && c.phase.CompareAndSwap(phaseInCall, phaseAwaiting) {
			if nothingToDeliver {
				return false // the call's done carries on from here
			}
			w.mu.Lock()
			return true
		}
		w.mu.Lock()
		if c.phase.Load() == phaseSyncDone {
			// syncDone stays: like idle, it makes a second done an error.
			w.settleLocked(c, c.err, true)
		}
	}
}

// invoke makes sink call c without the lock held. If the sink panics (or
// calls runtime.Goexit), the call fails with an error carrying the panic's
// value, destroying the stream, before the panic goes on up the caller's
// stack: the stream is never left with a call in flight that nothing will
// complete.
func (w *core[T]) invoke(c *completion[T], kind callKind, item T, batch []T, err error) {
	returned := false
	defer func() {
		if !returned {
			r := recover()
			w.mu.Lock()
			w.abandonLocked(c, sinkPanicError(kind, r))
			w.scheduleLocked()
			w.mu.Unlock()
			repanic(r)
		}
	}()
	switch kind {
	case callWrite:
		w.write(item, c.fn)
	case callWritev:
		w.writev(batch, c.fn)
	case callFinal:
		w.final(c.fn)
	case callDestroy:
		w.destroyFn(err, c.fn)
	case callConstruct:
		w.construct(c.fn)
	}
	returned = true
}

// sinkPanicError is the error of a sink call that panicked with r (nil for
// runtime.Goexit): "stream: sink panicked (write): <r>".
func sinkPanicError(kind callKind, r any) error {
	if r == nil {
		return fmt.Errorf("%w (%v): runtime.Goexit", errSinkPanicked, kind)
	}
	return fmt.Errorf("%w (%v): %v", errSinkPanicked, kind, r)
}

// repanic continues the panic that recover returned as r, once the stream
// has recorded it. A nil r is runtime.Goexit (a nil panic value arrives as
// *runtime.PanicNilError), which goes on by itself when the deferred
// function returns.
func repanic(r any) {
	if r != nil {
		panic(r)
	}
}

// abandonLocked gives up on sink call c, unless it settled already, with
// err as its result; its late done will be ignored.
func (w *core[T]) abandonLocked(c *completion[T], err error) {
	for {
		ph := c.phase.Load()
		if ph != phaseInCall && ph != phaseSyncDone && ph != phaseAwaiting || c.settled {
			return // settled already, or abandoned by the stall timer
		}
		if c.phase.CompareAndSwap(ph, phaseAbandoned) {
			break
		}
	}
	if c.kind == callDestroy {
		w.hookRunning = false // its goroutine may never return: lift the barrier
	}
	w.settleLocked(c, err, false)
	w.pumpLocked()
}

// startLocked picks the next sink call, if one can start now, and marks it
// in flight. For a write it also returns the item.
func (w *core[T]) startLocked() (*completion[T], T) {
	var item T
	if w.call != nil || w.teardown >= closing {
		return nil, item
	}
	if w.teardown == destroying {
		if !w.barrierReached {
			return nil, item // delivery has not caught up with the destroy yet
		}
		return w.startDestroyLocked(), item
	}
	var kind callKind
	switch n := w.buf.Len(); {
	case n > 0 && (w.corked > 0 || w.linger > 0 && w.lingerLocked(n)):
		return nil, item
	case n > 0:
		k := 1
		if w.writev != nil {
			k = w.batchLenLocked(n)
		}
		w.inflight = k
		if n > k {
			w.lingerFrom = time.Time{} // the rest waited already: no linger
		}
		if k == 1 && w.write != nil {
			kind = callWrite
			item = w.buf.Front().item
			break
		}
		kind = callWritev
		for i := range k {
			w.batch = append(w.batch, w.buf.At(i).item)
		}
	case w.end == ending:
		// Every write completed. Final, or else "finish", comes next, but
		// only after the callbacks already queued: the delivery of evFinal
		// starts Final.
		if w.final == nil {
			w.end = finishing
			w.queueLocked(event[T]{kind: evFinish})
		} else {
			w.end = finalizing
			w.queueLocked(event[T]{kind: evFinal})
		}
		return nil, item
	default:
		return nil, item
	}
	c := w.nextCompletionLocked(kind)
	w.beginLocked(c)
	return c, item
}

// batchLenLocked returns how many of the n waiting items a Writev call
// takes: every one up to MaxBatch items and MaxBatchSize units, and at
// least one.
func (w *core[T]) batchLenLocked(n int) int {
	if w.maxBatch > 0 {
		n = min(n, w.maxBatch)
	}
	if w.maxBatchSize > 0 {
		units := w.buf.Front().size
		k := 1
		for ; k < n; k++ {
			size := w.buf.At(k).size
			if units+size > w.maxBatchSize {
				break
			}
			units += size
		}
		n = k
	}
	return n
}

// lingerLocked reports whether the n items waiting for an idle sink should
// wait for more (Options.Linger), and if so arms the linger timer for when
// they must go. They go at once when the batch is full, when Length reached
// the high-water mark, when someone waits (a write returned false, so a
// producer may be in Wait or a blocked Write; a Flush), and at End or
// Destroy.
func (w *core[T]) lingerLocked(n int) bool {
	if w.linger <= 0 || w.end != open || w.needDrain || len(w.flushes) > 0 || w.length >= w.hwm ||
		w.maxBatch > 0 && n >= w.maxBatch || w.maxBatchSize > 0 && w.length >= w.maxBatchSize {
		return false
	}
	wait := w.linger - time.Since(w.lingerFrom)
	if wait <= 0 {
		return false
	}
	if w.lingerTimer == nil {
		w.lingerTimer = time.AfterFunc(wait, w.onLinger)
	} else {
		w.lingerTimer.Reset(wait)
	}
	return true
}

// onLinger runs when the linger timer fires: the waiting batch goes now,
// on the timer's goroutine, unless it went meanwhile.
func (w *core[T]) onLinger() {
	w.mu.Lock()
	w.pumpLocked()
	w.deliverHereLocked()
	w.unlock()
}

// nextCompletionLocked returns the next completion of the ring for a write,
// writev or final call.
func (w *core[T]) nextCompletionLocked(kind callKind) *completion[T] {
	w.callSeq++
	c := &w.completions[w.callSeq%uint64(len(w.completions))]
	c.kind = kind
	return c
}

// beginLocked marks c as the call in flight and arms the stall timer.
func (w *core[T]) beginLocked(c *completion[T]) {
	c.err = nil
	c.settled = false
	c.phase.Store(phaseInCall)
	if c.kind != callDestroy {
		w.call = c
	}
	if w.stall > 0 {
		w.stallFor = c
		w.stallAt = time.Now().Add(w.stall)
		if w.timer == nil {
			w.timer = time.AfterFunc(w.stall, w.onStall)
		} else {
			w.timer.Reset(w.stall)
		}
	}
}

// startDestroyLocked fails the buffered writes and starts the Destroy hook:
// the stream is destroyed and nothing is in flight any more.
func (w *core[T]) startDestroyLocked() *completion[T] {
	w.teardown = closing
	err := w.err
	if err == nil {
		err = ErrDestroyed
	}
	for w.buf.Len() > 0 {
		e := w.buf.Front()
		w.length -= e.size
		w.settleEntryLocked(e, err)
		w.buf.DropFront()
	}
	w.flushDueLocked()
	if w.destroyFn == nil {
		w.closeLocked(nil)
		return nil
	}
	c := &w.hookCall
	c.kind = callDestroy
	w.hookRunning = true
	w.beginLocked(c)
	return c
}

// settleLocked records the outcome of sink call c: it was completed by done
// (before or after the sink function returned), or given up by the stall
// timer. sync reports a completion inside the call that dispatched it.
func (w *core[T]) settleLocked(c *completion[T], err error, sync bool) {
	if w.stallFor == c {
		w.stallFor = nil
		w.timer.Stop()
	}
	if c.kind == callDestroy {
		w.closeLocked(err)
		return
	}
	w.call = nil
	switch c.kind {
	case callWrite, callWritev:
		if c.phase.Load() == phaseAbandoned {
			// The sink may still hold the chunks: their slabs must not go
			// back to the pool, where another Write would copy into them.
			w.forgetSlabsInFlightLocked()
		}
		w.settleWriteLocked(err, sync)
	case callFinal:
		if err != nil {
			w.failLocked(err)
		} else if w.end == finalizing {
			w.end = finishing
			w.queueLocked(event[T]{kind: evFinish})
		}
	case callConstruct:
		if err != nil {
			w.failLocked(err)
		}
	}
}

// settleWriteLocked completes the entries of the write or writev call that
// just settled. "drain" comes before their callbacks: decided now for an
// asynchronous completion; for one inside a producer's call, checked when
// the callbacks are delivered, as Node does in its after-write tick. An
// ItemErrors result gives each entry its own error and keeps the stream
// alive; one of the wrong length destroys it with ErrBadItemErrors.
func (w *core[T]) settleWriteLocked(err error, sync bool) {
	for i := range w.inflight {
		w.length -= w.buf.At(i).size
	}
	perItem, err := w.callResultLocked(err, w.inflight, sync)
	if w.onWritten != nil && w.inflight > 1 && perItem == nil && w.noCallbackInFlightLocked() {
		// One outcome for all of them: one event.
		w.queueWrittenBatchLocked(w.inflight, err)
		for ; w.inflight > 0; w.inflight-- {
			e := w.buf.Front()
			if err != nil && len(w.flushes) > 0 {
				w.flushErrLocked(e.seq, err)
			}
			e.release()
			w.buf.DropFront()
		}
	}
	for i := 0; w.inflight > 0; i++ {
		if perItem != nil {
			err = perItem[i]
		}
		w.settleEntryLocked(w.buf.Front(), err)
		w.buf.DropFront()
		w.inflight--
	}
	w.settledLocked()
}

// noCallbackInFlightLocked reports whether no item in flight has a callback.
func (w *core[T]) noCallbackInFlightLocked() bool {
	for i := range w.inflight {
		if w.buf.At(i).cb != nil {
			return false
		}
	}
	return true
}

// callResultLocked applies the result err of a write call of n items to the
// stream, whose units the caller took off length: an error fails it, and a
// success may make "drain" due. It returns the error of every item, or
// their own errors (perItem) if err was an ItemErrors of length n.
func (w *core[T]) callResultLocked(err error, n int, sync bool) (perItem ItemErrors, itemErr error) {
	w.length += w.credited // a Pipe's reader took these off already (credit)
	w.credited = 0
	perItem, ok := err.(ItemErrors)
	switch {
	case ok && len(perItem) == n:
		err = nil
	case ok:
		err = fmt.Errorf("%w: %d errors for a batch of %d", ErrBadItemErrors, len(perItem), n)
		perItem = nil
	}
	if err != nil {
		w.failLocked(err)
	} else if w.needDrain {
		if sync {
			w.queueLocked(event[T]{kind: evDrainCheck})
		} else if w.drainDueLocked() {
			w.clearNeedDrainLocked()
			w.queueLocked(event[T]{kind: evDrain})
		}
	}
	return perItem, err
}

// settledLocked ends the settling of a write call, once the outcomes of its
// items are queued.
func (w *core[T]) settledLocked() {
	w.flushDueLocked()
	clear(w.batch)
	w.batch = w.batch[:0]
	if cap(w.batch) > maxKeptChunks {
		w.batch = nil // do not hold a burst's slice
	}
}

// settleEntryLocked records the outcome of an accepted write that left the
// buffer: its callback and OnWritten are queued, and the Flush calls that
// wait for it learn its error.
func (w *core[T]) settleEntryLocked(e *entry[T], err error) {
	if err != nil && len(w.flushes) > 0 {
		w.flushErrLocked(e.seq, err)
	}
	w.queueOutcomeLocked(e, err)
	e.release()
}

// maxKeptChunks is the largest slice of chunks kept for the next Writev.
const maxKeptChunks = 4096

// forgetSlabsInFlightLocked detaches the pooled buffers of the chunks in
// flight from their entries, leaving them to the garbage collector.
func (w *core[T]) forgetSlabsInFlightLocked() {
	for i := range w.inflight {
		w.buf.At(i).slab = nil
	}
}

// failLocked records a sink error: it becomes the stream's error unless it
// already had one, and destroys the stream. A call failing after a
// Destroy(nil) still counts, except with an error matching ErrDestroyed:
// that is the echo of the Destroy (an adapter's write cut short by
// interrupt), which its callback gets, as buffered writes do, without
// making it the stream's error.
func (w *core[T]) failLocked(err error) {
	if w.err == nil && (w.teardown == alive || !errors.Is(err, ErrDestroyed)) {
		w.err = err
	}
	w.destroyLocked(err)
}

// destroyLocked marks the stream destroyed; the next pump starts the
// Destroy hook once nothing is in flight. Only the first call counts.
func (w *core[T]) destroyLocked(err error) {
	if w.teardown != alive {
		return
	}
	w.closeFastLocked()
	w.attendRunLocked()
	w.teardown = destroying
	if err != nil && w.err == nil {
		w.err = err
	}
	w.queueLocked(event[T]{kind: evHookBarrier})
	w.wakeReadyLocked()
	if w.interrupt != nil && w.call != nil {
		w.interrupt(w.err)
	}
}

// closeLocked records the Destroy hook's done and queues the last events.
func (w *core[T]) closeLocked(err error) {
	w.teardown = closed
	if err != nil && w.err == nil {
		w.err = err
	}
	if w.stopCtx != nil {
		w.stopCtx()
	}
	if w.timer != nil {
		w.timer.Stop()
		w.stallFor = nil
	}
	if w.lingerTimer != nil {
		w.lingerTimer.Stop()
	}
	if w.err != nil {
		w.queueLocked(event[T]{kind: evError, err: w.err})
	}
	w.queueLocked(event[T]{kind: evClose})
}

// lateErrLocked returns the error a write gets now, or nil if the stream
// accepts writes. As in Node, End takes precedence over Destroy.
func (w *core[T]) lateErrLocked() error {
	switch {
	case w.end != open:
		return ErrWriteAfterEnd
	case w.teardown == alive:
		return nil
	case w.err != nil:
		return fmt.Errorf("%w: %w", ErrDestroyed, w.err)
	default:
		return ErrDestroyed
	}
}

// rejectLocked fails a late write of item: its callback and OnWritten get
// err, and nothing else changes. Unlike Node (spec H1), a write after End
// does not destroy the stream: a Go writer racing a shutdown must not cost
// the data accepted before End (DESIGN rule 7).
func (w *core[T]) rejectLocked(err error, item T, cb Callback) {
	if cb == nil && w.onWritten == nil {
		return
	}
	w.markFastLocked()
	q := &w.events
	if w.teardown != alive && !w.barrierPassed {
		// Not held behind the destroy barrier: a late write does not wait
		// for the write in flight (Node calls it back on the next tick).
		q = &w.late
	}
	ev := event[T]{kind: evCallback, cb: cb, err: err}
	if w.onWritten != nil {
		q.pushWritten(ev, item)
	} else {
		q.PushBack(ev)
	}
	w.scheduleLocked()
}

// belowHighWaterLocked computes WriteChunk's result: whether the buffered
// length is under the high-water mark (or zero) and the stream alive. A
// false for length sets needDrain (Node's rule C3).
func (w *core[T]) belowHighWaterLocked() bool {
	ok := w.length < w.hwm || w.length == 0
	if !ok {
		w.syncRunLocked() // a run's Length is an upper bound
		ok = w.length < w.hwm || w.length == 0
	}
	if !ok {
		w.setNeedDrainLocked()
	}
	return ok && w.teardown == alive
}

// setNeedDrainLocked records that a write found the stream full: "drain"
// is due once Length is down to LowWaterMark.
func (w *core[T]) setNeedDrainLocked() {
	if !w.needDrain {
		w.needDrain = true
		w.attendRunLocked() // its stop moves to where "drain" comes
	}
}

// drainDueLocked reports whether "drain" is due now (Node's rule D1, at
// LowWaterMark rather than only at zero).
func (w *core[T]) drainDueLocked() bool {
	return w.needDrain && w.length <= w.lwm && w.end == open && w.teardown == alive
}

// clearNeedDrainLocked ends a drain episode: Ready's channel is closed,
// and the first waiter for room is woken (see wait.go).
func (w *core[T]) clearNeedDrainLocked() {
	wakecount.Drain()
	w.needDrain = false
	w.closeReadyLocked()
	w.wakeNextLocked()
}

// readyLocked returns Ready's channel: closed unless a drain is needed, in
// which case one channel per drain episode, made on first demand.
func (w *core[T]) readyLocked() chan struct{} {
	if !w.needDrain || w.end != open || w.teardown != alive {
		return closedChan
	}
	if w.drainCh == nil {
		w.drainCh = make(chan struct{})
	}
	return w.drainCh
}

// wakeReadyLocked releases every goroutine waiting for room, on Ready or
// in the queue of waiters: the stream ended or was destroyed.
func (w *core[T]) wakeReadyLocked() {
	w.closeReadyLocked()
	w.wakeAllLocked()
}

// closeReadyLocked closes Ready's channel, if one was made.
func (w *core[T]) closeReadyLocked() {
	if w.drainCh != nil {
		close(w.drainCh)
		w.drainCh = nil
	}
}

// runHook makes a hook call (Construct, Final or Destroy) on a goroutine
// of its own. Hooks typically stop or flush a worker goroutine and wait for
// it; were they called on the goroutine that called done, that worker's
// own, they would deadlock. Final and the Destroy hook start only once the
// callbacks queued before them have run, so user code never runs
// concurrently with the stream's own callbacks and events. The events
// queued behind the Destroy hook's barrier wait until it has returned;
// then this goroutine delivers them.
func (w *core[T]) runHook(c *completion[T], kind callKind, err error) {
	var none T
	w.invoke(c, kind, none, nil, err)
	w.mu.Lock()
	if kind == callDestroy {
		w.hookRunning = false
	}
	if !c.phase.CompareAndSwap(phaseInCall, phaseAwaiting) && c.phase.Load() == phaseSyncDone {
		// syncDone stays, as in pump: a second done finds it and fails.
		w.settleLocked(c, c.err, false)
		w.pumpLocked()
	}
	w.deliverHereLocked()
	w.mu.Unlock()
}

// onStall runs when the stall timer fires: the call it was armed for, if
// still pending, is given up with ErrStalled, which destroys the stream.
func (w *core[T]) onStall() {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.stallFor
	if c == nil || time.Now().Before(w.stallAt) {
		return // settled meanwhile, or the timer was re-armed for a later call
	}
	w.abandonLocked(c, fmt.Errorf("%w: %v did not call done within %v", ErrStalled, c.kind, w.stall))
	w.deliverHereLocked()
}
