package stream

import "github.com/streamkit/stream/internal/wakecount"

// The goroutines that wait for room (Write, WriteString, ReadFrom, Wait)
// queue in FIFO order and are woken one at a time: "drain" wakes the
// first, and a woken waiter that finds room left after its own write (or,
// for Wait, when it returns) wakes the next, so that at each drain only
// as many run as the room takes, plus the one that finds it gone and goes
// back to the head of the queue. End, Destroy and errors wake them all.
// Ready is apart: its channel is closed for everyone who selects on it.
//
// What keeps a waiter from being stranded: whenever the stream has room
// (see waitingLocked) and a waiter is queued that may go on, another
// waiter holds a wake-up (woken, not yet back under the lock, or running),
// and every woken waiter passes the wake-up on (wakeNextLocked) when it
// leaves with the room still there: it accepted its bytes, returned, or
// gave up on its ctx. Drain and the end of a write turn make the first
// wake-up; one that finds the room gone goes back to the head.

// waiter is a goroutine parked until the stream has room for it.
type waiter struct {
	ch         chan struct{} // one wake-up, capacity 1; empty while idle
	prev, next *waiter       // in the queue, or next in the free list
	woken      bool          // taken off the queue and sent a wake-up
	write      bool          // a Write or ReadFrom: it needs the write turn too
}

// waitQueue is the FIFO of parked waiters, with a free list of spare ones
// so that waiting allocates only the first time a stream has that many
// waiters at once.
type waitQueue struct {
	head, tail *waiter
	free       *waiter
	// holder is the Write or ReadFrom holding the write turn while it
	// waits for "drain": it comes before the queue, whose Writes wait
	// for its turn to end.
	holder *waiter
}

// getWaiterLocked returns an idle waiter, not queued.
func (w *core[T]) getWaiterLocked(write bool) *waiter {
	q := w.waiters.free
	if q == nil {
		q = &waiter{ch: make(chan struct{}, 1)}
	} else {
		w.waiters.free = q.next
	}
	q.next, q.woken, q.write = nil, false, write
	return q
}

// putWaiterLocked puts back q, which is not queued, and its wake-up (if it
// was woken but left by another way) with it.
func (w *core[T]) putWaiterLocked(q *waiter) {
	if q.woken {
		select {
		case <-q.ch:
		default:
		}
	}
	q.prev, q.next = nil, w.waiters.free
	w.waiters.free = q
}

// enqueueLocked queues q, at the head if it was woken before (it keeps its
// place), or makes it the waiting turn holder.
func (w *core[T]) enqueueLocked(q *waiter, holder bool) {
	wq := &w.waiters
	switch {
	case holder:
		wq.holder = q
	case q.woken && wq.head != nil:
		q.next = wq.head
		wq.head.prev = q
		wq.head = q
	default:
		q.prev = wq.tail
		if wq.tail != nil {
			wq.tail.next = q
		} else {
			wq.head = q
		}
		wq.tail = q
	}
	q.woken = false
}

// sleepLocked queues q, unlocks, and blocks until q is woken.
func (w *core[T]) sleepLocked(q *waiter, holder bool) {
	w.enqueueLocked(q, holder)
	w.mu.Unlock()
	<-q.ch
	wakecount.Wakeup()
}

// unqueueLocked takes q out of the queue (or the holder's place).
func (w *core[T]) unqueueLocked(q *waiter) {
	wq := &w.waiters
	if wq.holder == q {
		wq.holder = nil
		return
	}
	if q.prev != nil {
		q.prev.next = q.next
	} else {
		wq.head = q.next
	}
	if q.next != nil {
		q.next.prev = q.prev
	} else {
		wq.tail = q.prev
	}
	q.prev, q.next = nil, nil
}

// wakeLocked takes q out of the queue and wakes it.
func (w *core[T]) wakeLocked(q *waiter) {
	w.unqueueLocked(q)
	q.woken = true
	q.ch <- struct{}{} // never blocks: q was parked, its channel empty
}

// waitingLocked reports whether a waiter for room must keep waiting: the
// stream needs drain and is alive and open.
func (w *core[T]) waitingLocked() bool {
	return w.needDrain && w.end == open && w.teardown == alive
}

// mustWaitLocked reports whether a waiter for room must wait: the stream
// needs drain, or turn says that it waits for another call's write turn.
// A lingering batch goes now, since someone waits; should that complete
// the drain or kill the stream, there is nothing to wait for (the caller
// checks the stream's error next).
func (w *core[T]) mustWaitLocked(turn bool) bool {
	if w.waitingLocked() {
		w.pumpLocked()
		w.scheduleLocked()
	}
	return w.waitingLocked() || turn && w.end == open && w.teardown == alive
}

// wakeNextLocked wakes the waiters that may go on now, if the stream has
// room: the turn holder, and the first in the queue that does not need
// the turn while it is held.
func (w *core[T]) wakeNextLocked() {
	if w.waitingLocked() {
		return
	}
	if q := w.waiters.holder; q != nil {
		w.wakeLocked(q)
	}
	for q := w.waiters.head; q != nil; q = q.next {
		if !q.write || !w.turn {
			w.wakeLocked(q)
			return
		}
	}
}

// wakeAllLocked wakes every waiter: waiting became pointless (End,
// Destroy, an error).
func (w *core[T]) wakeAllLocked() {
	if q := w.waiters.holder; q != nil {
		w.wakeLocked(q)
	}
	for w.waiters.head != nil {
		w.wakeLocked(w.waiters.head)
	}
}
