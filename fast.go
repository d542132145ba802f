package stream

import "fmt"

// The fast path.
//
// A write with no callback to an idle stream needs none of the machinery
// behind the lock: nothing is buffered, no event can be due, and if the
// sink completes before returning there is nothing to do afterwards. On a
// 2-core machine of this project an uncontended atomic operation costs
// about 8 ns and a lock and unlock of a sync.Mutex about 19 ns, while Node
// spends about 20 ns on a whole write; the locked path (two lock/unlock
// pairs and three atomics per write) measured 110 ns. So such a write
// claims the sink with one CAS on w.fast and its done releases it with
// another, without the lock: about 25 ns in all.
//
// w.fast says whether the fast path is open, and describes the fast write
// in flight, if any:
//
//	bit 0      fastOpen: the stream is idle and writable (see
//	           maybeOpenFastLocked); a write may claim the sink
//	bit 1      fastBusy: a fast write is in flight
//	bit 2      fastReturned: its WriteFunc returned before done was called
//	bit 3      fastDoneSync: done was called, through the locked path,
//	           while its WriteFunc was running
//	bits 8-31  its generation; the low three bits choose its done function
//	bits 32-63 its length
//
// Any locked operation that reads or changes the stream's state first
// closes the fast path (closeFastLocked). A fast write in flight at that
// moment is adopted: from then on it is an ordinary write in flight (w.call
// is &w.fastCall), and its completion goes through the lock. The locked
// path reopens the fast path when the stream is idle again.
const (
	fastOpen     = 1 << 0
	fastBusy     = 1 << 1
	fastReturned = 1 << 2
	fastDoneSync = 1 << 3

	fastSpins    = 64  // loads while another fast write holds the sink
	fastWriteMax = 512 // the largest Write that may take the fast path

	fastGenShift = 8
	fastGenMask  = 1<<32 - 1<<fastGenShift
	fastLenShift = 32
	maxFastLen   = 1<<32 - 1
)

// fastDone is the done function of fast writes of one generation modulo
// len(core.fastDones). Several of them, used in turn, let a stale done
// be told apart from the current one, as with completions.
type fastDone[T any] struct {
	w   *core[T]
	gen uint64 // generation modulo len(w.fastDones)
	fn  Callback
}

func fastGen(v uint64) uint64 { return v & fastGenMask >> fastGenShift }

func fastLen(v uint64) int { return int(v >> fastLenShift) }

// claimFast tries to claim the sink for a fast write of n bytes. It returns
// the word describing the write, or 0 if the fast path is closed or busy,
// or n does not fit in the word.
func (w *core[T]) claimFast(n int) uint64 {
	if n >= w.fastMax {
		return 0
	}
	// While another fast write holds the sink, wait a little for it: a
	// synchronous sink releases it within nanoseconds, and falling back to
	// the lock would close the fast path for everyone (with many producers
	// it then seldom reopens).
	for spin := 0; spin < fastSpins; spin++ {
		v := w.fast.Load()
		switch v & (fastOpen | fastBusy) {
		case fastOpen:
			claimed := (v+1<<fastGenShift)&fastGenMask | fastOpen | fastBusy | uint64(n)<<fastLenShift
			if w.fast.CompareAndSwap(v, claimed) {
				return claimed
			}
		case fastOpen | fastBusy:
		default:
			return 0 // closed
		}
	}
	return 0
}

// writeFast makes the fast write claimed as v and reports WriteChunk's
// result.
func (w *core[T]) writeFast(item T, v uint64) bool {
	w.invokeFast(item, v)
	if w.fast.Load() == v && w.fast.CompareAndSwap(v, v|fastReturned) {
		// Pending: its done completes it. Length is n: at the high-water
		// mark, needDrain must be set, under the lock.
		if fastLen(v) < w.hwm {
			return true
		}
		w.mu.Lock()
		w.closeFastLocked()
		ok := w.belowHighWaterLocked()
		w.mu.Unlock()
		return ok
	}
	if cur := w.fast.Load(); (cur^v)&(fastBusy|fastGenMask) != 0 {
		// done released the sink (another fast write may hold it now). If
		// the fast path is still open the stream is idle and alive; if not,
		// something happened meanwhile (the sink may even have destroyed the
		// stream): compute the result under the lock.
		if cur&fastOpen != 0 {
			return true
		}
		w.mu.Lock()
		ok := w.belowHighWaterLocked()
		w.mu.Unlock()
		return ok
	}
	return w.returnFastAdopted(v)
}

// invokeFast calls the WriteFunc for fast write v. Should it panic, the
// write fails and the stream is destroyed, as in invoke.
func (w *core[T]) invokeFast(item T, v uint64) {
	returned := false
	defer func() {
		if !returned {
			r := recover()
			defer repanic(r)
			w.mu.Lock()
			w.closeFastLocked()
			panicErr := sinkPanicError(callWrite, r)
			if cur := w.fast.Load(); cur&fastBusy != 0 && fastGen(cur) == fastGen(v) {
				w.settleFastLocked(cur, panicErr, false)
			} else {
				w.failLocked(panicErr)
			}
			w.pumpLocked()
			w.scheduleLocked()
			w.mu.Unlock()
		}
	}()
	w.write(item, w.fastDones[fastGen(v)%uint64(len(w.fastDones))].fn)
	returned = true
}

// returnFastAdopted finishes WriteChunk for fast write v after the locked
// path adopted it during the WriteFunc call.
func (w *core[T]) returnFastAdopted(v uint64) bool {
	w.mu.Lock()
	cur := w.fast.Load()
	if cur&fastDoneSync != 0 {
		err := w.fastErr
		w.fastErr = nil
		w.settleFastLocked(cur, err, true)
		w.pumpUpTo(false, inlineBudget-1) // the fast write was its own call
	} else {
		w.fast.Store(cur | fastReturned) // its done completes it
	}
	ok := w.belowHighWaterLocked()
	w.scheduleLocked()
	w.unlock()
	return ok
}

// settleFastLocked completes the adopted fast write described by v.
func (w *core[T]) settleFastLocked(v uint64, err error, sync bool) {
	w.fast.Store(v & fastGenMask)
	w.call = nil
	w.length -= w.adopted
	w.adopted = 0
	w.pendingCallbacks-- // its callback is nil
	if err != nil {
		w.flushErrLocked(w.adoptedSeq, err)
	}
	w.settleWriteLocked(err, sync)
}

// complete is the done callback of a fast write.
func (d *fastDone[T]) complete(err error) {
	w := d.w
	if err == nil {
		v := w.fast.Load()
		if v&(fastOpen|fastBusy|fastDoneSync) == fastOpen|fastBusy &&
			fastGen(v)%uint64(len(w.fastDones)) == d.gen &&
			w.fast.CompareAndSwap(v, v&fastGenMask|fastOpen) {
			return // released: nothing else was waiting
		}
	}
	w.mu.Lock()
	w.closeFastLocked() // adopts the write if the fast path was still open
	cur := w.fast.Load()
	switch {
	case cur&(fastBusy|fastDoneSync) != fastBusy || fastGen(cur)%uint64(len(w.fastDones)) != d.gen:
		// No fast write of this done in flight: called twice, or stale.
		w.destroyLocked(fmt.Errorf("%w (%v)", ErrMultipleCallback, callWrite))
		w.pumpLocked()
		w.scheduleLocked()
	case cur&fastReturned != 0:
		w.settleFastLocked(cur, err, false)
		w.pumpLocked()
		w.deliverHereLocked()
	default:
		// The WriteFunc is still running: returnFastAdopted settles it.
		w.fast.Store(cur | fastDoneSync)
		w.fastErr = err
	}
	w.unlock()
}

// closeFastLocked closes the fast path, adopting the fast write in flight,
// if any, as the write in flight of the locked path.
func (w *core[T]) closeFastLocked() {
	for {
		v := w.fast.Load()
		if v&fastOpen == 0 {
			return
		}
		if w.fast.CompareAndSwap(v, v&^fastOpen) {
			if v&fastBusy != 0 {
				n := fastLen(v)
				w.call = &w.fastCall
				w.adopted = n
				w.accepted++
				w.adoptedSeq = w.accepted
				w.length += n
				w.pendingCallbacks++
			}
			return
		}
	}
}

// maybeOpenFastLocked opens the fast path if the stream is idle: writable,
// nothing buffered or in flight, not corked, no drain needed, no Write
// between its pieces (a fast Write would land among them). Streams with a
// StallTimeout never open it (every call needs the timer).
func (w *core[T]) maybeOpenFastLocked() {
	if w.fastMax == 0 || w.call != nil || w.buf.Len() > 0 || w.corked > 0 || w.needDrain ||
		w.turn != nil || w.end != open || w.teardown != alive {
		return
	}
	if v := w.fast.Load(); v&fastOpen == 0 {
		w.fast.Store(v&fastGenMask | fastOpen)
	}
}

// unlock reopens the fast path if the stream is idle, and unlocks.
func (w *core[T]) unlock() {
	w.maybeOpenFastLocked()
	w.mu.Unlock()
}
