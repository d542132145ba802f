package stream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamkit/stream"
)

// FuzzWritableOf is FuzzWritable for object mode: it decodes its input
// into a WritableOf[int] configuration (Size, the marks, MaxBuffered and
// Overflow, Writev with or without write, MaxBatch, MaxBatchSize, Linger,
// OnWritten, Final, a Destroy hook), a script of sink actions (sync, held,
// failing, ItemErrors, ItemErrors of the wrong length, done twice) and a
// sequence of operations, and checks every step against the model
// (model_of_test.go): the sink calls and their batches, every outcome in
// OnWritten and the callbacks, events, WriteChunk's result, State
// (Length, Buffered, Dropped, PendingCallbacks, ...), Err, Ready, Done,
// Flush, Wait and Close results. Independently of the model it checks
// that items reach the sink once and in acceptance order, batches respect
// MaxBatch and MaxBatchSize, Length stays within MaxBuffered but for one
// oversized item in an empty stream, "drain" comes at LowWaterMark, and
// each item has exactly one outcome.
//
// As FuzzWritable, one goroutine drives the stream in a synctest bubble
// and waits until the stream's goroutines are idle after each operation;
// time is fake and moves only when the script advances it, so Linger is
// deterministic.
//
// Input layout: byte 0 the high-water mark, byte 1 option bits (0 Writev,
// 1 write nil, 2 OnWritten, 3 Final, 4 Destroy hook, 5 DropOldest, 6
// Linger), byte 2 Size (bits 0-1), LowWaterMark (2-3) and MaxBuffered
// (4-5), byte 3 MaxBatch (0-2) and MaxBatchSize (3-5), byte 4 the number
// n (1..8) of sink actions that follow; then operations of two bytes.
func FuzzWritableOf(f *testing.F) {
	for _, seed := range ofSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := decodeOfScript(data)
		synctest.Test(t, func(t *testing.T) { runOfScript(t, sc) })
	})
}

// ofAction says what the scripted sink does with a call.
type ofAction uint8

const (
	ofSync  ofAction = iota // done(nil) before returning
	ofHold                  // returns; the script completes it later
	ofFail                  // done(err) before returning
	ofItems                 // done(ItemErrors) before returning (nil but for a writev)
	ofBad                   // done(ItemErrors of the wrong length) (nil but for a writev)
	ofTwice                 // done(nil) twice before returning
)

var ofActionNames = [...]string{"sync", "hold", "fail", "items", "bad", "twice"}

func (a ofAction) String() string { return ofActionNames[a] }

// Operation kinds: the low four bits of an operation's first byte; bit 4
// is a variant.
const (
	ofOpWrite      = iota // 0, 1: WriteChunk of v = id<<8|arg with a callback (variant: nil)
	ofOpWriteNil   = 2    // WriteChunk with a nil callback
	ofOpCork       = 3
	ofOpUncork     = 4
	ofOpEnd        = 5
	ofOpDestroy    = 6 // Destroy(nil); variant Destroy(boom)
	ofOpClose      = 7
	ofOpComplete   = 8  // the held call's done(nil); variant: from another goroutine
	ofOpFailDone   = 9  // ... done(err)
	ofOpItemsDone  = 10 // ... done(ItemErrors)
	ofOpBadDone    = 11 // ... done(ItemErrors of the wrong length)
	ofOpFlush      = 12 // Flush on a goroutine; variant: with a done ctx; bit 5: with a ctx the next cancel cancels
	ofOpWait       = 13 // Wait with a done ctx; variant: on a goroutine; bit 5: cancel the pending Flush and Wait calls
	ofOpAdvance    = 14 // the clock moves by (arg%4+1)*4ms
	ofOpTwice      = 15 // the held call's done(nil), twice
	maxOfOps       = 96
	ofLinger       = 10 * time.Millisecond
	ofAdvanceQuant = 4 * time.Millisecond
)

var (
	ofHWMs = [...]int{1, 2, 3, 4, 6, 10, 16, 0}
	// ofSizes are the Size functions; nil counts 1.
	ofSizes = [...]func(int) int{
		nil,
		func(v int) int { return v % 7 },
		func(v int) int { return 1 + v%4 },
		func(v int) int { return v % 5 * 3 },
	}
	ofMaxBatches    = [...]int{0, 0, 1, 2, 3, 5, 0, 8}
	ofMaxBatchSizes = [...]int{0, 0, 1, 4, 7, 12, 0, 20}
)

type ofConfig struct {
	sizeFn                                   int
	hwm, hwmOption, lwm, maxBuffered         int
	maxBatch, maxBatchSize                   int
	writev, writeNil, onWritten, final, hook bool
	dropOldest                               bool
	linger                                   time.Duration
}

// lingering reports whether Linger is in effect: set and Writev set.
func (c ofConfig) lingering() bool { return c.linger > 0 && c.writev }

func (c ofConfig) size(v int) int {
	if f := ofSizes[c.sizeFn]; f != nil {
		return f(v)
	}
	return 1
}

type ofScript struct {
	cfg     ofConfig
	actions []ofAction
	ops     []fuzzOp
}

func decodeOfScript(data []byte) ofScript {
	at := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	var sc ofScript
	c := &sc.cfg
	flags, marks, batches := at(1), at(2), at(3)
	c.sizeFn = int(marks & 3)
	c.hwmOption = ofHWMs[int(at(0))%len(ofHWMs)]
	c.hwm = c.hwmOption
	if c.hwm == 0 {
		c.hwm = 16
		if ofSizes[c.sizeFn] != nil {
			c.hwm = stream.DefaultHighWaterMark
		}
	}
	c.writev = flags&1 != 0
	c.writeNil = c.writev && flags&2 != 0
	c.onWritten = flags&4 != 0
	c.final = flags&8 != 0
	c.hook = flags&16 != 0
	c.dropOldest = flags&32 != 0
	if flags&64 != 0 {
		c.linger = ofLinger
	}
	// LowWaterMark stays below the high-water mark.
	c.lwm = [...]int{0, 0, 1, c.hwm / 2}[marks>>2&3] % c.hwm
	c.maxBuffered = [...]int{0, 0, c.hwm, c.hwm + c.hwm/2 + 3}[marks>>4&3]
	c.maxBatch = ofMaxBatches[batches&7]
	c.maxBatchSize = ofMaxBatchSizes[batches>>3&7]
	n := int(at(4))%8 + 1
	for i := range n {
		sc.actions = append(sc.actions, [...]ofAction{ofSync, ofSync, ofHold, ofHold, ofFail, ofItems, ofBad, ofTwice}[at(5+i)%8])
	}
	for i := 5 + n; i < len(data) && len(sc.ops) < maxOfOps; i += 2 {
		sc.ops = append(sc.ops, fuzzOp{kind: data[i], arg: at(i + 1)})
	}
	return sc
}

// ofSeed builds an input: hwm index, flags, marks, batches, actions, ops.
func ofSeed(hwm, flags, marks, batches byte, actions []ofAction, ops ...byte) []byte {
	code := map[ofAction]byte{ofSync: 0, ofHold: 2, ofFail: 4, ofItems: 5, ofBad: 6, ofTwice: 7}
	b := []byte{hwm, flags, marks, batches, byte(len(actions) - 1)}
	for _, a := range actions {
		b = append(b, code[a])
	}
	return append(b, ops...)
}

var ofSeeds = [][]byte{
	// Sync sink, hwm 4, items with and without callbacks, End.
	ofSeed(3, 0, 0, 0, []ofAction{ofSync}, ofOpWrite, 1, ofOpWrite, 2, ofOpWriteNil, 3, ofOpEnd, 0),
	// Held writev with MaxBatch 2 and OnWritten: batches, ItemErrors.
	ofSeed(4, 1|4, 0, 3, []ofAction{ofHold}, ofOpWrite, 1, ofOpWrite, 2, ofOpWrite, 3, ofOpWrite, 4, ofOpWrite, 5,
		ofOpItemsDone, 0, ofOpComplete, 0, ofOpItemsDone, 0, ofOpClose, 0),
	// Size v%7, MaxBuffered, DropNewest, LowWaterMark.
	ofSeed(5, 1, 1|3<<2|2<<4, 0, []ofAction{ofHold, ofSync}, ofOpWrite, 6, ofOpWrite, 5, ofOpWrite, 4, ofOpWrite, 3, ofOpWrite, 2,
		ofOpComplete, 0, ofOpWait, 0, ofOpComplete, 0, ofOpClose, 0),
	// DropOldest with Cork, write nil.
	ofSeed(2, 1|2|4|32, 2<<4, 0, []ofAction{ofSync, ofHold}, ofOpWrite, 1, ofOpCork, 0, ofOpWrite, 2, ofOpWrite, 3, ofOpWrite, 4,
		ofOpWrite, 5, ofOpUncork, 0, ofOpComplete, 0, ofOpEnd, 0),
	// Linger: items wait until the timer, a Flush, or a full batch.
	ofSeed(6, 1|2|64, 0, 5|3<<3, []ofAction{ofSync}, ofOpWrite, 1, ofOpWrite, 2, ofOpAdvance, 0, ofOpAdvance, 1,
		ofOpWrite, 3, ofOpFlush, 0, ofOpWrite, 4, ofOpWrite, 5, ofOpWrite, 6, ofOpWrite, 7, ofOpWrite, 8, ofOpAdvance, 3, ofOpEnd, 0),
	// Bad ItemErrors destroys; Final and hook.
	ofSeed(3, 1|8|16, 0, 0, []ofAction{ofHold, ofBad}, ofOpCork, 0, ofOpWrite, 1, ofOpWrite, 2, ofOpUncork, 0, ofOpWrite, 3,
		ofOpBadDone, 0, ofOpFlush, 0, ofOpClose, 0),
	// Flush with errors, Destroy with a call in flight, late writes.
	ofSeed(4, 1|4, 2, 2, []ofAction{ofHold}, ofOpWrite, 1, ofOpWrite, 2, ofOpFlush, 0, ofOpFailDone, 0, ofOpFlush|0x10, 0,
		ofOpDestroy|0x10, 0, ofOpWrite, 3, ofOpClose, 0),
	// Wait on a goroutine, woken at LowWaterMark 3 (hwm 6); then at End.
	ofSeed(4, 1, 3<<2, 0, []ofAction{ofHold}, ofOpWrite, 1, ofOpWrite, 2, ofOpWrite, 3, ofOpWrite, 4, ofOpWrite, 5, ofOpWrite, 6,
		ofOpWait|0x10, 0, ofOpComplete, 0, ofOpWrite, 7, ofOpWrite, 8, ofOpWait|0x10, 0, ofOpEnd, 0),
	// Flush and Wait canceled while they wait; Linger goes on afterwards.
	ofSeed(3, 1|64, 0, 0, []ofAction{ofHold, ofSync}, ofOpWrite, 1, ofOpWrite, 2, ofOpWrite, 3, ofOpWrite, 4, ofOpWait|0x10, 0,
		ofOpFlush|0x20, 0, ofOpWait|0x20, 0, ofOpComplete, 0, ofOpWrite, 5, ofOpAdvance, 3, ofOpClose, 0),
}

// ofCall is a sink call the stream made.
type ofCall struct {
	idx    int
	kind   string
	items  []int
	err    error
	action ofAction
	done   stream.Callback
}

type ofSink struct {
	actions []ofAction
	mu      sync.Mutex
	calls   []*ofCall
	// given are the slices the stream handed to Writev since the last
	// check, kept to check that the stream clears its slice after done
	// (DESIGN "Ownership").
	given [][]int
}

func (s *ofSink) handle(c *ofCall) {
	s.mu.Lock()
	c.idx = len(s.calls)
	c.action = s.actions[c.idx%len(s.actions)]
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	switch c.action {
	case ofSync:
		c.done(nil)
	case ofFail:
		c.done(errors.New(sinkErrLabel(c.idx)))
	case ofItems:
		c.done(c.itemErrors())
	case ofBad:
		c.done(c.badItemErrors())
	case ofTwice:
		c.done(nil)
		c.done(nil)
	}
}

// itemErrors is the ItemErrors of call c (see itemsDone), nil but for a
// writev.
func (c *ofCall) itemErrors() error {
	if c.kind != "writev" {
		return nil
	}
	ie := make(stream.ItemErrors, len(c.items))
	for i, v := range c.items {
		if (v+c.idx)%3 == 0 {
			ie[i] = errors.New(itemErrLabel(v))
		}
	}
	return ie
}

func (c *ofCall) badItemErrors() error {
	if c.kind != "writev" {
		return nil
	}
	return make(stream.ItemErrors, badLen(c.idx, len(c.items)))
}

func (s *ofSink) write(v int, done stream.Callback) {
	s.handle(&ofCall{kind: "write", items: []int{v}, done: done})
}

func (s *ofSink) writev(items []int, done stream.Callback) {
	s.mu.Lock()
	s.given = append(s.given, items)
	s.mu.Unlock()
	s.handle(&ofCall{kind: "writev", items: slices.Clone(items), done: done})
}

func (s *ofSink) final(done stream.Callback) { s.handle(&ofCall{kind: "final", done: done}) }

func (s *ofSink) destroy(err error, done stream.Callback) {
	s.handle(&ofCall{kind: "destroy", err: err, done: done})
}

func (s *ofSink) call(i int) (*ofCall, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < len(s.calls) {
		return s.calls[i], true
	}
	return nil, false
}

func (s *ofSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// errLabelOf is errLabel with object mode's errors and the ctx's.
func errLabelOf(err error) string {
	switch {
	case errors.Is(err, stream.ErrDropped):
		return "dropped"
	case errors.Is(err, stream.ErrBadItemErrors) && !errors.Is(err, stream.ErrDestroyed):
		return "bad"
	case errors.Is(err, errOfCtx):
		return "ctx"
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := u.Unwrap(); len(errs) == 2 && errs[0] == stream.ErrDestroyed && errors.Is(errs[1], stream.ErrBadItemErrors) {
			return "destroyed:bad"
		}
	}
	return errLabel(err)
}

var errOfCtx = errors.New("ctx done")

// ofLog records outcomes and events and checks what can be checked where
// it happens.
type ofLog struct {
	cfg ofConfig

	mu         sync.Mutex
	log        []string
	violations []string
}

func (l *ofLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, s)
}

func (l *ofLog) violate(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.violations = append(l.violations, fmt.Sprintf(format, args...))
}

func (l *ofLog) callback(id int) stream.Callback {
	return func(err error) { l.add(fmt.Sprintf("cb %d %s", id, orNil(errLabelOf(err)))) }
}

func (l *ofLog) written(v int, err error) {
	l.add(fmt.Sprintf("w %d %s", v>>8, orNil(errLabelOf(err))))
}

func (l *ofLog) attach(w *stream.WritableOf[int]) {
	w.OnDrain(func() {
		if st := w.State(); st.Length > l.cfg.lwm {
			l.violate("drain at Length %d, LowWaterMark %d", st.Length, l.cfg.lwm)
		}
		l.add("drain")
	})
	w.OnFinish(func() {
		if st := w.State(); st.PendingCallbacks != 0 || st.Err != nil {
			l.violate("finish with %d callbacks pending, Err %v", st.PendingCallbacks, st.Err)
		}
		l.add("finish")
	})
	w.OnError(func(err error) { l.add("error " + errLabelOf(err)) })
	w.OnClose(func() { l.add("close") })
}

func (l *ofLog) snapshot() ([]string, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log), slices.Clone(l.violations)
}

type ofResult struct {
	id  int
	err error
}

type ofHarness struct {
	t       *testing.T
	sc      ofScript
	w       *stream.WritableOf[int]
	sink    *ofSink
	log     *ofLog
	m       *ofModel
	trace   []string
	nextID  int
	closes  int
	results chan error
	got     []string
	flushes map[int]*oFlush
	flushed chan ofResult
	gotF    map[int]string
	waits   []*oWait
	cancels []context.CancelCauseFunc
	waited  chan ofResult
	gotW    map[int]string
	done    context.Context // done already, for Wait and Flush
	items   map[int]oItem   // every item written, by id
}

func runOfScript(t *testing.T, sc ofScript) {
	sink := &ofSink{actions: sc.actions}
	cfg := sc.cfg
	opts := stream.OptionsOf[int]{
		Size:          ofSizes[cfg.sizeFn],
		HighWaterMark: cfg.hwmOption,
		LowWaterMark:  cfg.lwm,
		MaxBuffered:   cfg.maxBuffered,
		MaxBatch:      cfg.maxBatch,
		MaxBatchSize:  cfg.maxBatchSize,
		Linger:        cfg.linger,
	}
	if cfg.dropOldest {
		opts.Overflow = stream.DropOldest
	}
	var write stream.WriteFuncOf[int] = sink.write
	if cfg.writev {
		opts.Writev = sink.writev
		if cfg.writeNil {
			write = nil
		}
	}
	if cfg.final {
		opts.Final = sink.final
	}
	if cfg.hook {
		opts.Destroy = sink.destroy
	}
	done, cancel := context.WithCancelCause(context.Background())
	cancel(errOfCtx)
	h := &ofHarness{
		t: t, sc: sc, sink: sink, results: make(chan error, maxOfOps+8),
		flushes: make(map[int]*oFlush), flushed: make(chan ofResult, maxOfOps+8), gotF: make(map[int]string),
		done: done, items: make(map[int]oItem),
		waited: make(chan ofResult, maxOfOps+8), gotW: make(map[int]string),
	}
	h.log = &ofLog{cfg: cfg}
	if cfg.onWritten {
		opts.OnWritten = h.log.written
	}
	h.trace = append(h.trace, fmt.Sprintf("config %+v actions %v", cfg, sc.actions))
	h.w = stream.NewWritableOf(write, opts)
	h.log.attach(h.w)
	h.m = newOfModel(cfg, func(i int) ofAction { return sc.actions[i%len(sc.actions)] }, h.realCall)
	h.check("NewWritableOf")
	for _, op := range sc.ops {
		h.step(op)
		if h.t.Failed() {
			return
		}
	}
	h.finish()
}

func (h *ofHarness) realCall(i int) (ofRealCall, bool) {
	c, ok := h.sink.call(i)
	if !ok {
		return ofRealCall{}, false
	}
	return ofRealCall{kind: c.kind, items: c.items, err: errLabelOf(c.err)}, true
}

func (h *ofHarness) step(op fuzzOp) {
	variant := op.kind&0x10 != 0
	switch op.kind & 0x0f {
	case ofOpWrite, ofOpWrite + 1, ofOpWriteNil:
		h.writeChunk(int(op.arg), op.kind&0x0f != ofOpWriteNil && !variant)
	case ofOpCork:
		h.do("Cork", h.w.Cork, h.m.cork)
	case ofOpUncork:
		h.do("Uncork", h.w.Uncork, h.m.uncork)
	case ofOpEnd:
		h.do("End", h.w.End, h.m.endStream)
	case ofOpDestroy:
		if variant {
			h.do("Destroy(boom)", func() { h.w.Destroy(errors.New("boom")) }, func() { h.m.destroyStream("boom") })
		} else {
			h.do("Destroy(nil)", func() { h.w.Destroy(nil) }, func() { h.m.destroyStream("") })
		}
	case ofOpClose:
		h.closeStream()
	case ofOpComplete, ofOpFailDone, ofOpItemsDone, ofOpBadDone, ofOpTwice:
		h.complete(op.kind&0x0f, variant)
	case ofOpFlush:
		h.flush(variant, op.kind&0x20 != 0)
	case ofOpWait:
		if op.kind&0x20 != 0 {
			h.cancel()
		} else if variant {
			h.waitOn()
		} else {
			h.wait()
		}
	case ofOpAdvance:
		h.advance(time.Duration(op.arg%4+1) * ofAdvanceQuant)
	}
}

func (h *ofHarness) do(name string, real, model func()) {
	h.trace = append(h.trace, name)
	real()
	synctest.Wait()
	model()
	h.check(name)
}

func (h *ofHarness) writeChunk(arg int, withCB bool) {
	h.nextID++
	id := h.nextID
	v := id<<8 | arg
	it := oItem{id: id, v: v, size: h.sc.cfg.size(v), cb: withCB}
	h.items[id] = it
	var cb stream.Callback
	if withCB {
		cb = h.log.callback(id)
	}
	name := fmt.Sprintf("WriteChunk(%d: v %d size %d, cb %v)", id, v, it.size, withCB)
	h.trace = append(h.trace, name)
	got := h.w.WriteChunk(v, cb)
	synctest.Wait()
	want := h.m.writeChunk(it)
	if got != want && h.m.failure == "" {
		h.fail(name, "WriteChunk returned %v, model %v", got, want)
		return
	}
	h.check(name)
}

func (h *ofHarness) closeStream() {
	h.closes++
	h.trace = append(h.trace, "Close")
	go func() { h.results <- h.w.Close() }()
	synctest.Wait()
	h.m.endStream()
	h.check("Close")
}

func (h *ofHarness) flush(doneCtx, cancelable bool) {
	h.nextID++
	id := h.nextID
	if doneCtx {
		name := fmt.Sprintf("Flush(done ctx) %d", id)
		h.trace = append(h.trace, name)
		err := h.w.Flush(h.done)
		synctest.Wait()
		f := h.m.flush()
		want := []string{"ctx"}
		if f.returned {
			want = append(want, f.result)
		} else {
			h.m.cancelFlush(f)
		}
		if got := errLabelOf(err); !slices.Contains(want, got) {
			h.fail(name, "Flush returned %q, model %q", got, want)
			return
		}
		h.check(name)
		return
	}
	name := fmt.Sprintf("Flush %d on a goroutine", id)
	ctx := context.Background()
	if cancelable {
		name += ", ctx canceled later"
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		h.cancels = append(h.cancels, cancel)
	}
	h.trace = append(h.trace, name)
	go func() { h.flushed <- ofResult{id, h.w.Flush(ctx)} }()
	synctest.Wait()
	f := h.m.flush()
	h.flushes[id] = f
	if cancelable {
		h.m.cancelable = append(h.m.cancelable, f)
	}
	h.check(name)
}

func (h *ofHarness) wait() {
	h.trace = append(h.trace, "Wait(done ctx)")
	err := h.w.Wait(h.done)
	synctest.Wait()
	want := h.m.wait()
	if got := errLabelOf(err); !slices.Contains(want, got) {
		h.fail("Wait", "Wait returned %q, model %q", got, want)
		return
	}
	h.check("Wait")
}

// waitOn calls Wait with a live ctx on a goroutine; it must return when
// the model says.
func (h *ofHarness) waitOn() {
	h.nextID++
	id := h.nextID
	name := fmt.Sprintf("Wait %d on a goroutine", id)
	h.trace = append(h.trace, name)
	ctx, cancel := context.WithCancelCause(context.Background())
	h.cancels = append(h.cancels, cancel)
	go func() { h.waited <- ofResult{id, h.w.Wait(ctx)} }()
	synctest.Wait()
	h.waits = append(h.waits, h.m.waitOn(id))
	h.check(name)
}

// cancel cancels the ctx of every Wait and cancelable Flush so far: those
// still waiting return the ctx's cause.
func (h *ofHarness) cancel() {
	h.trace = append(h.trace, "cancel")
	for _, cancel := range h.cancels {
		cancel(errOfCtx)
	}
	h.cancels = nil
	synctest.Wait()
	h.m.cancel()
	h.check("cancel")
}

func (h *ofHarness) advance(d time.Duration) {
	name := fmt.Sprintf("advance %v", d)
	h.trace = append(h.trace, name)
	time.Sleep(d)
	synctest.Wait()
	h.m.advance(d)
	h.check(name)
}

// complete has the sink complete the call it holds, if any.
func (h *ofHarness) complete(kind uint8, elsewhere bool) {
	c := h.m.pendingCall()
	if c == nil {
		return
	}
	rc, ok := h.sink.call(c.idx)
	if !ok {
		h.fail("complete", "no sink call #%d", c.idx)
		return
	}
	var err error
	var d ofDone
	label := "nil"
	switch kind {
	case ofOpFailDone:
		label = doneErrLabel(c.idx)
		d, err = ofDone{err: label}, errors.New(label)
	case ofOpItemsDone:
		d, err, label = itemsDone(c), rc.itemErrors(), "ItemErrors"
	case ofOpBadDone:
		d, err, label = badDone(c), rc.badItemErrors(), "bad ItemErrors"
	}
	name := fmt.Sprintf("done(%s) of #%d %s%v", label, c.idx, c.kind, rc.items)
	if kind == ofOpTwice {
		name = fmt.Sprintf("done(nil) twice of #%d %s", c.idx, c.kind)
	}
	if elsewhere {
		name += " from another goroutine"
	}
	h.trace = append(h.trace, name)
	run := func(err error) {
		if elsewhere {
			go rc.done(err)
		} else {
			rc.done(err)
		}
		synctest.Wait()
	}
	run(err)
	h.m.done(c, d)
	// The second done only while no later call can have taken c's
	// completion: the engine reuses them round-robin (8 of them), and
	// catches a stale done only that far back.
	if kind == ofOpTwice && h.m.nextCall-c.idx < ringSize-1 {
		run(nil)
		h.m.done(c, ofDone{})
	}
	h.check(name)
}

// finish closes the stream, completing what the sink holds, then checks
// the whole run.
func (h *ofHarness) finish() {
	h.trace = append(h.trace, "-- finish --")
	if h.closes == 0 {
		h.closeStream()
	}
	for i := 0; !h.m.closed && !h.t.Failed() && i < 300; i++ {
		c := h.m.pendingCall()
		switch {
		case c == nil && h.m.corked > 0:
			h.closeStream()
		case c == nil && h.m.timerArmed:
			h.advance(ofLinger)
		case c == nil:
			h.fail("finish", "the model is stuck before close: %v", h.m)
			return
		default:
			h.complete(ofOpComplete, false)
		}
	}
	if h.t.Failed() {
		return
	}
	select {
	case <-h.w.Done():
	default:
		h.fail("finish", "Done not closed")
		return
	}
	h.closeStream()
	for range 3 {
		time.Sleep(time.Millisecond)
		synctest.Wait()
	}
	h.check("after close")
	h.endInvariants()
}

func (h *ofHarness) check(name string) {
	if h.t.Failed() {
		return
	}
	m := h.m
	if m.failure != "" {
		h.fail(name, "%s", m.failure)
		return
	}
	if n := h.sink.count(); n != m.nextCall {
		c, _ := h.sink.call(m.nextCall)
		h.fail(name, "the stream made %d sink calls, model %d (next: %+v)", n, m.nextCall, c)
		return
	}
	log, violations := h.log.snapshot()
	if len(violations) > 0 {
		h.fail(name, "invariants: %q", violations)
		return
	}
	if !slices.Equal(log, m.log) {
		h.fail(name, "events differ\n stream: %q\n  model: %q", log, m.log)
		return
	}
	st := h.w.State()
	var diffs []string
	cmp := func(field string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s %v, model %v", field, got, want))
		}
	}
	cmp("Length", st.Length, m.length)
	cmp("HighWaterMark", st.HighWaterMark, m.cfg.hwm)
	cmp("Buffered", st.Buffered, len(m.buf))
	cmp("PendingCallbacks", st.PendingCallbacks, m.pending)
	cmp("Dropped", st.Dropped, m.dropped)
	cmp("Corked", st.Corked, m.corked)
	cmp("Writing", st.Writing, m.call != nil && (m.call.kind == "write" || m.call.kind == "writev") && m.call.state == mPending)
	needDrain := m.needDrain && m.end == mOpen && m.td == mAlive
	cmp("NeedDrain", st.NeedDrain, needDrain)
	cmp("Ending", st.Ending, m.end >= mEnding)
	cmp("Finished", st.Finished, m.end == mFinished)
	cmp("Destroyed", st.Destroyed, m.td >= mDestroying)
	cmp("Closed", st.Closed, m.td == mClosed)
	cmp("State.Err", errLabelOf(st.Err), m.err)
	cmp("Err()", errLabelOf(h.w.Err()), m.err)
	if m.call == nil || m.call.kind != "writev" {
		// No batch in flight: the last slice Writev got, the one the
		// stream keeps for the next batch, is cleared. (An earlier one's
		// array may have been left behind by a growing append: garbage.)
		h.sink.mu.Lock()
		if n := len(h.sink.given); n > 0 {
			if items := h.sink.given[n-1]; slices.ContainsFunc(items, func(v int) bool { return v != 0 }) {
				diffs = append(diffs, fmt.Sprintf("the last Writev slice still holds %v after done", items))
			}
			h.sink.given = h.sink.given[:0]
		}
		h.sink.mu.Unlock()
	}
	if mb := m.cfg.maxBuffered; mb > 0 && st.Length > mb {
		// Over the cap only with one item (larger than the cap) and
		// nothing else of any size.
		var sizes []int
		if m.call != nil {
			for _, it := range m.call.items {
				sizes = append(sizes, it.size)
			}
		}
		for _, it := range m.buf {
			sizes = append(sizes, it.size)
		}
		if slices.Max(sizes) != st.Length {
			diffs = append(diffs, fmt.Sprintf("Length %d over MaxBuffered %d with items of sizes %v", st.Length, mb, sizes))
		}
	}
	select {
	case <-h.w.Ready():
		cmp("Ready closed", true, !needDrain)
	default:
		cmp("Ready closed", false, !needDrain)
	}
	select {
	case <-h.w.Done():
		cmp("Done closed", true, m.closed)
	default:
		cmp("Done closed", false, m.closed)
	}
	for len(h.results) > 0 {
		h.got = append(h.got, errLabelOf(<-h.results))
	}
	if m.closed {
		cmp("Close calls returned", len(h.got), h.closes)
	} else {
		cmp("Close calls returned", len(h.got), 0)
	}
	for _, r := range h.got {
		cmp("Close()", r, m.closeResult())
	}
	for len(h.flushed) > 0 {
		r := <-h.flushed
		h.gotF[r.id] = errLabelOf(r.err)
	}
	m.settleWaits(h.waits)
	for len(h.waited) > 0 {
		r := <-h.waited
		h.gotW[r.id] = errLabelOf(r.err)
	}
	for _, wt := range h.waits {
		got, ok := h.gotW[wt.id]
		cmp(fmt.Sprintf("Wait %d returned", wt.id), ok, wt.woken)
		if ok && wt.woken && !slices.Contains(wt.results, got) {
			diffs = append(diffs, fmt.Sprintf("Wait %d returned %q, model %q", wt.id, got, wt.results))
		}
	}
	for id, f := range h.flushes {
		got, ok := h.gotF[id]
		cmp(fmt.Sprintf("Flush %d returned", id), ok, f.returned)
		if ok && f.returned {
			cmp(fmt.Sprintf("Flush %d", id), got, f.result)
		}
	}
	if len(diffs) > 0 {
		h.fail(name, "state differs: %s\n state %+v\n model %v", strings.Join(diffs, "; "), st, m)
	}
}

// endInvariants checks the whole run, independently of the model where it
// can: items reach the sink once, in acceptance order, in batches within
// MaxBatch and MaxBatchSize; each item has exactly one outcome; OnWritten
// sees accepted items in acceptance order.
func (h *ofHarness) endInvariants() {
	cfg := h.sc.cfg
	lastV := 0
	for i := 0; ; i++ {
		c, ok := h.sink.call(i)
		if !ok {
			break
		}
		if c.kind != "write" && c.kind != "writev" {
			continue
		}
		units := 0
		for _, v := range c.items {
			if v <= lastV {
				h.fail("end", "sink call #%d: item %d after %d", i, v, lastV)
				return
			}
			lastV = v
			units += cfg.size(v)
		}
		switch {
		case len(c.items) == 0:
			h.fail("end", "sink call #%d: an empty batch", i)
		case cfg.maxBatch > 0 && len(c.items) > cfg.maxBatch:
			h.fail("end", "sink call #%d: %d items, MaxBatch %d", i, len(c.items), cfg.maxBatch)
		case cfg.maxBatchSize > 0 && len(c.items) > 1 && units > cfg.maxBatchSize:
			h.fail("end", "sink call #%d: %d units, MaxBatchSize %d", i, units, cfg.maxBatchSize)
		}
		if h.t.Failed() {
			return
		}
	}
	log, _ := h.log.snapshot()
	outs := make(map[string]int)
	last := map[string]int{} // the last accepted item seen by OnWritten ("w") and callbacks ("cb")
	for _, e := range log {
		var kind string
		var id int
		var err string
		if n, _ := fmt.Sscanf(e, "%s %d %s", &kind, &id, &err); n != 3 || (kind != "w" && kind != "cb") {
			continue
		}
		outs[kind+fmt.Sprint(id)]++
		if h.m.acceptedIDs[id] && err != "dropped" { // an eviction's outcome goes at once
			if id < last[kind] {
				h.fail("end", "%s: item %d after %d: %q", kind, id, last[kind], log)
				return
			}
			last[kind] = max(last[kind], id)
		}
	}
	for id, it := range h.items {
		if it.cb && outs[fmt.Sprint("cb", id)] != 1 {
			h.fail("end", "callback %d ran %d times", id, outs[fmt.Sprint("cb", id)])
			return
		}
		if cfg.onWritten && outs[fmt.Sprint("w", id)] != 1 {
			h.fail("end", "OnWritten got item %d %d times", id, outs[fmt.Sprint("w", id)])
			return
		}
	}
}

// fail reports a failure after tearing the stream down so that no
// goroutine stays blocked in the bubble.
func (h *ofHarness) fail(name, format string, args ...any) {
	h.t.Helper()
	msg := fmt.Sprintf("after %s: %s\nops:\n  %s", name, fmt.Sprintf(format, args...), strings.Join(h.trace, "\n  "))
	h.w.Destroy(errors.New("test failed"))
	for i := 0; ; i++ {
		c, ok := h.sink.call(i)
		if !ok {
			break
		}
		if c.action == ofHold {
			c.done(nil)
		}
	}
	synctest.Wait()
	time.Sleep(10 * ofLinger)
	synctest.Wait()
	h.t.Fatal(msg)
}
