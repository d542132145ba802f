package stream_test

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file is the reference model FuzzWritableOf checks a WritableOf[int]
// against: DESIGN.md's "Object mode" and its "Details of object mode and
// the new options, settled", on top of the byte model's rules
// (model_test.go), as a plain, single-threaded simulation. As there,
// callbacks and events are delivered at the end of each operation, which
// is what the harness observes after synctest.Wait; time is the bubble's
// fake clock, so Linger is modelled exactly: the linger timer fires only
// when the script advances the clock.
//
// Items are ints: v = id<<8 | arg, so that a misplaced item shows and Size
// (a function of v) varies. The model knows each item's size from the same
// Size function.

// oItem is an accepted (or rejected) item.
type oItem struct {
	id, v, size int
	seq         int // acceptance order, from 1
	cb          bool
}

// oCall is a sink call the model expects.
type oCall struct {
	idx    int
	kind   string // write, writev, final, destroy
	items  []oItem
	action ofAction
	state  mCallState
}

// oEvent is a queued outcome or event.
type oEvent struct {
	kind    string // out, drain, drainCheck, finish, final, barrier, error, close, flush
	id      int
	err     string
	cb      bool // the outcome has a callback
	written bool // ... and OnWritten gets it
	counted bool // the outcome of an accepted item (PendingCallbacks)
	flush   *oFlush
}

// oFlush is a Flush call.
type oFlush struct {
	target   int    // the seq of the last item accepted before it
	err      string // the first error among those items
	lateErr  string // the error a write got when Flush was called
	atClose  bool   // called on a closed stream: returns at "close"
	returned bool
	result   string
}

// oWait is a Wait on a goroutine with a live ctx: it wakes when Ready's
// channel closes ("drain", End, Destroy) and returns what it sees when it
// takes the lock again, which may be later in the same operation: the
// harness accepts what the stream gave at the wake-up and at the end of
// the operation.
type oWait struct {
	id      int
	woken   bool
	atWake  string
	results []string
}

type ofModel struct {
	cfg      ofConfig
	action   func(idx int) ofAction
	realCall func(idx int) (ofRealCall, bool)
	failure  string

	nextCall       int
	calls          []*oCall
	buf            []oItem // waiting, not in flight
	accepted       int
	acceptedIDs    map[int]bool
	length, corked int
	pending        int
	dropped        int
	needDrain      bool
	end            mEnd
	td             mTeardown
	err            string
	call           *oCall // write, writev or final in flight
	hookCall       *oCall
	q, late        []oEvent
	barrierReached bool
	pass           bool
	log            []string
	closed         bool
	flushes        []*oFlush // waiting, in target order
	allFlushes     []*oFlush
	waits          []*oWait  // Wait calls on a goroutine, not woken yet
	cancelable     []*oFlush // Flush calls whose ctx the script cancels

	// Linger: now is the fake clock (from the bubble's start), lingerFrom
	// when the first waiting item was accepted (lingerOld: "long ago", as
	// the engine's zero time), timerAt when the linger timer fires.
	now, lingerFrom time.Duration
	lingerOld       bool
	timerAt         time.Duration
	timerArmed      bool
}

// ofRealCall is what the model needs to know of a sink call the stream made.
type ofRealCall struct {
	kind  string
	items []int
	err   string
}

func newOfModel(cfg ofConfig, action func(int) ofAction, real func(int) (ofRealCall, bool)) *ofModel {
	return &ofModel{cfg: cfg, action: action, realCall: real, acceptedIDs: make(map[int]bool)}
}

func (m *ofModel) failf(format string, args ...any) {
	if m.failure == "" {
		m.failure = fmt.Sprintf(format, args...)
	}
}

func (m *ofModel) newCall(kind string, items []oItem) *oCall {
	c := &oCall{idx: m.nextCall, kind: kind, items: items, action: m.action(m.nextCall)}
	m.nextCall++
	m.calls = append(m.calls, c)
	rc, ok := m.realCall(c.idx)
	want := make([]int, len(items))
	for i, it := range items {
		want[i] = it.v
	}
	switch {
	case !ok:
		m.failf("expected sink call #%d %s%v; the stream made none", c.idx, kind, want)
	case kind == "destroy" && (rc.kind != "destroy" || rc.err != m.err):
		m.failf("sink call #%d: got %s(%q), want destroy(%q)", c.idx, rc.kind, rc.err, m.err)
	case kind != "destroy" && (rc.kind != kind || !slices.Equal(rc.items, want)):
		m.failf("sink call #%d: got %s%v, want %s%v (waiting %v)", c.idx, rc.kind, rc.items, kind, want, m.bufValues())
	}
	return c
}

// act runs the sink's scripted action for call c; it reports whether c
// completed before the sink function returned.
func (m *ofModel) act(c *oCall) bool {
	isWrite := c.kind == "write" || c.kind == "writev"
	switch c.action {
	case ofSync:
		m.settle(c, ofDone{}, isWrite)
	case ofFail:
		m.settle(c, ofDone{err: sinkErrLabel(c.idx)}, isWrite)
	case ofItems:
		m.settle(c, itemsDone(c), isWrite)
	case ofBad:
		m.settle(c, badDone(c), isWrite)
	case ofTwice:
		if c.kind != "destroy" {
			m.destroy("MC")
		}
		m.settle(c, ofDone{}, isWrite)
	default:
		c.state = mPending
		return false
	}
	return true
}

// ofDone is a done's argument: nil, an error, or an ItemErrors (items:
// one label per item, "" for nil; bad: of the wrong length).
type ofDone struct {
	err   string
	items []string
	bad   bool
}

// itemsDone is the ItemErrors the sink gives call c: item v fails iff
// (v+idx)%3 == 0. Only a writev gets ItemErrors; other calls get nil.
func itemsDone(c *oCall) ofDone {
	if c.kind != "writev" {
		return ofDone{}
	}
	d := ofDone{items: make([]string, len(c.items))}
	for i, it := range c.items {
		if (it.v+c.idx)%3 == 0 {
			d.items[i] = itemErrLabel(it.v)
		}
	}
	return d
}

// badDone is an ItemErrors of the wrong length, for a writev.
func badDone(c *oCall) ofDone {
	if c.kind != "writev" {
		return ofDone{}
	}
	return ofDone{bad: true}
}

// badLen is the length of call idx's wrong ItemErrors for a batch of n.
func badLen(idx, n int) int {
	if idx%2 == 0 || n == 0 {
		return n + 1
	}
	return n - 1
}

func itemErrLabel(v int) string { return fmt.Sprintf("item%d", v) }

// pump starts every sink call that can start now.
func (m *ofModel) pump() {
	for m.failure == "" {
		if m.call != nil || m.td >= mClosing {
			return
		}
		if m.td == mDestroying {
			if m.barrierReached {
				m.startDestroy()
			}
			return
		}
		n := len(m.buf)
		switch {
		case n > 0 && (m.corked > 0 || m.cfg.lingering() && m.linger(n)):
			return
		case n > 0:
			k := 1
			if m.cfg.writev {
				k = m.batchLen(n)
			}
			kind := "writev"
			if k == 1 && !m.cfg.writeNil {
				kind = "write"
			}
			c := m.newCall(kind, slices.Clone(m.buf[:k]))
			m.buf = m.buf[k:]
			if n > k {
				m.lingerOld = true // the rest waited already: no linger
			}
			m.call = c
			if !m.act(c) {
				return
			}
		case m.end == mEnding:
			if m.cfg.final {
				m.end = mFinalizing
				m.q = append(m.q, oEvent{kind: "final"})
			} else {
				m.end = mFinishing
				m.q = append(m.q, oEvent{kind: "finish"})
			}
			return
		default:
			return
		}
	}
}

// batchLen is how many of the n waiting items one Writev takes: up to
// MaxBatch items and MaxBatchSize units, at least one.
func (m *ofModel) batchLen(n int) int {
	if m.cfg.maxBatch > 0 {
		n = min(n, m.cfg.maxBatch)
	}
	if m.cfg.maxBatchSize > 0 {
		units, k := m.buf[0].size, 1
		for ; k < n && units+m.buf[k].size <= m.cfg.maxBatchSize; k++ {
			units += m.buf[k].size
		}
		n = k
	}
	return n
}

// linger reports whether the n waiting items wait for more, arming the
// timer if so: not when full, at the high-water mark, when someone waits
// (a write returned false, a Flush), after End or Destroy, nor once Linger
// has passed since the first of them was accepted.
func (m *ofModel) linger(n int) bool {
	if m.end != mOpen || m.needDrain || len(m.flushes) > 0 || m.length >= m.cfg.hwm ||
		m.cfg.maxBatch > 0 && n >= m.cfg.maxBatch || m.cfg.maxBatchSize > 0 && m.length >= m.cfg.maxBatchSize {
		return false
	}
	if m.lingerOld {
		return false
	}
	wait := m.cfg.linger - (m.now - m.lingerFrom)
	if wait <= 0 {
		return false
	}
	m.timerAt, m.timerArmed = m.now+wait, true
	return true
}

// settle records the outcome of sink call c.
func (m *ofModel) settle(c *oCall, d ofDone, sync bool) {
	c.state = mSettled
	if c.kind == "destroy" {
		m.closeStream(d.err)
		return
	}
	m.call = nil
	switch c.kind {
	case "write", "writev":
		for _, it := range c.items {
			m.length -= it.size
		}
		err := d.err
		if d.bad {
			err = "bad"
		}
		if err != "" {
			m.fail(err)
		} else if m.needDrain {
			if sync {
				m.q = append(m.q, oEvent{kind: "drainCheck"})
			} else if m.drainDue() {
				m.needDrain = false
				m.wakeWaits()
				m.q = append(m.q, oEvent{kind: "drain"})
			}
		}
		for i, it := range c.items {
			e := err
			if d.items != nil {
				e = d.items[i]
			}
			m.settleItem(it, e)
		}
		m.flushDue()
	case "final":
		if d.err != "" {
			m.fail(d.err)
		} else if m.end == mFinalizing {
			m.end = mFinishing
			m.q = append(m.q, oEvent{kind: "finish"})
		}
	}
}

// settleItem queues an accepted item's outcome and tells the waiting
// Flush calls its error.
func (m *ofModel) settleItem(it oItem, err string) {
	if err != "" {
		for _, f := range m.flushes {
			if f.err == "" && f.target >= it.seq {
				f.err = err
			}
		}
	}
	if !it.cb && !m.cfg.onWritten {
		m.pending--
		return
	}
	m.q = append(m.q, oEvent{kind: "out", id: it.id, err: err, cb: it.cb, written: m.cfg.onWritten, counted: true})
}

// flushDue wakes, behind the outcomes queued so far, every Flush whose
// items have all settled.
func (m *ofModel) flushDue() {
	oldest := m.accepted + 1
	switch {
	case m.call != nil && len(m.call.items) > 0:
		oldest = m.call.items[0].seq
	case len(m.buf) > 0:
		oldest = m.buf[0].seq
	}
	for len(m.flushes) > 0 && m.flushes[0].target < oldest {
		m.q = append(m.q, oEvent{kind: "flush", flush: m.flushes[0]})
		m.flushes = m.flushes[1:]
	}
}

func (m *ofModel) fail(err string) {
	if m.err == "" {
		m.err = err
	}
	m.destroy(err)
}

func (m *ofModel) destroy(err string) {
	if m.td != mAlive {
		return
	}
	m.td = mDestroying
	if err != "" && m.err == "" {
		m.err = err
	}
	m.wakeWaits()
	m.q = append(m.q, oEvent{kind: "barrier"})
}

func (m *ofModel) startDestroy() {
	m.td = mClosing
	err := m.err
	if err == "" {
		err = "destroyed"
	}
	for _, it := range m.buf {
		m.length -= it.size
		m.settleItem(it, err)
	}
	m.buf = nil
	m.flushDue()
	if !m.cfg.hook {
		m.closeStream("")
		return
	}
	c := m.newCall("destroy", nil)
	m.hookCall = c
	m.act(c)
}

func (m *ofModel) closeStream(err string) {
	m.td = mClosed
	if err != "" && m.err == "" {
		m.err = err
	}
	m.timerArmed = false
	if m.err != "" {
		m.q = append(m.q, oEvent{kind: "error", err: m.err})
	}
	m.q = append(m.q, oEvent{kind: "close"})
}

func (m *ofModel) drainDue() bool {
	return m.needDrain && m.length <= m.cfg.lwm && m.end == mOpen && m.td == mAlive
}

func (m *ofModel) deliver() {
	for m.failure == "" {
		if len(m.q) > 0 && m.q[0].kind == "barrier" {
			if len(m.late) > 0 {
				ev := m.late[0]
				m.late = m.late[1:]
				m.runOutcome(ev)
				continue
			}
			if !m.barrierReached {
				m.barrierReached = true
				m.pump()
			}
			if m.td == mDestroying {
				return
			}
		}
		if len(m.q) == 0 {
			return
		}
		ev := m.q[0]
		m.q = m.q[1:]
		switch ev.kind {
		case "out":
			m.runOutcome(ev)
		case "flush":
			f := ev.flush
			if f.returned {
				continue // its ctx was canceled first
			}
			// The error a write would get at the call wins, as documented.
			f.returned, f.result = true, f.lateErr
			if f.result == "" {
				f.result = f.err
			}
		case "drainCheck":
			if m.drainDue() {
				m.needDrain = false
				m.wakeWaits()
				m.emit("drain")
			}
		case "drain":
			if m.end == mOpen && m.td == mAlive {
				m.emit("drain")
			}
		case "finish":
			if m.td != mAlive {
				continue
			}
			m.end = mFinished
			m.emit("finish")
			m.destroy("")
		case "final":
			if m.td != mAlive {
				continue
			}
			c := m.newCall("final", nil)
			m.call = c
			if m.act(c) {
				m.pump()
			}
		case "barrier":
			m.pass = true
		case "error":
			m.emit("error " + ev.err)
		case "close":
			m.emit("close")
			m.closed = true
			for _, f := range m.allFlushes {
				if f.atClose {
					f.returned = true
				}
			}
		}
	}
}

func (m *ofModel) runOutcome(ev oEvent) {
	if ev.counted {
		m.pending--
	}
	if ev.written {
		m.emit(fmt.Sprintf("w %d %s", ev.id, orNil(ev.err)))
	}
	if ev.cb {
		m.emit(fmt.Sprintf("cb %d %s", ev.id, orNil(ev.err)))
	}
}

func (m *ofModel) emit(s string) { m.log = append(m.log, s) }

func (m *ofModel) lateErr() string {
	switch {
	case m.end != mOpen:
		return "WAE"
	case m.td == mAlive:
		return ""
	case m.err != "":
		return "destroyed:" + m.err
	default:
		return "destroyed"
	}
}

// reject fails an item that was not accepted: late, or dropped by
// DropNewest.
func (m *ofModel) reject(it oItem, err string) {
	if !it.cb && !m.cfg.onWritten {
		return
	}
	ev := oEvent{kind: "out", id: it.id, err: err, cb: it.cb, written: m.cfg.onWritten}
	if m.td != mAlive && !m.pass {
		m.late = append(m.late, ev)
	} else {
		m.q = append(m.q, ev)
	}
}

// room reports whether MaxBuffered leaves room for size units, evicting
// waiting items first with DropOldest.
func (m *ofModel) room(size int) bool {
	max := m.cfg.maxBuffered
	if max == 0 || m.length+size <= max || m.length == 0 {
		return true
	}
	if m.cfg.dropOldest {
		inFlight := m.length
		for _, it := range m.buf {
			inFlight -= it.size
		}
		if inFlight+size <= max || inFlight == 0 {
			for m.length+size > max && len(m.buf) > 0 {
				it := m.buf[0]
				m.buf = m.buf[1:]
				m.length -= it.size
				m.dropped++
				m.settleItem(it, "dropped") // at once, before older items in flight
			}
			m.flushDue()
		}
	}
	return m.length+size <= max || m.length == 0
}

// --- operations, each followed by the delivery of what it queued ---

func (m *ofModel) writeChunk(it oItem) bool {
	if err := m.lateErr(); err != "" {
		m.reject(it, err)
		m.deliver()
		return false
	}
	if !m.room(it.size) {
		m.dropped++
		m.needDrain = true
		m.reject(it, "dropped")
		m.deliver()
		return false
	}
	if len(m.buf) == 0 && m.cfg.lingering() {
		m.lingerFrom, m.lingerOld = m.now, false
	}
	m.accepted++
	m.acceptedIDs[it.id] = true
	it.seq = m.accepted
	m.length += it.size
	m.pending++
	m.buf = append(m.buf, it)
	m.pump()
	ok := m.length < m.cfg.hwm || m.length == 0
	if !ok {
		m.needDrain = true
	}
	ok = ok && m.td == mAlive
	m.deliver()
	return ok
}

func (m *ofModel) cork() { m.corked++ }

func (m *ofModel) uncork() {
	if m.corked > 0 {
		m.corked--
		if m.corked == 0 {
			m.pump()
			m.deliver()
		}
	}
}

func (m *ofModel) endStream() {
	m.corked = 0
	if m.end == mOpen && m.err == "" {
		m.end = mEnding
		m.wakeWaits()
	}
	m.pump()
	m.deliver()
}

func (m *ofModel) destroyStream(err string) {
	m.destroy(err)
	m.pump()
	m.deliver()
}

// flush is Flush: it returns (later) once every item accepted before it
// settled; f.returned and f.result say when and what.
func (m *ofModel) flush() *oFlush {
	f := &oFlush{target: m.accepted, lateErr: m.lateErr()}
	m.allFlushes = append(m.allFlushes, f)
	if m.td == mClosed {
		f.atClose, f.result = true, f.lateErr
		f.returned = m.closed
		return f
	}
	m.flushes = append(m.flushes, f)
	m.corked = 0
	m.pump()
	m.flushDue()
	m.deliver()
	return f
}

// cancelFlush is a Flush whose ctx was done: it leaves unless it returned.
func (m *ofModel) cancelFlush(f *oFlush) {
	m.flushes = slices.DeleteFunc(m.flushes, func(g *oFlush) bool { return g == f })
}

// wait is Wait with a ctx that is done already: the results it may give
// ("ctx" for the ctx's cause).
func (m *ofModel) wait() []string {
	if err := m.lateErr(); err != "" {
		return []string{err}
	}
	if !m.needDrain {
		return []string{""}
	}
	m.pump()
	m.deliver()
	if m.needDrain && m.end == mOpen && m.td == mAlive {
		return []string{"ctx"}
	}
	// Ready closed during the call: either the ctx or the stream won.
	return []string{"ctx", m.lateErr()}
}

// waitOn is Wait with a live ctx, called on a goroutine: it returns at
// once, or once woken (see oWait).
func (m *ofModel) waitOn(id int) *oWait {
	wt := &oWait{id: id}
	switch err := m.lateErr(); {
	case err != "":
		wt.woken, wt.results = true, []string{err}
	case !m.needDrain:
		wt.woken, wt.results = true, []string{""}
	default:
		m.waits = append(m.waits, wt)
		m.pump()
		m.deliver()
	}
	return wt
}

// cancel is the ctx of every Wait on a goroutine and of every cancelable
// Flush being canceled: those still waiting return the ctx's cause, and
// the Flush calls stop counting as waiting (for Linger).
func (m *ofModel) cancel() {
	for _, wt := range m.waits {
		wt.woken, wt.results = true, []string{"ctx"}
	}
	m.waits = nil
	for _, f := range m.cancelable {
		if !f.returned {
			f.returned, f.result = true, "ctx"
			m.cancelFlush(f)
		}
	}
	m.cancelable = nil
}

// wakeWaits wakes the waiting Wait calls: Ready's channel closed.
func (m *ofModel) wakeWaits() {
	for _, wt := range m.waits {
		wt.woken, wt.atWake = true, m.lateErr()
	}
	m.waits = nil
}

// settleWaits fixes what the Wait calls woken during an operation may
// have returned, once it is over.
func (m *ofModel) settleWaits(all []*oWait) {
	for _, wt := range all {
		if wt.woken && wt.results == nil {
			wt.results = []string{wt.atWake, m.lateErr()}
		}
	}
}

// advance moves the clock by d, firing the linger timer on the way.
func (m *ofModel) advance(d time.Duration) {
	to := m.now + d
	for m.timerArmed && m.timerAt <= to && m.failure == "" {
		m.now, m.timerArmed = m.timerAt, false
		m.pump()
		m.deliver()
	}
	m.now = to
}

func (m *ofModel) pendingCall() *oCall {
	if m.call != nil && m.call.state == mPending {
		return m.call
	}
	if m.hookCall != nil && m.hookCall.state == mPending {
		return m.hookCall
	}
	return nil
}

// done is the sink completing c after its sink function returned.
func (m *ofModel) done(c *oCall, d ofDone) {
	switch {
	case c.state == mPending:
		m.settle(c, d, false)
	case c.kind == "destroy":
		return
	default:
		m.destroy("MC")
	}
	m.pump()
	m.deliver()
}

func (m *ofModel) closeResult() string {
	switch {
	case m.err != "":
		return m.err
	case m.end == mFinished:
		return ""
	default:
		return "destroyed"
	}
}

func (m *ofModel) bufValues() []int {
	vs := make([]int, len(m.buf))
	for i, it := range m.buf {
		vs[i] = it.v
	}
	return vs
}

func (m *ofModel) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "length %d waiting %v corked %d needDrain %v end %d td %d err %q", m.length, m.bufValues(), m.corked, m.needDrain, m.end, m.td, m.err)
	return b.String()
}
