package stream

import "github.com/streamkit/stream/internal/ring"

// Events and write callbacks are queued under the stream's lock and delivered
// in queue order, one at a time, by whichever goroutine holds the delivering
// flag, never under the lock. A call made by a producer (WriteChunk, End,
// Destroy, ...) hands delivery to a new goroutine so that nothing it caused
// runs inside it (Node's process.nextTick rule); a sink completing on its own
// goroutine delivers what its completion caused itself, before done returns
// (Node runs those callbacks inside the sink's callback too). The callbacks
// of fast writes completed inside their WriteFunc wait in fastSlots instead
// (see fast.go): a courier goroutine runs them, and evFastCallbacks keeps
// their place in the queue.

type eventKind uint8

const (
	// evCallback runs a write callback.
	evCallback eventKind = iota
	// evDrain emits "drain", decided when an asynchronous completion brought
	// Length to zero. Skipped if the stream is ending or destroyed by then.
	evDrain
	// evDrainCheck emits "drain" if it is due when delivered: queued ahead
	// of the callbacks of a completion that happened inside a producer's
	// call, as Node checks in its deferred after-write tick.
	evDrainCheck
	// evFinish emits "finish" unless the stream was destroyed meanwhile,
	// then destroys the stream, which starts the Destroy hook.
	evFinish
	// evError runs the error handlers with the stream's error.
	evError
	// evClose runs the close handlers, then closes Done().
	evClose
	// evFinal starts Final, once every write callback has run.
	evFinal
	// evWritten runs OnWritten over n items that settled together with one
	// error and have no callbacks; their items are in the queue's items.
	evWritten
	// evFastCallbacks runs the callbacks that fast writes published in
	// fastSlots before the next event was queued: up to the count at the
	// front of the queue's marks.
	evFastCallbacks
	// evHookBarrier is queued when the stream is destroyed. When delivery
	// reaches it, every event queued before the destroy has run: the Destroy
	// hook may start as soon as nothing is in flight. The events behind it
	// (the callbacks the destroy fails, "error", "close") wait until the
	// hook has returned.
	evHookBarrier
)

type event[T any] struct {
	kind eventKind
	// counted marks the outcome of an accepted write, which
	// PendingCallbacks counts until it ran. Late writes are not counted.
	counted bool
	// written marks an outcome that OnWritten gets too, before cb (which
	// may be nil); its item is in the queue's items.
	written bool
	n       int32 // evWritten: how many items
	cb      Callback
	err     error
}

// eventQueue is a FIFO of events. The items of the outcomes that OnWritten
// gets ride in a ring of their own, in the same order, so that an event
// stays small for the streams without OnWritten (every byte stream).
type eventQueue[T any] struct {
	ev    ring.Ring[event[T]]
	items ring.Ring[T]
	marks ring.Ring[uint64] // the counts of the evFastCallbacks events
}

func (q *eventQueue[T]) Len() int            { return q.ev.Len() }
func (q *eventQueue[T]) Front() *event[T]    { return q.ev.Front() }
func (q *eventQueue[T]) PushBack(e event[T]) { q.ev.PushBack(e) }

// pushWritten queues the outcome e of item, for OnWritten and e.cb.
func (q *eventQueue[T]) pushWritten(e event[T], item T) {
	e.written = true
	q.ev.PushBack(e)
	q.items.PushBack(item)
}

// PopFront removes the first event and returns it, with its item if it
// has one.
func (q *eventQueue[T]) PopFront() (e event[T], item T, ok bool) {
	if e, ok = q.ev.PopFront(); ok && e.written {
		item, _ = q.items.PopFront()
	}
	return e, item, ok
}

// PushFront puts back an event that PopFront returned, with its item.
func (q *eventQueue[T]) PushFront(e event[T], item T) {
	q.ev.PushFront(e)
	if e.written {
		q.items.PushFront(item)
	}
}

type handler[F any] struct {
	id uint64
	fn F
}

// handlerList is copied on write: delivery iterates over the slice it read
// under the lock, so handlers added or removed meanwhile take effect from
// the next event on.
type handlerList[F any] []handler[F]

func (l handlerList[F]) with(id uint64, fn F) handlerList[F] {
	return append(l[:len(l):len(l)], handler[F]{id, fn})
}

func (l handlerList[F]) without(id uint64) handlerList[F] {
	for i, h := range l {
		if h.id == id {
			out := make(handlerList[F], 0, len(l)-1)
			out = append(out, l[:i]...)
			return append(out, l[i+1:]...)
		}
	}
	return l
}

// register adds fn to the handlers of one event and returns its off.
func register[T, F any](w *core[T], list *handlerList[F], fn F) (off func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nextHandlerID++
	id := w.nextHandlerID
	*list = list.with(id, fn)
	return func() {
		w.mu.Lock()
		*list = list.without(id)
		w.mu.Unlock()
	}
}

// queueLocked queues e, behind the callbacks fast writes published so far.
func (w *core[T]) queueLocked(e event[T]) {
	w.markFastLocked()
	w.events.PushBack(e)
}

// queueWrittenLocked queues e, the outcome of item for OnWritten, as
// queueLocked.
func (w *core[T]) queueWrittenLocked(e event[T], item T) {
	w.markFastLocked()
	w.events.pushWritten(e, item)
}

// queueWrittenBatchLocked queues the outcome err of the first n items in
// the buffer, written by one call and without callbacks, for OnWritten: one
// event for all of them, their items in the queue's items.
func (w *core[T]) queueWrittenBatchLocked(n int, err error) {
	w.markFastLocked()
	w.events.PushBack(event[T]{kind: evWritten, counted: true, n: int32(n), err: err})
	for i := range n {
		w.events.items.PushBack(w.buf.At(i).item)
	}
}

// markFastLocked queues an evFastCallbacks event for the callbacks fast
// writes published since the last one: they were published before anything
// queued from now on, so they run before it.
func (w *core[T]) markFastLocked() {
	if w.fastMax == 0 {
		return // no fast path, no fast callbacks
	}
	if head := w.fastHeadLocked(); head > w.fastMarked && head > w.fastTaken {
		w.fastMarked = head
		w.events.PushBack(event[T]{kind: evFastCallbacks})
		w.events.marks.PushBack(head)
	}
}

// fastHeadLocked returns how many callbacks fast writes have published in
// all: the head in w.fast counts modulo fastSlotCount, and fewer than that
// wait, so it is less than fastSlotCount ahead of the last count seen.
func (w *core[T]) fastHeadLocked() uint64 {
	base := max(w.fastMarked, w.fastTaken)
	return base + fastSlotsBetween(base, fastHead(w.fast.Load()))
}

// fastTakeMin is the fewest published callbacks that delivery takes from
// fastSlots when nothing else is queued, unless the courier takes them all.
const fastTakeMin = 1024

// fastTailStep is how many slots delivery frees at once, within a take:
// claimants of writes with callbacks read fastTail on every write, and each
// store pulls its line away from them.
const fastTailStep = 512

// takeFastLocked moves the published callbacks of fastSlots, up to the
// count upTo and as many as fit, into batch, as counted outcomes, and
// returns how many it moved.
func (w *core[T]) takeFastLocked(upTo uint64, batch []event[T]) int {
	n := int(min(upTo-w.fastTaken, uint64(len(batch))))
	for i := range n {
		slot := w.fastSlots.at(w.fastTaken + uint64(i))
		batch[i] = event[T]{kind: evCallback, counted: true, cb: *slot}
		*slot = nil
	}
	w.fastTaken += uint64(n)
	// Their slots are free: in steps, and all of them at the end of a take.
	if w.fastTaken == upTo || w.fastTaken-w.fastTail.Load() >= fastTailStep {
		w.fastTail.Store(w.fastTaken)
	}
	w.pendingCallbacks += n // counted until they ran, as the others
	return n
}

// queueOutcomeLocked queues the outcome of e, an accepted write, for its
// callback and OnWritten, or, if it has neither, counts it as run.
func (w *core[T]) queueOutcomeLocked(e *entry[T], err error) {
	if e.cb == nil && w.onWritten == nil {
		w.pendingCallbacks--
		return
	}
	ev := event[T]{kind: evCallback, counted: true, cb: e.cb, err: err}
	if w.onWritten != nil {
		w.queueWrittenLocked(ev, e.item)
	} else {
		w.queueLocked(ev)
	}
}

// runOutcome runs the outcome of one write: OnWritten, then its callback.
func (w *core[T]) runOutcome(ev *event[T], item T) {
	if ev.written {
		w.onWritten(item, ev.err)
	}
	if ev.cb != nil {
		ev.cb(ev.err)
	}
}

// scheduleLocked arranges for queued events to be delivered without running
// them on the calling goroutine, which is inside a producer's call.
func (w *core[T]) scheduleLocked() {
	if w.events.Len() > 0 && !w.delivering {
		w.delivering = true
		go w.deliverAsync()
	}
}

// deliverHereLocked delivers queued events on the calling goroutine, unless
// another goroutine is delivering already (it will deliver them). For
// callers outside any producer's call: a sink's done, a timer, the construct
// goroutine.
func (w *core[T]) deliverHereLocked() {
	if w.deliverElsewhere && w.userCodeQueuedLocked() {
		w.scheduleLocked() // a Pipe's reader, inside Read (see pipe.go)
		return
	}
	if w.events.Len() > 0 && !w.delivering {
		w.delivering = true
		w.deliverLocked()
	}
}

func (w *core[T]) deliverAsync() {
	w.mu.Lock()
	w.deliverLocked()
	w.mu.Unlock()
}

// deliverLocked runs queued events until the queue is empty, unlocking
// around each callback and handler. The caller set w.delivering; it is
// cleared on return. mu is held on entry and on return.
func (w *core[T]) deliverLocked() {
	// If a callback or handler panics (or calls runtime.Goexit), finish what
	// the event was for and hand the rest of the queue to a new goroutine,
	// so that the stream still reaches "close" and Done if the panic is
	// recovered. The handlers after the panicking one are skipped. User code
	// runs without the lock.
	returned := false
	var current eventKind
	// Consecutive callbacks run as a batch, with one unlock and lock for
	// all of them: with a callback per write, the deliverer would otherwise
	// fight the producers for the lock on every one.
	var batch [32]event[T]
	var items [32]T // the items of the written ones
	var batched, ran int
	var writtenLeft int // items of the evWritten event still in the queue
	defer func() {
		if !returned {
			w.mu.Lock()
			switch current {
			case evFinish:
				w.destroyLocked(nil)
			case evClose:
				close(w.done)
			case evWritten: // put back the items the panic skipped
				rest := writtenLeft
				for i := batched - 1; i > ran; i-- {
					w.events.items.PushFront(items[i])
					rest++
				}
				if rest > 0 {
					w.pendingCallbacks += batched - ran - 1
					ev := batch[0]
					ev.n = int32(rest)
					w.events.ev.PushFront(ev)
				}
				batched = 0
			}
			for i := batched - 1; i > ran; i-- { // put back what the panic skipped
				if batch[i].counted {
					w.pendingCallbacks++
				}
				w.events.PushFront(batch[i], items[i])
			}
			w.delivering = false
			w.scheduleLocked()
			w.mu.Unlock()
		}
	}()
	for {
		next := w.events.Front()
		if next == nil && w.fastMax != 0 { // streams without a fast path have no fast callbacks
			// The callbacks fast writes published since the last event, in
			// runs of at least fastTakeMin: taking a few at a time right
			// behind the writer, the deliverer would fight it for their
			// cache lines and for w.fast's. The courier takes the rest after
			// a pause (see courier), or all at once.
			if w.fastTaken < w.fastDrainTo {
				current = evCallback
				batched = w.takeFastLocked(w.fastDrainTo, batch[:])
				w.runBatchLocked(batch[:batched], items[:batched], &ran)
				batched = 0
				continue
			}
			if n := w.fastHeadLocked() - w.fastTaken; n >= fastTakeMin || n > 0 && w.takeAll {
				w.takeAll = false
				w.fastDrainTo = w.fastTaken + n
				continue
			} else if n > 0 {
				w.wakeCourier()
			}
		}
		if next != nil && next.kind == evHookBarrier {
			if late, item, ok := w.late.PopFront(); ok {
				current = evCallback
				w.runCallbackLocked(late, item)
				continue
			}
			if !w.barrierReached {
				w.barrierReached = true
				w.pumpLocked() // starts the hook if nothing is in flight
			}
			if w.teardown == destroying || w.hookRunning {
				next = nil // held until the hook returns; runHook resumes
			}
		}
		if next == nil {
			if w.fastTail.Load() != w.fastTaken {
				w.fastTail.Store(w.fastTaken) // a take cut short by an event
			}
			w.delivering = false
			returned = true
			return
		}
		if next.kind == evFastCallbacks {
			upTo := w.events.marks.Front()
			if w.fastTaken >= *upTo {
				w.events.PopFront()
				w.events.marks.PopFront()
				continue
			}
			current = evCallback
			batched = w.takeFastLocked(*upTo, batch[:])
			w.runBatchLocked(batch[:batched], items[:batched], &ran)
			batched = 0
			continue
		}
		ev, item, _ := w.events.PopFront()
		current = ev.kind
		switch ev.kind {
		case evCallback:
			batch[0], items[0], batched = ev, item, 1
			for batched < len(batch) {
				next := w.events.Front()
				if next == nil || next.kind != evCallback {
					break
				}
				batch[batched], items[batched], _ = w.events.PopFront()
				batched++
			}
			w.runBatchLocked(batch[:batched], items[:batched], &ran)
			batched = 0
		case evWritten:
			batch[0] = ev // for the put-back
			for writtenLeft = int(ev.n); writtenLeft > 0; {
				batched = min(writtenLeft, len(items))
				for i := range batched {
					items[i], _ = w.events.items.PopFront()
				}
				writtenLeft -= batched
				w.pendingCallbacks -= batched
				w.mu.Unlock()
				for ran = 0; ran < batched; ran++ {
					w.onWritten(items[ran], ev.err)
				}
				w.mu.Lock()
				clear(items[:batched])
			}
			batch[0], batched = event[T]{}, 0
		case evDrainCheck:
			if !w.drainDueLocked() {
				continue
			}
			w.clearNeedDrainLocked()
			w.emitLocked(w.onDrain)
		case evDrain:
			if w.end != open || w.teardown != alive {
				continue
			}
			w.emitLocked(w.onDrain)
		case evFinish:
			if w.teardown != alive {
				continue // a Destroy before "finish" cancels it
			}
			w.end = finished
			w.emitLocked(w.onFinish)
			w.destroyLocked(nil)
		case evFinal:
			if w.teardown != alive {
				continue // destroyed before Final could start
			}
			c := w.nextCompletionLocked(callFinal)
			w.beginLocked(c)
			go w.runHook(c, callFinal, nil)
		case evHookBarrier:
			w.barrierPassed = true // the hook has returned
		case evError:
			hs := w.onError
			w.mu.Unlock()
			for _, h := range hs {
				h.fn(ev.err)
			}
			w.mu.Lock()
		case evClose:
			w.emitLocked(w.onClose)
			close(w.done)
		}
	}
}

// runBatchLocked runs the outcomes in batch (with their items) without the
// lock held, counting in *ran those that returned, and clears batch.
func (w *core[T]) runBatchLocked(batch []event[T], items []T, ran *int) {
	for i := range batch {
		if batch[i].counted {
			w.pendingCallbacks--
		}
	}
	w.mu.Unlock()
	for *ran = 0; *ran < len(batch); *ran++ {
		w.runOutcome(&batch[*ran], items[*ran])
	}
	w.mu.Lock()
	clear(batch)
	clear(items)
}

// runCallbackLocked runs a write callback without the lock held.
func (w *core[T]) runCallbackLocked(ev event[T], item T) {
	if ev.counted {
		w.pendingCallbacks--
	}
	w.mu.Unlock()
	w.runOutcome(&ev, item)
	w.mu.Lock()
}

// emitLocked runs the handlers of an event without the lock held.
func (w *core[T]) emitLocked(hs handlerList[func()]) {
	if len(hs) == 0 {
		return
	}
	w.mu.Unlock()
	for _, h := range hs {
		h.fn()
	}
	w.mu.Lock()
}
