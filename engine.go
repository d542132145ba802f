package stream

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamkit/stream/internal/ring"
	"github.com/streamkit/stream/internal/wakecount"
)

// cacheLinePad keeps the fields around it on cache lines of their own.
type cacheLinePad [64]byte

// core is the engine shared by [Writable] (T = []byte) and [WritableOf]:
// the buffer, the sink calls, the life cycle and the delivery of callbacks
// and events. The two fronts add their own write methods and docs; the
// state machine is this one, generic over the item type.
type core[T any] struct {
	write     func(T, Callback) // nil: single items go to writev
	writev    func([]T, Callback)
	final     FinalFunc
	destroyFn DestroyFunc
	construct ConstructFunc
	onWritten func(T, error)

	hwm          int // in units of Size: bytes for Writable
	lwm          int // "drain" at Length <= lwm
	maxBuffered  int // hard cap on Length; 0: none
	overflow     Overflow
	maxBatch     int // items per Writev call; 0: all waiting
	maxBatchSize int // units per Writev call; 0: no cap
	linger       time.Duration
	stall        time.Duration

	done chan struct{} // closed after the close handlers returned

	// interrupt, if set (by an adapter, right after NewWritable), is called
	// once when the stream is destroyed, under the lock, to unblock a sink
	// call that would otherwise keep the Destroy hook waiting (a write stuck
	// on a socket, say). It must not block or call into the stream.
	interrupt func(err error)

	// deliverElsewhere, if set (by Pipe, right after NewWritable), makes a
	// done that queued user code deliver it on a new goroutine, as a
	// producer's call does: a pipe's reader calls done inside Read.
	deliverElsewhere bool

	// fastMax bounds the size of a fast write (see fast.go); 0 disables
	// the fast path. fastDones are its done functions, used in turn, and
	// fastCall stands for an adopted fast write in w.call.
	fastMax   int
	fastDones [8]fastDone[T]
	fastCall  completion[T]
	// fast is the producers' word, and fastSlots holds the callbacks of
	// fast writes (see fast.go). fastTail is fastTaken for the claimants,
	// who must not overwrite a slot not taken yet; the deliverer writes
	// it, so it has a cache line of its own. courierOn is set while a
	// courier goroutine delivers those callbacks.
	_         cacheLinePad
	fast      atomic.Uint64
	courierOn atomic.Bool
	_         cacheLinePad
	fastTail  atomic.Uint64
	_         cacheLinePad
	fastSlots callbackRing

	// runWord drives the run in flight, and runDones are its chunks' done
	// functions, used in turn (see run.go). runCall stands for the run in
	// w.call.
	runWord  atomic.Uint64
	_        cacheLinePad
	runDones [8]runDone[T]
	runCall  completion[T]

	// completions are reused round-robin by write, writev and final calls,
	// so a stale done is recognised for the last len(completions)-1 calls.
	completions [8]completion[T]
	hookCall    completion[T] // the Destroy hook's
	initCall    completion[T] // Construct's

	mu sync.Mutex // guards the fields below

	end      endState
	teardown teardown
	err      error // first error, sticky

	length           int                 // units buffered + in flight
	buf              ring.Ring[entry[T]] // accepted, in flight or waiting for the sink
	corked           int
	pendingCallbacks int
	needDrain        bool          // a write returned false; cleared by "drain"
	drainCh          chan struct{} // made by Ready while needDrain; closed when it clears
	waiters          waitQueue     // Write, ReadFrom and Wait calls waiting for room
	accepted         uint64        // the seq of the last accepted write
	dropped          int           // items dropped by Overflow, for State
	// flushes are the waiting Flush calls, in the order of their targets.
	flushes []*flushWaiter
	// turn is set while a Write that spans more than one round, or a
	// ReadFrom, holds the write turn, until it returns: other Writes wait
	// in waiters until it is released, so that one Write's bytes are never
	// interleaved with another's. The fast path stays closed meanwhile.
	turn bool
	// carrying is set while a carryOn goroutine is on its way to run what
	// a producer's budget left.
	carrying bool
	// lingerFrom is when the first of the waiting items was accepted, for
	// Linger; lingerTimer, made on first use, is the stream's one timer
	// for it.
	lingerFrom  time.Time
	lingerTimer *time.Timer

	// adopted is the size of the fast write in flight adopted by the locked
	// path (w.call == &w.fastCall), adoptedSeq its seq, and fastErr the
	// result of its done if that came while its WriteFunc was still running.
	adopted    int
	adoptedSeq uint64
	fastErr    error

	// call is the sink call in flight (write, writev, final or construct),
	// nil if none. The first inflight entries of buf are the items of a
	// write or writev call in flight; batch holds the items handed to
	// Writev, reused.
	call     *completion[T]
	inflight int
	// credited is what a Pipe's reader consumed of the write call in flight
	// before its done (see credit in pipe.go): already taken off length.
	credited int
	batch    []T
	callSeq  uint64
	stallFor *completion[T] // the call the stall timer is armed for
	stallAt  time.Time      // when stallFor stalls
	timer    *time.Timer
	stopCtx  func() bool

	// The run in flight (see run.go): its chunks' items, for the goroutine
	// that carries it on; the index of its first chunk; its length; how
	// many of its chunks were settled; the result of a done that came
	// through the lock while its WriteFunc was running.
	runItems   []T
	runBase    uint32
	runLen     int
	runSettled int
	runErr     error

	events eventQueue[T]
	// fastTaken counts the fast writes' callbacks taken from fastSlots for
	// delivery, fastMarked those published before the last evFastCallbacks.
	fastTaken  uint64
	fastMarked uint64
	// fastDrainTo is how far delivery takes fastSlots' callbacks before it
	// looks at the head again.
	fastDrainTo uint64
	// takeAll lets the courier's delivery take the callbacks published
	// since the last event even if they fill no batch.
	takeAll    bool
	delivering bool // a goroutine is running deliverLocked
	// barrierReached, hookRunning and barrierPassed track the destroy
	// barrier (see evHookBarrier): delivery has reached it; the Destroy hook
	// was started and has not returned yet; delivery went past it. Until
	// then, the callbacks of late writes wait in late, which is delivered
	// at the barrier rather than behind it.
	barrierReached bool
	hookRunning    bool
	barrierPassed  bool
	late           eventQueue[T]

	nextHandlerID uint64
	onDrain       handlerList[func()]
	onFinish      handlerList[func()]
	onClose       handlerList[func()]
	onError       handlerList[func(error)]
}

// settings are a stream's options once checked and defaulted by its
// constructor.
type settings[T any] struct {
	write        func(T, Callback)
	writev       func([]T, Callback)
	final        FinalFunc
	destroy      DestroyFunc
	construct    ConstructFunc
	onWritten    func(T, error)
	hwm, lwm     int
	maxBuffered  int
	overflow     Overflow
	maxBatch     int
	maxBatchSize int
	linger       time.Duration
	stall        time.Duration
	ctx          context.Context
}

// marks are the integer options every constructor checks the same way.
type marks struct {
	HighWaterMark, LowWaterMark, MaxBuffered, MaxBatch, MaxBatchSize int
}

// check panics, naming the field of typ (say "Options"), if an option is
// negative or MaxBuffered is below the effective high-water mark hwm.
func (m marks) check(fn, typ string, hwm int) {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"HighWaterMark", m.HighWaterMark}, {"LowWaterMark", m.LowWaterMark}, {"MaxBuffered", m.MaxBuffered},
		{"MaxBatch", m.MaxBatch}, {"MaxBatchSize", m.MaxBatchSize},
	} {
		if f.v < 0 {
			panic(fmt.Sprintf("stream: %s: negative %s.%s %d", fn, typ, f.name, f.v))
		}
	}
	if m.MaxBuffered > 0 && m.MaxBuffered < hwm {
		panic(fmt.Sprintf("stream: %s: %s.MaxBuffered %d below the high-water mark %d", fn, typ, m.MaxBuffered, hwm))
	}
}

// init makes w a new stream with settings s. w must not move afterwards.
func (w *core[T]) init(s settings[T]) {
	w.write, w.writev = s.write, s.writev
	w.final, w.destroyFn, w.construct = s.final, s.destroy, s.construct
	w.onWritten = s.onWritten
	w.hwm, w.lwm = s.hwm, s.lwm
	w.maxBuffered, w.overflow = s.maxBuffered, s.overflow
	w.maxBatch, w.maxBatchSize = s.maxBatch, s.maxBatchSize
	if s.writev != nil {
		w.linger = s.linger
	}
	w.stall = s.stall
	w.done = make(chan struct{})
	for i := range w.completions {
		w.completions[i].init(w)
	}
	w.hookCall.init(w)
	w.initCall.init(w)
	w.fastCall.init(w)
	w.fastCall.kind = callWrite
	for i := range w.runDones {
		d := &w.runDones[i]
		d.w, d.gen = w, uint32(i)
		d.fn = d.complete
	}
	for i := range w.fastDones {
		d := &w.fastDones[i]
		d.w, d.gen = w, uint64(i)
		d.fn = d.complete
	}
	// The fast path has no timer, no item to report and no batch: streams
	// that need one of these take the locked path for every write.
	if w.stall <= 0 && w.linger <= 0 && w.write != nil && w.onWritten == nil {
		w.fastMax = maxFastLen
	}
	if w.construct != nil {
		w.call = &w.initCall
		w.initCall.kind = callConstruct
		w.beginLocked(&w.initCall) // no other goroutine has w yet
	}
	if ctx := s.ctx; ctx != nil {
		if ctx.Err() != nil {
			w.mu.Lock()
			w.destroyLocked(context.Cause(ctx))
			w.pumpLocked()
			w.scheduleLocked()
			w.mu.Unlock()
		} else {
			w.stopCtx = context.AfterFunc(ctx, func() { w.destroy(context.Cause(ctx)) })
		}
	}
	w.mu.Lock()
	w.unlock() // opens the fast path, unless constructing or destroyed
	if w.construct != nil {
		go w.runHook(&w.initCall, callConstruct, nil)
	}
}

// checkMade panics if w was not made by a constructor: the zero value has
// no channels, sink or completions, and would fail later in obscure ways
// (a nil dereference, a mutex left held, a hang). The check is on the
// locked paths only; the fast path cannot open on such a stream.
func (w *core[T]) checkMade(typ string) {
	if w.done == nil {
		panic("stream: " + typ + " not made by New" + typ)
	}
}

// writeChunk is WriteChunk past the fast path: it accepts item, of size
// units, with callback cb, and returns WriteChunk's result.
func (w *core[T]) writeChunk(item T, size int, cb Callback) bool {
	w.mu.Lock()
	w.closeFastLocked()
	if err := w.lateErrLocked(); err != nil {
		w.rejectLocked(err, item, cb)
		w.mu.Unlock()
		return false
	}
	if !w.roomLocked(size) {
		w.dropped++
		w.setNeedDrainLocked()
		w.rejectLocked(ErrDropped, item, cb)
		w.unlock()
		return false
	}
	w.acceptLocked(item, size, cb, nil)
	if w.corked == 0 { // corked, the pump would start nothing
		w.pumpProducerLocked()
	}
	ok := w.belowHighWaterLocked()
	w.scheduleLocked()
	w.unlock()
	return ok
}

// acceptLocked appends an accepted write to the buffer.
func (w *core[T]) acceptLocked(item T, size int, cb Callback, s *slab) {
	if w.buf.Len() == w.inflight && w.linger > 0 {
		w.lingerFrom = time.Now() // the first waiting item
	}
	w.accepted++
	w.length += size
	w.pendingCallbacks++
	e := w.buf.PushBackSlot() // in place: a 56-byte entry copied in stalls
	e.item, e.size, e.seq, e.cb, e.slab = item, size, w.accepted, cb, s
}

// roomLocked reports whether MaxBuffered leaves room for an item of size
// units, after evicting waiting items if Overflow is DropOldest. An item
// larger than MaxBuffered fits only into an empty stream.
func (w *core[T]) roomLocked(size int) bool {
	if w.maxBuffered == 0 || w.length+size <= w.maxBuffered || w.length == 0 {
		return true
	}
	w.syncRunLocked() // a run's Length is an upper bound
	if w.length+size <= w.maxBuffered || w.length == 0 {
		return true
	}
	if w.overflow != DropOldest {
		return false
	}
	// Evict only if that makes room: the oldest waiting items, never one
	// in flight, nor the bytes a Write copied in (a Write never drops).
	k, freed := 0, 0
	for i := w.inflight; i < w.buf.Len() && w.length-freed+size > w.maxBuffered; i++ {
		e := w.buf.At(i)
		if e.slab != nil {
			break
		}
		k, freed = k+1, freed+e.size
	}
	if w.length-freed+size > w.maxBuffered && w.length-freed > 0 {
		return false
	}
	for range k {
		e := w.buf.RemoveAt(w.inflight)
		w.length -= e.size
		w.dropped++
		// Its outcome goes now, possibly before those of older items in
		// flight: held back, the outcomes of a stalled sink's evictions
		// would pile up without bound, which the cap is there to prevent.
		w.settleEntryLocked(&e, ErrDropped)
	}
	w.flushDueLocked()
	w.scheduleLocked()
	return true
}

// wait is Wait. A Wait that was woken hands the room on as it returns:
// its caller is about to write, but may not, and the next waiter must not
// be stranded while there is room.
func (w *core[T]) wait(ctx context.Context) error {
	var q *waiter // once it waited
	w.mu.Lock()
	for {
		wait := w.mustWaitLocked(false)
		if err := w.lateErrLocked(); err != nil {
			if q != nil {
				w.putWaiterLocked(q) // every other waiter was woken too
			}
			w.mu.Unlock()
			return err
		}
		if !wait {
			if q != nil {
				w.putWaiterLocked(q)
				w.wakeNextLocked()
			}
			w.mu.Unlock()
			return nil
		}
		if q == nil {
			q = w.getWaiterLocked(false)
		}
		w.enqueueLocked(q, false)
		w.mu.Unlock()
		select {
		case <-q.ch:
			wakecount.Wakeup()
			w.mu.Lock()
		case <-ctx.Done():
			w.mu.Lock()
			if q.woken {
				w.putWaiterLocked(q)
				w.wakeNextLocked() // the wake-up it got, passed on
			} else {
				w.unqueueLocked(q)
				w.putWaiterLocked(q)
			}
			w.mu.Unlock()
			return context.Cause(ctx)
		}
	}
}

// flushWaiter is a Flush waiting for the writes accepted before it.
type flushWaiter struct {
	target uint64        // the seq of the last of them
	err    error         // the first of their errors
	woken  chan struct{} // closed once their callbacks have run
	wake   Callback      // closes woken; queued behind those callbacks
}

// flush is Flush.
func (w *core[T]) flush(ctx context.Context) error {
	w.mu.Lock()
	w.closeFastLocked()
	lateErr := w.lateErrLocked()
	if w.teardown == closed {
		w.mu.Unlock()
		<-w.done // the callbacks of every accepted write run before "close"
		return lateErr
	}
	f := &flushWaiter{target: w.accepted, woken: make(chan struct{})}
	f.wake = func(error) { close(f.woken) }
	w.flushes = append(w.flushes, f)
	w.corked = 0
	w.pumpLocked()
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
	if lateErr != nil {
		return lateErr // what a write gets, once those callbacks have run
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return f.err
}

// flushErrLocked gives err, the outcome of the write of seq, to the Flush
// calls waiting for it that have no error yet.
func (w *core[T]) flushErrLocked(seq uint64, err error) {
	for _, f := range w.flushes {
		if f.err == nil && f.target >= seq {
			f.err = err
		}
	}
}

// flushDueLocked queues the wake-up of every Flush whose writes have all
// settled, behind the callbacks of those writes.
func (w *core[T]) flushDueLocked() {
	if len(w.flushes) == 0 {
		return
	}
	oldest := w.accepted + 1 // the seq of the oldest write still pending
	if w.buf.Len() > 0 {
		oldest = w.buf.Front().seq
	}
	if w.call == &w.fastCall {
		oldest = w.adoptedSeq
	}
	for len(w.flushes) > 0 && w.flushes[0].target < oldest {
		w.queueLocked(event[T]{kind: evCallback, cb: w.flushes[0].wake})
		w.flushes[0] = nil
		w.flushes = w.flushes[1:]
	}
}

// end is End.
func (w *core[T]) endStream() {
	w.mu.Lock()
	w.closeFastLocked()
	w.attendRunLocked()
	w.corked = 0
	if w.end == open && w.err == nil {
		w.end = ending
		w.wakeReadyLocked()
	}
	w.pumpLocked()
	w.scheduleLocked()
	w.mu.Unlock()
}

// closeStream is Close after End.
func (w *core[T]) closeStream() error {
	w.endStream()
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

// destroy is Destroy.
func (w *core[T]) destroy(err error) {
	w.mu.Lock()
	w.destroyLocked(err)
	w.pumpLocked()
	w.scheduleLocked()
	w.mu.Unlock()
}

// ready is Ready.
func (w *core[T]) ready() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.readyLocked()
}

// errOf is Err.
func (w *core[T]) errOf() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// state is State.
func (w *core[T]) state() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncRunLocked()
	length, pending := w.length, w.pendingCallbacks
	writing := w.call != nil && (w.call.kind == callWrite || w.call.kind == callWritev)
	if v := w.fast.Load(); v&(fastOpen|fastBusy) == fastOpen|fastBusy {
		length += fastLen(v) // a fast write in flight, not adopted
		pending++
		writing = true
	}
	pending += int(w.fastHeadLocked() - w.fastTaken) // published, not taken yet
	return State{
		Length:           length,
		HighWaterMark:    w.hwm,
		Buffered:         w.buf.Len() - w.inflight + w.runWaitingLocked(),
		Corked:           w.corked,
		PendingCallbacks: pending,
		Dropped:          w.dropped,
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
