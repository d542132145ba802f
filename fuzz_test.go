package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamkit/stream"
)

// FuzzWritable decodes its input into a stream configuration, a script of
// sink actions and a sequence of operations, runs them against a stream
// and checks every step against the reference model (model_test.go) and
// the invariants of issue 5: bytes reach the sink exactly once and in
// acceptance order; each callback runs exactly once; WriteChunk's result,
// State, Err, Ready and Done match the model; "drain" only after a false
// and at Length 0; "finish" only after every callback and never after an
// error; "error" at most once and before "close"; nothing but late writes'
// callbacks after "close"; Close's result matches; no goroutine is left.
//
// One goroutine drives the stream and the sink holds the calls the script
// completes later, so a run is deterministic: the test runs in a synctest
// bubble and, after each operation, waits until every goroutine of the
// stream is idle (synctest.Wait) before comparing. Time is fake, so
// StallTimeout fires only when the script advances the clock. Concurrency
// is covered by the stress tests instead.
//
// Input layout: byte 0 picks the high-water mark, byte 1 the options (bit 0
// Writev, 1 Final, 2 Destroy hook, 3 Construct, 4 StallTimeout), byte 2 the
// number n (1..8) of sink actions that follow, applied to sink call k as
// actions[k%n]; then operations of two bytes, kind and argument. See
// decodeScript.
//
// An input that starts with "CW" is a concurrent script instead, with
// Writes from several goroutines at once: see fuzz_concurrent_test.go.
func FuzzWritable(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if cs, ok := decodeConcurrent(data); ok {
			synctest.Test(t, func(t *testing.T) { runConcurrent(t, cs) })
			return
		}
		sc := decodeScript(data)
		synctest.Test(t, func(t *testing.T) { runScript(t, sc) })
	})
}

// fuzzSeeds are the hand-written seeds; testdata/fuzz/FuzzWritable holds
// the inputs the fuzzer found worth keeping.
var fuzzSeeds = [][]byte{
	// hwm 4, sync sink: writes under and over the mark, End.
	seed(3, 0, []sinkAction{actSync}, opWriteChunk, 40, opWriteChunk, 200, opWriteNil, 10, opEnd, 0),
	// Held sink: writes past the high-water mark, drain, then Close.
	seed(3, 0, []sinkAction{actHold}, opWriteChunk, 40, opWriteChunk, 200, opComplete, 0, opWriteChunk, 10, opComplete, 0, opComplete, 0, opClose, 0),
	// Writev, Cork/Uncork, Final and Destroy hook.
	seed(2, 7, []sinkAction{actSync, actHold}, opCork, 0, opWriteChunk, 50, opWriteChunk, 60, opWrite, 30, opUncork, 0, opComplete, 0, opEnd, 0),
	// Construct held, writes buffered, then a sink failure.
	seed(1, 15, []sinkAction{actHold, actSync, actFail}, opWriteChunk, 30, opWriteChunk, 30, opComplete, 0, opWriteChunk, 30, opCompleteErr, 0, opClose, 0),
	// Destroy(err) with a write in flight, late writes, Write after Destroy.
	seed(0, 4, []sinkAction{actHold}, opWriteChunk, 10, opWriteChunk, 10, opDestroyErr, 0, opWriteChunk, 5, opWrite, 5, opComplete, 0, opClose, 0),
	// done twice, stale done, double Close.
	seed(4, 1, []sinkAction{actHold, actTwice, actSync}, opWriteChunk, 10, opWriteChunk, 10, opTwice, 0, opStale, 1, opStale, 3, opClose, 0, opClose, 0),
	// StallTimeout with a sink that never calls done.
	seed(3, 22, []sinkAction{actNever, actSync}, opWriteChunk, 10, opWriteChunk, 10, opAdvance, 0, opAdvance, 0, opClose, 0),
	// Write, WriteString and ReadFrom, End, then writes after End.
	seed(7, 0, []sinkAction{actHold, actSync}, opWrite, 20, opWrite|0x10, 20, opWrite|0x20, 20, opComplete, 0, opEnd, 0, opWriteChunk, 10, opWrite, 10),
	// Destroy(nil) while Final is held; then Close.
	seed(3, 6, []sinkAction{actSync, actHold}, opWriteChunk, 10, opEnd, 0, opDestroyNil, 0, opComplete, 0, opClose, 0),
}

// seed builds a fuzz input: the high-water mark's index in fuzzHWMs, the
// option bits, the sink actions, then operations as (kind, arg) pairs.
func seed(hwm, flags byte, actions []sinkAction, ops ...byte) []byte {
	code := map[sinkAction]byte{actSync: 0, actHold: 3, actFail: 5, actTwice: 6, actNever: 7}
	b := []byte{hwm, flags, byte(len(actions) - 1)}
	for _, a := range actions {
		b = append(b, code[a])
	}
	return append(b, ops...)
}

type fuzzConfig struct {
	hwm                                      int // effective: never 0
	hwmOption                                int // as passed in Options
	writev, final, destroy, construct, stall bool
}

type fuzzOp struct {
	kind uint8
	arg  uint8
}

type fuzzScript struct {
	cfg     fuzzConfig
	actions []sinkAction
	ops     []fuzzOp
}

// Operation kinds: the low four bits of an operation's first byte; bit 4 is
// a variant flag (nil callback, complete from another goroutine, ...).
const (
	opWriteChunk  = iota // 0..2: WriteChunk of arg*3*hwm/255 bytes
	opWrite       = 3    // Write / WriteString / ReadFrom (bits 4-5)
	opCork        = 4
	opUncork      = 5
	opEnd         = 6
	opDestroyNil  = 7
	opDestroyErr  = 8
	opClose       = 9
	opComplete    = 10 // the held call calls done(nil)
	opCompleteErr = 11 // ... done(err)
	opTwice       = 12 // ... done(nil) twice
	opStale       = 13 // an earlier call's done: the (arg%7+1)-th latest
	opAdvance     = 14 // the clock moves by StallTimeout
	opWriteNil    = 15 // WriteChunk with a nil callback
)

var fuzzHWMs = [...]int{1, 2, 3, 4, 7, 16, 64, 0}

const maxFuzzOps = 128

const fuzzStall = time.Second

func decodeScript(data []byte) fuzzScript {
	at := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	var sc fuzzScript
	sc.cfg.hwmOption = fuzzHWMs[int(at(0))%len(fuzzHWMs)]
	sc.cfg.hwm = sc.cfg.hwmOption
	if sc.cfg.hwm == 0 {
		sc.cfg.hwm = stream.DefaultHighWaterMark
	}
	flags := at(1)
	sc.cfg.writev = flags&1 != 0
	sc.cfg.final = flags&2 != 0
	sc.cfg.destroy = flags&4 != 0
	sc.cfg.construct = flags&8 != 0
	sc.cfg.stall = flags&16 != 0
	n := int(at(2))%8 + 1
	for i := range n {
		a := [...]sinkAction{actSync, actSync, actSync, actHold, actHold, actFail, actTwice, actNever}[at(3+i)%8]
		if a == actNever && !sc.cfg.stall {
			a = actHold // without StallTimeout a call nobody completes would hang the run
		}
		sc.actions = append(sc.actions, a)
	}
	for i := 3 + n; i < len(data) && len(sc.ops) < maxFuzzOps; i += 2 {
		sc.ops = append(sc.ops, fuzzOp{kind: data[i], arg: at(i + 1)})
	}
	return sc
}

// fuzzCall is a sink call the stream made.
type fuzzCall struct {
	idx    int
	kind   string
	chunks [][]byte
	err    error
	action sinkAction
	done   stream.Callback
}

// fuzzSink records every call and acts as the script says.
type fuzzSink struct {
	actions []sinkAction
	// attached is closed once the harness has registered its handlers:
	// Construct runs on a goroutine of the library right after NewWritable
	// returns, and a construct that fails at once would otherwise emit
	// "error" and "close" before there is anyone to see them.
	attached chan struct{}

	mu    sync.Mutex // guards calls
	calls []*fuzzCall
}

func (s *fuzzSink) handle(c *fuzzCall) {
	s.mu.Lock()
	c.idx = len(s.calls)
	c.action = s.actions[c.idx%len(s.actions)]
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	switch c.action {
	case actSync:
		c.done(nil)
	case actFail:
		c.done(errors.New(sinkErrLabel(c.idx)))
	case actTwice:
		c.done(nil)
		c.done(nil)
	}
}

func (s *fuzzSink) write(chunk []byte, done stream.Callback) {
	s.handle(&fuzzCall{kind: "write", chunks: [][]byte{bytes.Clone(chunk)}, done: done})
}

func (s *fuzzSink) writev(chunks [][]byte, done stream.Callback) {
	cp := make([][]byte, len(chunks))
	for i, c := range chunks {
		cp[i] = bytes.Clone(c)
	}
	s.handle(&fuzzCall{kind: "writev", chunks: cp, done: done})
}

func (s *fuzzSink) final(done stream.Callback) { s.handle(&fuzzCall{kind: "final", done: done}) }

func (s *fuzzSink) destroy(err error, done stream.Callback) {
	s.handle(&fuzzCall{kind: "destroy", err: err, done: done})
}

func (s *fuzzSink) construct(done stream.Callback) {
	<-s.attached
	s.handle(&fuzzCall{kind: "construct", done: done})
}

func (s *fuzzSink) call(i int) (*fuzzCall, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < len(s.calls) {
		return s.calls[i], true
	}
	return nil, false
}

func (s *fuzzSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// fuzzLog records the stream's callbacks and events, and checks the
// invariants that can be checked where they happen.
type fuzzLog struct {
	w *stream.Writable

	mu         sync.Mutex // guards the fields below
	log        []string
	cbCount    map[int]int
	violations []string
}

func (l *fuzzLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, s)
}

func (l *fuzzLog) violate(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.violations = append(l.violations, fmt.Sprintf(format, args...))
}

func (l *fuzzLog) callback(id int) stream.Callback {
	return func(err error) {
		l.mu.Lock()
		l.cbCount[id]++
		if n := l.cbCount[id]; n > 1 {
			l.violations = append(l.violations, fmt.Sprintf("callback %d ran %d times", id, n))
		}
		l.mu.Unlock()
		l.add(fmt.Sprintf("cb %d %s", id, orNil(errLabel(err))))
	}
}

func (l *fuzzLog) attach(w *stream.Writable) {
	w.OnDrain(func() {
		// S D1: "drain" only at Length 0.
		if st := w.State(); st.Length != 0 {
			l.violate("drain at Length %d", st.Length)
		}
		l.add("drain")
	})
	w.OnFinish(func() {
		// D5: "finish" after every callback, never with an error.
		if st := w.State(); st.PendingCallbacks != 0 || st.Err != nil {
			l.violate("finish with %d callbacks pending, Err %v", st.PendingCallbacks, st.Err)
		}
		l.add("finish")
	})
	w.OnError(func(err error) { l.add("error " + errLabel(err)) })
	w.OnClose(func() { l.add("close") })
}

func (l *fuzzLog) snapshot() ([]string, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log), slices.Clone(l.violations)
}

// errLabel names an error as the model does: "" for nil, "destroyed" for
// ErrDestroyed alone, "destroyed:<cause>" for ErrDestroyed wrapping the
// stream's error, "WAE", "MC", "stalled", else its message.
func errLabel(err error) string {
	if err == nil {
		return ""
	}
	if err == stream.ErrDestroyed {
		return "destroyed"
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := u.Unwrap(); len(errs) == 2 && errs[0] == stream.ErrDestroyed {
			return "destroyed:" + errLabel(errs[1])
		}
	}
	switch {
	case errors.Is(err, stream.ErrDestroyed):
		return "destroyed?" + err.Error()
	case errors.Is(err, stream.ErrWriteAfterEnd):
		return "WAE"
	case errors.Is(err, stream.ErrMultipleCallback):
		return "MC"
	case errors.Is(err, stream.ErrStalled):
		return "stalled"
	case strings.HasPrefix(err.Error(), "stream: sink panicked"):
		return "panicked"
	}
	return err.Error()
}

// harness runs one script.
type harness struct {
	t        *testing.T
	sc       fuzzScript
	w        *stream.Writable
	sink     *fuzzSink
	log      *fuzzLog
	m        *model
	trace    []string // the operations run so far, for failure messages
	nextID   int
	nextB    byte
	closes   int
	results  chan error
	got      []string // Close results received
	falses   int      // WriteChunk calls that returned false since the last drain
	drains   int
	accepted []byte      // every accepted byte, in acceptance order
	endOf    map[int]int // WriteChunk id -> offset just past its bytes in accepted
}

func runScript(t *testing.T, sc fuzzScript) { runScriptH(t, sc) }

func runScriptH(t *testing.T, sc fuzzScript) *harness {
	sink := &fuzzSink{actions: sc.actions, attached: make(chan struct{})}
	opts := stream.Options{HighWaterMark: sc.cfg.hwmOption}
	if sc.cfg.writev {
		opts.Writev = sink.writev
	}
	if sc.cfg.final {
		opts.Final = sink.final
	}
	if sc.cfg.destroy {
		opts.Destroy = sink.destroy
	}
	if sc.cfg.construct {
		opts.Construct = sink.construct
	}
	if sc.cfg.stall {
		opts.StallTimeout = fuzzStall
	}
	h := &harness{t: t, sc: sc, sink: sink, results: make(chan error, maxFuzzOps+8), endOf: make(map[int]int)}
	h.trace = append(h.trace, fmt.Sprintf("config %+v actions %v", sc.cfg, sc.actions))
	h.w = stream.NewWritable(sink.write, opts)
	h.log = &fuzzLog{w: h.w, cbCount: make(map[int]int)}
	h.log.attach(h.w)
	close(sink.attached)
	synctest.Wait()
	h.m = newModel(sc.cfg, func(i int) sinkAction { return sc.actions[i%len(sc.actions)] }, h.realCall)
	h.check("NewWritable")

	for _, op := range sc.ops {
		h.step(op)
	}
	h.finish()
	return h
}

func (h *harness) realCall(i int) (realCall, bool) {
	c, ok := h.sink.call(i)
	if !ok {
		return realCall{}, false
	}
	return realCall{kind: c.kind, chunks: c.chunks, err: errLabel(c.err)}, true
}

// payload returns n bytes that differ from the previous payloads' (mod
// 256), so that a misplaced byte shows.
func (h *harness) payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = h.nextB
		h.nextB++
	}
	return p
}

func (h *harness) size(arg uint8) int { return int(arg) * 3 * h.sc.cfg.hwm / 255 }

func (h *harness) step(op fuzzOp) {
	variant := op.kind&0x10 != 0
	switch op.kind & 0x0f {
	case 0, 1, 2, opWriteNil:
		h.writeChunk(h.size(op.arg), op.kind&0x0f != opWriteNil && !variant)
	case opWrite:
		h.write(h.size(op.arg), (op.kind>>4)%3)
	case opCork:
		h.do("Cork", h.w.Cork, h.m.cork)
	case opUncork:
		h.do("Uncork", h.w.Uncork, h.m.uncork)
	case opEnd:
		h.do("End", h.w.End, h.m.endStream)
	case opDestroyNil:
		h.do("Destroy(nil)", func() { h.w.Destroy(nil) }, func() { h.m.destroyStream("") })
	case opDestroyErr:
		h.do("Destroy(boom)", func() { h.w.Destroy(errors.New("boom")) }, func() { h.m.destroyStream("boom") })
	case opClose:
		h.closeStream()
	case opComplete, opCompleteErr, opTwice:
		h.complete(op.kind&0x0f, variant)
	case opStale:
		h.stale(int(op.arg))
	case opAdvance:
		if h.sc.cfg.stall {
			h.advance()
		} else {
			h.complete(opComplete, variant)
		}
	}
}

func (h *harness) do(name string, real, model func()) {
	h.trace = append(h.trace, name)
	real()
	synctest.Wait()
	model()
	h.check(name)
}

func (h *harness) writeChunk(n int, withCB bool) {
	h.nextID++
	id := h.nextID
	data := h.payload(n)
	var cb stream.Callback
	if withCB {
		cb = h.log.callback(id)
	}
	name := fmt.Sprintf("WriteChunk(%d: %d bytes, cb %v)", id, n, withCB)
	h.trace = append(h.trace, name)
	got := h.w.WriteChunk(data, cb)
	synctest.Wait()
	late := h.m.lateErr() != ""
	want := h.m.writeChunk(id, bytes.Clone(data), withCB)
	if !late {
		h.accepted = append(h.accepted, data...)
		h.endOf[id] = len(h.accepted)
	}
	if !got {
		h.falses++
	}
	if got != want && h.m.failure == "" {
		h.fail(name, "WriteChunk returned %v, model %v", got, want)
	}
	h.check(name)
}

func (h *harness) write(n int, how uint8) {
	if h.m.wouldBlock(n) {
		return // one goroutine drives the stream: a blocked Write would hang it
	}
	data := h.payload(n)
	var name string
	var got int
	var err error
	switch how {
	case 0:
		name = fmt.Sprintf("Write(%d bytes)", n)
		h.trace = append(h.trace, name)
		got, err = h.w.Write(data)
	case 1:
		name = fmt.Sprintf("WriteString(%d bytes)", n)
		h.trace = append(h.trace, name)
		got, err = h.w.WriteString(string(data))
	default:
		name = fmt.Sprintf("ReadFrom(%d bytes)", n)
		h.trace = append(h.trace, name)
		var n64 int64
		n64, err = h.w.ReadFrom(bytes.NewReader(data))
		got = int(n64)
	}
	synctest.Wait()
	wantN, wantErr := h.m.write(data, how == 2)
	h.accepted = append(h.accepted, data[:wantN]...)
	if (got != wantN || errLabel(err) != wantErr) && h.m.failure == "" {
		h.fail(name, "returned (%d, %q), model (%d, %q)", got, errLabel(err), wantN, wantErr)
	}
	h.check(name)
}

func (h *harness) closeStream() {
	h.closes++
	h.trace = append(h.trace, "Close")
	go func() { h.results <- h.w.Close() }()
	synctest.Wait()
	h.m.endStream()
	h.check("Close")
}

// complete has the sink complete the call it holds, if any.
func (h *harness) complete(kind uint8, elsewhere bool) {
	c := h.m.pendingCall()
	if c == nil || c.action == actNever {
		return
	}
	rc, ok := h.sink.call(c.idx)
	if !ok {
		h.fail("complete", "no sink call #%d", c.idx)
		return
	}
	var err error
	label := ""
	if kind == opCompleteErr {
		label = doneErrLabel(c.idx)
		err = errors.New(label)
	}
	name := fmt.Sprintf("done(%s) of #%d %s", orNil(label), c.idx, c.kind)
	if kind == opTwice {
		name = fmt.Sprintf("done(nil) twice of #%d %s", c.idx, c.kind)
	}
	if elsewhere {
		name += " from another goroutine"
	}
	h.trace = append(h.trace, name)
	// The second done of opTwice comes once the first one's effects have
	// settled: what the first done started (Final, the Destroy hook) runs
	// on goroutines of the library, and a second done racing with them has
	// no single right outcome to compare with. (A sink calling done twice
	// before returning is actTwice.)
	run := func(err error) {
		if elsewhere {
			go rc.done(err)
		} else {
			rc.done(err)
		}
		synctest.Wait()
	}
	run(err)
	h.m.done(c, label)
	// The second done only within the 7 calls a stale done is promised to
	// be detected for (see stale): the first one's pump may have made more.
	if kind == opTwice && (c.seq == 0 || h.m.seq-c.seq < ringSize-1) {
		run(nil)
		h.m.done(c, "")
	} else if kind == opTwice {
		h.trace = append(h.trace, "  (second done skipped: beyond the 7 calls)")
	}
	h.check(name)
}

// stale calls the done of an earlier write, writev or final call.
func (h *harness) stale(arg int) {
	var ring []*mCall
	for _, c := range h.m.calls {
		if c.seq != 0 {
			ring = append(ring, c)
		}
	}
	if len(ring) == 0 {
		return
	}
	// Only the last 7 calls: decisions promise a stale done is detected
	// that far back. Further back it may complete a later call that reuses
	// its completion (Node's quirk), and which one depends on whether the
	// writes took the fast path, an implementation detail the model leaves
	// out.
	c := ring[len(ring)-1-arg%min(len(ring), ringSize-1)]
	if h.m.seq-c.seq >= ringSize-1 {
		return
	}
	if c.state == mPending && c.action == actNever {
		return
	}
	rc, ok := h.sink.call(c.idx)
	if !ok {
		return
	}
	name := fmt.Sprintf("stale done(nil) of #%d %s (seq %d)", c.idx, c.kind, c.seq)
	h.trace = append(h.trace, name)
	rc.done(nil)
	synctest.Wait()
	h.m.done(c, "")
	h.check(name)
}

func (h *harness) advance() {
	h.trace = append(h.trace, "advance StallTimeout")
	time.Sleep(fuzzStall + time.Millisecond)
	synctest.Wait()
	h.m.stallNow()
	h.check("advance")
}

// finish closes the stream: Close, then complete what the sink holds (or
// let it stall) until "close"; then the end-of-run invariants.
func (h *harness) finish() {
	if h.t.Failed() {
		return
	}
	h.trace = append(h.trace, "-- finish --")
	if h.closes == 0 {
		h.closeStream()
	}
	for i := 0; !h.m.closed && !h.t.Failed() && i < 200; i++ {
		c := h.m.pendingCall()
		switch {
		case c == nil && h.m.corked > 0:
			h.closeStream() // a Cork after End holds the buffer until End again
		case c == nil:
			h.fail("finish", "the model is stuck before close")
			return
		case c.action == actNever:
			h.advance()
		default:
			h.complete(opComplete, false)
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
	h.closeStream() // once more, after close: the same result
	// A moment for anything that would (wrongly) come after "close".
	for range 3 {
		time.Sleep(time.Millisecond)
		synctest.Wait()
	}
	h.check("after close")
	h.endInvariants()
}

// check compares the stream with the model after an operation.
func (h *harness) check(name string) {
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
	for _, e := range log[h.drains:] {
		if e == "drain" {
			// S D2: "drain" only after a false.
			if h.falses == 0 {
				h.fail(name, "drain without a false WriteChunk before it")
				return
			}
			h.falses = 0
		}
	}
	h.drains = len(log)

	st := h.w.State()
	lo, hi, runLo, runHi := m.bufferedRange()
	var diffs []string
	cmp := func(field string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s %v, model %v", field, got, want))
		}
	}
	cmp("Length", st.Length, m.length)
	cmp("HighWaterMark", st.HighWaterMark, m.hwm)
	if st.Buffered < lo || st.Buffered > hi {
		diffs = append(diffs, fmt.Sprintf("Buffered %d, model %d..%d", st.Buffered, lo, hi))
	}
	if st.PendingCallbacks < m.pending+runLo || st.PendingCallbacks > m.pending+runHi {
		diffs = append(diffs, fmt.Sprintf("PendingCallbacks %d, model %d..%d", st.PendingCallbacks, m.pending+runLo, m.pending+runHi))
	}
	cmp("Corked", st.Corked, m.corked)
	cmp("Writing", st.Writing, m.call != nil && (m.call.kind == "write" || m.call.kind == "writev") && m.call.state == mPending)
	cmp("NeedDrain", st.NeedDrain, m.needDrain && m.end == mOpen && m.td == mAlive)
	cmp("Ending", st.Ending, m.end >= mEnding)
	cmp("Ended", st.Ended, m.end >= mEnding)
	cmp("Finished", st.Finished, m.end == mFinished)
	cmp("Destroyed", st.Destroyed, m.td >= mDestroying)
	cmp("Closed", st.Closed, m.td == mClosed)
	cmp("State.Err", errLabel(st.Err), m.err)
	cmp("Err()", errLabel(h.w.Err()), m.err)
	select {
	case <-h.w.Ready():
		cmp("Ready closed", true, !(m.needDrain && m.end == mOpen && m.td == mAlive))
	default:
		cmp("Ready closed", false, !(m.needDrain && m.end == mOpen && m.td == mAlive))
	}
	select {
	case <-h.w.Done():
		cmp("Done closed", true, m.closed)
	default:
		cmp("Done closed", false, m.closed)
	}
	for len(h.results) > 0 {
		h.got = append(h.got, errLabel(<-h.results))
	}
	if m.closed {
		cmp("Close calls returned", len(h.got), h.closes)
	} else {
		cmp("Close calls returned", len(h.got), 0)
	}
	for _, r := range h.got {
		cmp("Close()", r, m.closeResult())
	}
	if len(diffs) > 0 {
		h.fail(name, "state differs: %s\n state %+v", strings.Join(diffs, "; "), st)
	}
}

// endInvariants checks the whole run once the stream has closed.
func (h *harness) endInvariants() {
	if h.t.Failed() {
		return
	}
	log, _ := h.log.snapshot()
	// Each callback exactly once (the model knows which ones were given).
	h.log.mu.Lock()
	counts := maps.Clone(h.log.cbCount)
	h.log.mu.Unlock()
	var withCB []int
	for _, e := range h.m.log {
		var id int
		var rest string
		if n, _ := fmt.Sscanf(e, "cb %d %s", &id, &rest); n == 2 {
			withCB = append(withCB, id)
		}
	}
	for _, id := range withCB {
		if counts[id] != 1 {
			h.fail("end", "callback %d ran %d times", id, counts[id])
			return
		}
	}
	// "error" at most once, before "close"; nothing but late callbacks
	// after "close".
	errs, closeAt := 0, -1
	for i, e := range log {
		switch {
		case strings.HasPrefix(e, "error "):
			errs++
			if closeAt >= 0 {
				h.fail("end", "error after close: %q", log)
				return
			}
		case e == "close":
			if closeAt >= 0 {
				h.fail("end", "close twice: %q", log)
				return
			}
			closeAt = i
		case e == "finish":
			if errs > 0 {
				h.fail("end", "finish after error: %q", log)
				return
			}
		case closeAt >= 0 && !strings.HasPrefix(e, "cb "):
			h.fail("end", "%q after close: %q", e, log)
			return
		}
	}
	if errs > 1 || closeAt < 0 {
		h.fail("end", "%d error events, close at %d: %q", errs, closeAt, log)
		return
	}
	// Bytes exactly once, in acceptance order: the model checked every
	// sink call against its buffer; independently, the sink's bytes are a
	// prefix of the accepted bytes, and every write whose callback got nil
	// is in that prefix.
	var sunk []byte
	for i := 0; ; i++ {
		c, ok := h.sink.call(i)
		if !ok {
			break
		}
		for _, ch := range c.chunks {
			sunk = append(sunk, ch...)
		}
	}
	if !bytes.HasPrefix(h.accepted, sunk) {
		h.fail("end", "the sink's %d bytes are not a prefix of the %d accepted bytes", len(sunk), len(h.accepted))
		return
	}
	for _, e := range log {
		var id int
		var rest string
		if n, _ := fmt.Sscanf(e, "cb %d %s", &id, &rest); n == 2 && rest == "nil" && h.endOf[id] > len(sunk) {
			h.fail("end", "write %d got nil but its bytes (up to offset %d) did not all reach the sink (%d bytes)", id, h.endOf[id], len(sunk))
			return
		}
	}
}

// fail reports a failure and tears the stream down first, so that no
// goroutine is left blocked in the bubble: it completes every call the sink
// may hold, destroys the stream and lets stall timers fire.
func (h *harness) fail(name, format string, args ...any) {
	h.t.Helper()
	msg := fmt.Sprintf("after %s: %s\nops:\n  %s", name, fmt.Sprintf(format, args...), strings.Join(h.trace, "\n  "))
	h.w.Destroy(errors.New("test failed"))
	for i := 0; ; i++ {
		c, ok := h.sink.call(i)
		if !ok {
			break
		}
		if c.action == actHold || c.action == actNever {
			c.done(nil)
		}
	}
	synctest.Wait()
	time.Sleep(10 * fuzzStall)
	synctest.Wait()
	h.t.Fatal(msg)
}
