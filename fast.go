package stream

import (
	"fmt"
	"runtime"
)

// The fast path.
//
// A write to an idle stream needs none of the machinery behind the lock:
// nothing is buffered, no event can be due, and if the sink completes
// before returning there is nothing to do afterwards but its callback. On a
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
//	bit 4      fastHasCb: it has a callback, in fastSlots at the head
//	bits 8-19  the head of fastSlots: how many callbacks fast writes have
//	           published, modulo fastSlotCount
//	bits 20-31 its generation; the low three bits choose its done function
//	bits 32-63 its length
//
// Any locked operation that reads or changes the stream's state first
// closes the fast path (closeFastLocked). A fast write in flight at that
// moment is adopted: from then on it is an ordinary write in flight (w.call
// is &w.fastCall), and its completion goes through the lock. The locked
// path reopens the fast path when the stream is idle again.
//
// A fast write with a callback takes the same path. Its claimant stores
// the callback in fastSlots at the head, and the done that releases the
// sink advances the head in the same CAS: that publishes the callback,
// which a courier goroutine (or whoever delivers events) runs later, in
// order, outside any lock. The callbacks published before an event was
// queued run before it: queueLocked puts a mark in the event queue first
// (see markFastLocked).
const (
	fastOpen     = 1 << 0
	fastBusy     = 1 << 1
	fastReturned = 1 << 2
	fastDoneSync = 1 << 3
	fastHasCb    = 1 << 4

	fastSpins    = 64  // loads while another fast write holds the sink
	fastYields   = 16  // then yields, each followed by one look (see claimFastYielding)
	fastWriteMax = 512 // the largest Write that may take the fast path
	// fastFullYields is how many times a write with a callback yields
	// while fastSlots is full before it takes the locked path.
	fastFullYields = 64

	fastHeadShift = 8
	fastHeadMask  = (fastSlotCount - 1) << fastHeadShift
	fastGenShift  = fastHeadShift + fastSlotBits
	fastGenMask   = 1<<32 - 1<<fastGenShift
	// fastKeep are the bits that outlive a fast write.
	fastKeep     = fastGenMask | fastHeadMask
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

func fastHead(v uint64) uint64 { return v & fastHeadMask >> fastHeadShift }

// fastSlotCount is the size of fastSlots: the head in w.fast counts
// modulo fastSlotCount, and at most fastSlotCount-1 callbacks wait in it.
const (
	fastSlotBits  = 12
	fastSlotCount = 1 << fastSlotBits
)

// fastBlockSize is the size of the blocks of fastSlots.
const fastBlockSize = 256

// callbackRing holds the callbacks of fast writes, at the counts of their
// publication modulo fastSlotCount, in blocks made when the head first
// reaches them: a stream that never has many callbacks waiting keeps one
// small block.
type callbackRing struct {
	blocks [fastSlotCount / fastBlockSize]*[fastBlockSize]Callback
}

// at returns the slot of count i. Its block exists once the head reached it.
func (r *callbackRing) at(i uint64) *Callback {
	i %= fastSlotCount
	return &r.blocks[i/fastBlockSize][i%fastBlockSize]
}

// store puts cb in the slot of count i, making its block if need be.
func (r *callbackRing) store(i uint64, cb Callback) {
	i %= fastSlotCount
	b := &r.blocks[i/fastBlockSize]
	if *b == nil {
		*b = new([fastBlockSize]Callback)
	}
	(*b)[i%fastBlockSize] = cb
}

// fastSlotsBetween returns how many slots lie from the count from to the
// count to, modulo fastSlotCount.
func fastSlotsBetween(from, to uint64) uint64 { return (to - from) & (fastSlotCount - 1) }

// claimFast tries to claim the sink for a fast write of n bytes without a
// callback. It returns the word describing the write; or 0 if the fast
// path is closed or n does not fit in the word; or stillBusy if another
// fast write held the sink throughout (see claimFastYielding).
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
			// fastClaimed, written out: inlined, claimFast is inlined too.
			claimed := (v+1<<fastGenShift)&fastKeep | fastOpen | fastBusy | uint64(n)<<fastLenShift
			if w.fast.CompareAndSwap(v, claimed) {
				return claimed
			}
		case fastOpen | fastBusy:
		default:
			return 0 // closed
		}
	}
	return stillBusy
}

// stillBusy is what claimFast returns when the sink stayed busy: never a
// claimed word, which has fastBusy set.
const stillBusy = fastOpen

// claimFastYielding goes on trying to claim the sink after claimFast found
// it busy throughout, while the fast write holding it is inside its
// WriteFunc: it yields the processor before each look, up to fastYields
// times, and returns the claimed word, or 0 to buffer behind that write.
//
// With more producers than processors, taking the lock at once closed the
// fast path for everyone: the write in flight was adopted and the others
// buffered behind it, each through the lock, until the buffer emptied
// (with 64 producers on a synchronous sink, about 1800 writes each time).
// Yielding lets the producers that share this processor run instead, one
// of which takes the sink next. A WriteFunc that returned before its done
// (an asynchronous sink) may hold the sink for any time: that is not
// waited for.
func (w *core[T]) claimFastYielding(n int) uint64 {
	for range fastYields {
		if !w.heldInCall() {
			break
		}
		runtime.Gosched()
		v := w.fast.Load()
		switch v & (fastOpen | fastBusy) {
		case fastOpen:
			if claimed := fastClaimed(v, n); w.fast.CompareAndSwap(v, claimed) {
				return claimed
			}
		case fastOpen | fastBusy:
		default:
			return 0 // closed
		}
	}
	return 0
}

// heldInCall reports whether a fast write holds the sink from inside its
// WriteFunc.
func (w *core[T]) heldInCall() bool {
	return w.fast.Load()&(fastOpen|fastBusy|fastReturned) == fastOpen|fastBusy
}

// claimFastCallback is claimFast for a write with the callback cb, which
// also needs a free slot in fastSlots.
func (w *core[T]) claimFastCallback(n int, cb Callback) uint64 {
	if n >= w.fastMax {
		return 0
	}
	yields, busyYields := 0, 0
	for spin := 0; spin < fastSpins; spin++ {
		v := w.fast.Load()
		switch v & (fastOpen | fastBusy) {
		case fastOpen:
			if fastSlotsBetween(w.fastTail.Load(), fastHead(v)) == fastSlotCount-1 {
				// Full. Give the courier time to catch up: the locked
				// path would take the lock it needs on every write.
				// Bounded, as this may be a callback on the courier.
				if yields == fastFullYields {
					return 0
				}
				yields++
				spin--
				runtime.Gosched()
				continue
			}
			if claimed := fastClaimed(v, n) | fastHasCb; w.fast.CompareAndSwap(v, claimed) {
				w.fastSlots.store(fastHead(claimed), cb) // published by its done
				return claimed
			}
		case fastOpen | fastBusy:
			if spin == fastSpins-1 && busyYields < fastYields && w.heldInCall() {
				busyYields++ // as claimFastYielding: a yield, then one look
				spin = fastSpins - 2
				runtime.Gosched()
			}
		default:
			return 0 // closed
		}
	}
	return 0
}

// fastClaimed returns the word of a fast write of n bytes claiming the
// sink from the word v: the next generation, the same head.
func fastClaimed(v uint64, n int) uint64 {
	return (v+1<<fastGenShift)&fastKeep | fastOpen | fastBusy | uint64(n)<<fastLenShift
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

// settleFastLocked completes the adopted fast write described by v, as
// settleWriteLocked does a write call of one item.
func (w *core[T]) settleFastLocked(v uint64, err error, sync bool) {
	w.fast.Store(v & fastKeep)
	w.call = nil
	w.length -= w.adopted
	w.adopted = 0
	perItem, err := w.callResultLocked(err, 1, sync)
	if perItem != nil {
		err = perItem[0]
	}
	if err != nil {
		w.flushErrLocked(w.adoptedSeq, err)
	}
	if v&fastHasCb != 0 {
		// Its claimant stored the callback before it set fastReturned or
		// called into the lock itself: the slot is read after that.
		slot := w.fastSlots.at(fastHead(v))
		w.queueLocked(event[T]{kind: evCallback, counted: true, cb: *slot, err: err})
		*slot = nil
	} else {
		w.pendingCallbacks--
	}
	w.settledLocked()
}

// complete is the done callback of a fast write.
func (d *fastDone[T]) complete(err error) {
	w := d.w
	for err == nil {
		v := w.fast.Load()
		if v&(fastOpen|fastBusy|fastDoneSync) != fastOpen|fastBusy ||
			fastGen(v)%uint64(len(w.fastDones)) != d.gen ||
			v&(fastHasCb|fastReturned) == fastHasCb|fastReturned {
			// Not ours to release; or a callback whose done came after the
			// WriteFunc returned: the locked path runs it inside done, as
			// it does every completion on a sink's goroutine.
			break
		}
		released := v&fastKeep | fastOpen
		if v&fastHasCb != 0 {
			released = v&fastGenMask | fastOpen | (v+1<<fastHeadShift)&fastHeadMask
		}
		if w.fast.CompareAndSwap(v, released) {
			if v&fastHasCb != 0 {
				w.wakeCourier()
			}
			return // released: nothing else was waiting
		}
		// The claimant set fastReturned, or a locked operation closed the
		// fast path: look again.
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
		w.turn || w.end != open || w.teardown != alive {
		return
	}
	if v := w.fast.Load(); v&fastOpen == 0 {
		w.fast.Store(v&fastKeep | fastOpen)
	}
}

// unlock reopens the fast path if the stream is idle, and unlocks.
func (w *core[T]) unlock() {
	w.maybeOpenFastLocked()
	w.mu.Unlock()
}

// courierPolls is how many times an idle courier looks for new callbacks,
// yielding the processor between looks (about 15 µs here), after a busy
// round (courierBusyRound callbacks or more), before it stops: long enough
// to carry a stream of writes without being restarted for each batch. It
// keeps a processor busy meanwhile, so after a smaller round the courier
// stops at once, and the next callback published starts another: a writer
// of one callback every 20 µs then costs its courier 18 % of a core
// instead of 79 % with two looks.
//
// A round holds what was published during the pause before it, so 64 is a
// writer of about a callback per microsecond. A courier that stops while
// writes keep coming costs their writer: the next one waits in the
// writer's run queue until an idle processor's thread wakes up (tens of µs
// on this machine's VM), and meanwhile fastSlots fills and the writer
// yields. With 1024 here, a writer of a callback per write restarted its
// courier every 10 000 to 40 000 writes, and took 1.14-1.19x the time per
// write (with fastTailStep).
const (
	courierPolls     = 64
	courierBusyRound = 64
)

// courierPause is how many times the courier yields between two looks.
const courierPause = 128

// wakeCourier makes sure a courier runs the callback just published.
func (w *core[T]) wakeCourier() {
	if !w.courierOn.Load() && w.courierOn.CompareAndSwap(false, true) {
		go w.courier()
	}
}

// courier is the goroutine that delivers the callbacks fast writes publish,
// unless another goroutine is delivering events (it takes them too, before
// it stops). It stays while writes keep coming and stops when idle or once
// the stream is destroyed, after which no fast write publishes anything.
func (w *core[T]) courier() {
	stopped := false
	defer func() {
		if !stopped { // a callback panicked or called runtime.Goexit
			w.courierOn.Store(false)
		}
	}()
	for {
		w.mu.Lock()
		if w.delivering || w.teardown != alive {
			w.courierOn.Store(false)
			w.mu.Unlock()
			stopped = true
			return
		}
		w.delivering = true
		w.takeAll = true
		from := w.fastTaken
		w.deliverLocked()
		w.takeAll = false
		polls := 0
		if w.fastTaken-from >= courierBusyRound {
			polls = courierPolls
		}
		w.mu.Unlock()
		if !w.awaitFastCallbacks(polls) {
			stopped = true
			return
		}
	}
}

// awaitFastCallbacks looks up to polls times for callbacks that fast writes
// published, and reports whether some are there; if not, the courier has
// stopped: courierOn is clear, and the next one to publish starts another.
func (w *core[T]) awaitFastCallbacks(polls int) bool {
	for range polls {
		// Each look pulls the producers' line away from them: look
		// seldom, letting a batch build up meanwhile.
		for range courierPause {
			runtime.Gosched()
		}
		v := w.fast.Load()
		if fastSlotsBetween(w.fastTail.Load(), fastHead(v)) != 0 {
			return true
		}
		if v&fastOpen == 0 {
			// Nothing can be published before the fast path reopens, and
			// then the first to publish starts a courier: stop now, so as
			// not to outlive the stream by more than a look.
			break
		}
	}
	w.courierOn.Store(false)
	// A callback published before the store may have seen courierOn set.
	return w.fastPublished() && w.courierOn.CompareAndSwap(false, true)
}

// fastPublished reports whether fastSlots holds callbacks not taken yet.
func (w *core[T]) fastPublished() bool {
	return fastSlotsBetween(w.fastTail.Load(), fastHead(w.fast.Load())) != 0
}
