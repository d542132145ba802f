package stream

import "fmt"

// Runs: chunks for an asynchronous sink, dispatched without the lock.
//
// A sink that completes on a goroutine of its own calls done there after
// its WriteFunc returned, and the locked path would take the lock on that
// goroutine for every chunk: settle it, pick the next, begin the call,
// while producers take the same lock to buffer more. So when such a done
// finds two or more chunks without callbacks waiting, it claims them all
// as a run. (Only there: started by producers' pumps or carryOn, runs
// made 64 producers on a synchronous sink 1.15-1.4x slower per write,
// holding the sink while they waited on the lock.) To the rest of the engine a run is one call in flight holding
// those entries (w.call is &w.runCall, w.inflight counts them), as a
// Writev call would. Its chunks then go to the WriteFunc one at a time,
// each from the done of the one before, with one CAS on w.runWord and no
// lock: the owner of the run is whichever goroutine carries it on.
//
// The owner does not settle the chunks that completed: Length, the buffer
// and the pending counts still include them until a holder of the lock
// reads from w.runWord how far the run got and settles them
// (syncRunLocked). Only the operations that need exact figures do so
// (State, and WriteChunk or Write only near the high-water mark or
// MaxBuffered, where the figure decides their result); elsewhere a run's
// Length is an upper bound.
//
// The owner takes the lock for a chunk whose completion ends the run, may
// make "drain" due (its stop), failed, or came while runAttention was set:
// a locked operation sets it when the stream changed under the run (Cork,
// End, Destroy, a write that found the stream at its mark). There the
// owner either carries on, with a new stop, or ends the run, leaving the
// chunks not called yet in the buffer for the locked path. A Flush needs
// no attention: the chunks it waits for include the run's last, whose
// completion takes the lock.
//
// w.runWord:
//
//	bits 0-1   the phase of the chunk in flight (runNone when no run is)
//	bit 2      runAttention
//	bits 8-31  the index of the run's stop, modulo 1<<24
//	bits 32-63 the index of the chunk in flight: indexes count the chunks
//	           of all runs, so that a stale done is told apart
const (
	runNone     = 0 // no run, or its last step is under the lock
	runInCall   = 1 // the WriteFunc is running; done not called yet
	runSyncDone = 2 // done came before the WriteFunc returned
	runAwaiting = 3 // the WriteFunc returned; its done carries the run on

	runPhaseMask  = 3
	runAttention  = 1 << 2
	runStopShift  = 8
	runStopMask   = 1<<24 - 1
	runIndexShift = 32

	// maxRunLen is the most chunks a run claims: a run that never meets a
	// locked operation still settles its chunks this often.
	maxRunLen = 1024
)

// runDone is the done function of a run's chunks of one index modulo
// len(core.runDones).
type runDone[T any] struct {
	w   *core[T]
	gen uint32
	fn  Callback
}

func runIndex(s uint64) uint32 { return uint32(s >> runIndexShift) }

// runWordOf is the word for chunk idx in phase, with the stop stop.
func runWordOf(idx uint32, phase uint64, stop uint32) uint64 {
	return uint64(idx)<<runIndexShift | uint64(stop&runStopMask)<<runStopShift | phase
}

// runStopsAt reports whether the chunk in flight in s is the stop.
func runStopsAt(s uint64) bool {
	return uint32(s>>runStopShift)&runStopMask == runIndex(s)&runStopMask
}

// runsPossible reports whether the stream may dispatch runs: a WriteFunc
// with no Writev (which takes the waiting chunks as one call), no timer on
// calls, no OnWritten, no eviction of waiting chunks (DropOldest would
// have to reach into a run), and not a Pipe (whose reader settles inside
// the call).
func (w *core[T]) runsPossible() bool {
	return w.fastMax != 0 && w.writev == nil && !(w.maxBuffered > 0 && w.overflow == DropOldest) &&
		!w.deliverElsewhere
}

// runOKLocked reports whether a run may go on without the lock.
func (w *core[T]) runOKLocked() bool {
	return w.teardown == alive && w.end == open && w.corked == 0 && len(w.flushes) == 0
}

// startRunLocked claims the waiting chunks as a run, if two or more
// without a callback are waiting for an idle sink and nothing else needs
// the lock, and reports whether it did. Their first chunk is then in call.
func (w *core[T]) startRunLocked() bool {
	if w.call != nil || !w.runsPossible() || !w.runOKLocked() || w.events.Len() > 0 && !w.delivering {
		return false
	}
	k := 0
	for n := min(w.buf.Len(), maxRunLen); k < n && w.buf.At(k).cb == nil; k++ {
	}
	if k < 2 {
		return false
	}
	for i := range k {
		w.runItems = append(w.runItems, w.buf.At(i).item)
	}
	w.call = &w.runCall
	w.inflight = k
	w.runBase = runIndex(w.runWord.Load()) + 1
	w.runLen = k
	w.runSettled = 0
	w.runWord.Store(runWordOf(w.runBase, runInCall, w.runStopLocked(w.runBase)))
	return true
}

// runStopLocked returns the index of the first chunk from idx on whose
// completion must take the lock: the run's last, or the first that may
// bring Length down to LowWaterMark while a drain is needed. Chunks
// before idx are settled.
func (w *core[T]) runStopLocked(idx uint32) uint32 {
	last := w.runBase + uint32(w.runLen) - 1
	if !w.needDrain {
		return last
	}
	length := w.length
	for i := idx; i != last; i++ {
		length -= w.buf.At(int(i - w.runBase - uint32(w.runSettled))).size
		if length <= w.lwm {
			return i
		}
	}
	return last
}

// runFrom calls the WriteFunc with the run's chunks from index idx on, for
// as long as each completes inside the call without needing the lock. It
// returns false, with mu released, once a chunk is pending (its done
// carries the run on), and true, with mu held, if the run ended.
func (w *core[T]) runFrom(idx uint32) (locked bool) {
dispatch:
	for ; ; idx++ {
		w.invokeRun(idx)
		for s := w.runWord.Load(); s&runAttention == 0; s = w.runWord.Load() {
			if s&runPhaseMask == runInCall {
				if w.runWord.CompareAndSwap(s, s&^runPhaseMask|runAwaiting) {
					return false
				}
				continue
			}
			if runStopsAt(s) {
				break
			}
			if w.runWord.CompareAndSwap(s, runWordOf(idx+1, runInCall, uint32(s>>runStopShift))) {
				continue dispatch
			}
		}
		w.mu.Lock()
		if !w.runReturnedLocked(idx) {
			if w.call == &w.runCall {
				w.scheduleLocked() // what settling the chunks before it queued
				w.mu.Unlock()
				return false // pending
			}
			return true
		}
		w.mu.Unlock()
	}
}

// runReturnedLocked goes on under the lock after the WriteFunc returned
// for chunk idx of the run and the run needs the lock. It reports whether
// chunk idx+1 is now in call. If not, either chunk idx is pending (w.call
// still the run) or the run ended.
func (w *core[T]) runReturnedLocked(idx uint32) (next bool) {
	s := w.runWord.Load()
	if s&runPhaseMask == runInCall {
		// Pending, and only this goroutine moves the word now: its done
		// waits for the lock, runAttention being set. Its completion
		// takes the lock too if the run cannot go on now.
		w.syncRunLocked()
		stop := idx
		if w.runOKLocked() {
			stop = w.runStopLocked(idx)
		}
		w.runWord.Store(runWordOf(idx, runAwaiting, stop))
		return false
	}
	err := w.runErr
	w.runErr = nil
	return w.runStepLocked(idx, err, true)
}

// runStepLocked settles chunk idx of the run, completed with err (inside
// its WriteFunc if sync), and the chunks before it, then either puts chunk
// idx+1 in call, reporting true, or ends the run.
func (w *core[T]) runStepLocked(idx uint32, err error, sync bool) (next bool) {
	pos := int(idx - w.runBase)
	w.settleRunLocked(pos)
	failed := err != nil
	if failed {
		// A failed chunk ends the run, before callResultLocked destroys the
		// stream: interrupt is for a call still in flight.
		w.call = nil
	}
	e := w.buf.Front()
	w.length -= e.size
	perItem, err := w.callResultLocked(err, 1, sync)
	if perItem != nil {
		err = perItem[0]
	}
	w.settleEntryLocked(e, err)
	w.buf.DropFront()
	w.inflight--
	w.runSettled++
	if !failed && pos+1 < w.runLen && w.runOKLocked() && (w.events.Len() == 0 || w.delivering) {
		w.runWord.Store(runWordOf(idx+1, runInCall, w.runStopLocked(idx+1)))
		return true
	}
	w.inflight = 0 // the chunks not called wait again
	w.call = nil
	w.runWord.Store(runWordOf(idx, runNone, 0))
	clear(w.runItems)
	w.runItems = w.runItems[:0]
	w.flushDueLocked()
	return false
}

// settleRunLocked settles the run's chunks before position pos that are
// still in the buffer: they succeeded.
func (w *core[T]) settleRunLocked(pos int) {
	for ; w.runSettled < pos; w.runSettled++ {
		e := w.buf.Front()
		w.length -= e.size
		w.settleEntryLocked(e, nil)
		w.buf.DropFront()
		w.inflight--
	}
}

// syncRunLocked settles the chunks the run in flight, if any, completed
// since the lock last looked.
func (w *core[T]) syncRunLocked() {
	if w.call == &w.runCall {
		if pos := int(runIndex(w.runWord.Load()) - w.runBase); pos > w.runSettled {
			w.settleRunLocked(pos)
			w.flushDueLocked()
		}
	}
}

// attendRunLocked settles what the run in flight, if any, completed, and
// makes it take the lock at its next step: the stream changed under it.
func (w *core[T]) attendRunLocked() {
	if w.call == &w.runCall {
		w.runWord.Or(runAttention)
		w.syncRunLocked()
	}
}

// runWaitingLocked is how many of the run's chunks have not been called
// yet: they are waiting, though counted in w.inflight.
func (w *core[T]) runWaitingLocked() int {
	if w.call != &w.runCall {
		return 0
	}
	return w.runLen - int(runIndex(w.runWord.Load())-w.runBase) - 1
}

// invokeRun calls the WriteFunc with chunk idx of the run. Should it
// panic, the chunk fails and the stream is destroyed, as in invoke.
func (w *core[T]) invokeRun(idx uint32) {
	returned := false
	defer func() {
		if !returned {
			r := recover()
			w.mu.Lock()
			w.runWord.Store(runWordOf(idx, runNone, 0)) // its done, if any, comes too late
			w.runStepLocked(idx, sinkPanicError(callWrite, r), false)
			w.pumpLocked()
			w.scheduleLocked()
			w.mu.Unlock()
			repanic(r)
		}
	}()
	w.write(w.runItems[idx-w.runBase], w.runDones[idx%uint32(len(w.runDones))].fn)
	returned = true
}

// complete is the done callback of a run's chunks.
func (d *runDone[T]) complete(err error) {
	w := d.w
	for err == nil {
		s := w.runWord.Load()
		idx := runIndex(s)
		if s&runAttention != 0 || idx%uint32(len(w.runDones)) != d.gen {
			break
		}
		if s&runPhaseMask == runInCall {
			if w.runWord.CompareAndSwap(s, s&^runPhaseMask|runSyncDone) {
				return // the dispatcher carries on
			}
			continue
		}
		if s&runPhaseMask != runAwaiting || runStopsAt(s) {
			break
		}
		if w.runWord.CompareAndSwap(s, runWordOf(idx+1, runInCall, uint32(s>>runStopShift))) {
			if w.runFrom(idx+1) && w.pumpAfterDone() {
				w.deliverHereLocked()
				w.unlock()
			}
			return
		}
	}
	w.mu.Lock()
	for {
		s := w.runWord.Load()
		idx := runIndex(s)
		ph := s & runPhaseMask
		if idx%uint32(len(w.runDones)) != d.gen || ph != runInCall && ph != runAwaiting {
			// Not the done of the chunk in flight: called twice, or stale.
			w.destroyLocked(fmt.Errorf("%w (%v)", ErrMultipleCallback, callWrite))
			w.pumpLocked()
			w.scheduleLocked()
			w.mu.Unlock()
			return
		}
		if ph == runInCall {
			// Its WriteFunc is still running: the dispatcher takes the
			// lock for err once it returns.
			w.runErr = err
			if w.runWord.CompareAndSwap(s, s&^runPhaseMask|runSyncDone|runAttention) {
				w.mu.Unlock()
				return
			}
			w.runErr = nil
			continue // it returned meanwhile
		}
		if !w.runWord.CompareAndSwap(s, runWordOf(idx, runNone, 0)) {
			continue
		}
		if w.runStepLocked(idx, err, false) {
			w.mu.Unlock()
			if !w.runFrom(idx + 1) {
				return
			}
		}
		if w.pumpAfterDone() {
			w.deliverHereLocked()
			w.unlock()
		}
		return
	}
}
