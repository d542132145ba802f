package stream_test

import (
	"bytes"
	"fmt"
	"strings"
)

// This file is the reference model FuzzWritable checks the stream against:
// DESIGN.md's "Semantics" and "Details that tests rely on" and the choices
// of /work/notes/decisions.md, written as a plain, single-threaded
// simulation. The stream delivers callbacks and events on goroutines of its
// own; the model delivers them at the end of each operation, which is what
// the fuzz harness observes, since it waits until every goroutine of the
// stream is idle (synctest.Wait) before comparing.
//
// Each rule is tagged with where it comes from: D = DESIGN.md, d =
// decisions.md, S = node-writable-spec.md.
//
// The model does not predict how Write splits or merges its bytes into
// chunks (d "Write": only bytes and order are promised): it keeps a Write's
// bytes as a "run" and learns the split from the sink calls the stream
// makes, checking that they are consistent with the promise.

// Model life-cycle states, as DESIGN and Node name them.
type mEnd int

const (
	mOpen       mEnd = iota
	mEnding          // End was called (D: Ending, Ended)
	mFinalizing      // Final is running
	mFinishing       // "finish" is queued
	mFinished        // "finish" was emitted
)

type mTeardown int

const (
	mAlive      mTeardown = iota
	mDestroying           // destroyed; waiting for the sink call in flight
	mClosing              // the Destroy hook is running
	mClosed               // the hook called done ("close" queued)
)

// mCallState is where a sink call is: waiting for done, settled, or given
// up by the stall timer.
type mCallState int

const (
	mPending mCallState = iota
	mSettled
	mAbandoned
)

// sinkAction says what the scripted sink does with a call.
type sinkAction uint8

const (
	actSync  sinkAction = iota // calls done(nil) before returning
	actHold                    // returns; the script completes it later
	actFail                    // calls done(err) before returning
	actTwice                   // calls done(nil) twice before returning
	actNever                   // returns and is never completed (with StallTimeout)
)

var actionNames = [...]string{"sync", "hold", "fail", "twice", "never"}

func (a sinkAction) String() string { return actionNames[a] }

// mItem is an accepted write: a WriteChunk chunk (kept whole), or a run of
// bytes from Write/WriteString/ReadFrom (split as the stream likes).
type mItem struct {
	id   int // the WriteChunk's id; 0 for a run
	data []byte
	cb   bool // WriteChunk with a callback
	run  bool
}

// mCall is a sink call the model expects.
type mCall struct {
	idx    int    // position among every sink call of the stream
	kind   string // write, writev, final, destroy, construct
	seq    int    // completion-ring sequence of write, writev and final calls
	items  []mItem
	action sinkAction
	state  mCallState
}

// mEvent is a queued callback or event.
type mEvent struct {
	kind    string // cb, drain, drainCheck, finish, final, barrier, error, close
	id      int
	err     string
	counted bool // the callback of an accepted write (PendingCallbacks)
}

// realCall is what the model needs to know of a sink call the stream made.
type realCall struct {
	kind   string
	chunks [][]byte
	err    string // the Destroy hook's argument, labelled
}

// ringSize is the number of reusable completions: d "a stale done ... is
// detected too, for the last 7 calls".
const ringSize = 8

type model struct {
	hwm                  int
	writev, final, hook  bool
	stall                bool
	action               func(idx int) sinkAction
	realCall             func(idx int) (realCall, bool)
	failure              string // the first inconsistency found, if any
	nextCall             int    // index of the next sink call
	calls                []*mCall
	ring                 [ringSize]*mCall
	seq                  int
	buf                  []mItem
	length, corked       int
	pending              int // PendingCallbacks, not counting buffered runs
	needDrain            bool
	end                  mEnd
	td                   mTeardown
	err                  string
	call                 *mCall // write, writev, final or construct in flight
	hookCall             *mCall
	q, late              []mEvent
	barrierReached, pass bool
	log                  []string
	closed               bool // "close" delivered: Done() closed
}

func newModel(cfg fuzzConfig, action func(int) sinkAction, real func(int) (realCall, bool)) *model {
	m := &model{
		hwm: cfg.hwm, writev: cfg.writev, final: cfg.final, hook: cfg.destroy, stall: cfg.stall,
		action: action, realCall: real,
	}
	if cfg.construct {
		// d "Construct": called on a goroutine of the library after
		// NewWritable returns; writes are buffered until it calls done.
		c := m.newCall("construct")
		m.call = c
		m.act(c)
		m.deliver()
	}
	return m
}

func (m *model) failf(format string, args ...any) {
	if m.failure == "" {
		m.failure = fmt.Sprintf(format, args...)
	}
}

// newCall expects the stream's next sink call to be of the given kind.
func (m *model) newCall(kind string) *mCall {
	c := &mCall{idx: m.nextCall, kind: kind, action: m.action(m.nextCall)}
	m.nextCall++
	m.calls = append(m.calls, c)
	if kind == "write" || kind == "writev" || kind == "final" {
		m.seq++
		c.seq = m.seq
		m.ring[c.seq%ringSize] = c
	}
	rc, ok := m.realCall(c.idx)
	switch {
	case !ok:
		m.failf("expected sink call #%d (%s); the stream made none", c.idx, kind)
	case kind == "destroy" && (rc.kind != "destroy" || rc.err != m.err):
		m.failf("sink call #%d: got %s(%q), want destroy(%q)", c.idx, rc.kind, rc.err, m.err)
	case kind != "write" && kind != "destroy" && rc.kind != kind:
		m.failf("sink call #%d: got %s, want %s", c.idx, rc.kind, kind)
	}
	return c
}

// startWrite takes the next write or writev call from the buffer (D2, D4,
// S F4), checking the stream's call against it.
func (m *model) startWrite() *mCall {
	rc, ok := m.realCall(m.nextCall)
	mustWritev := m.writev && len(m.buf) >= 2
	if !ok {
		m.newCall("write")
		return nil
	}
	if mustWritev && rc.kind != "writev" {
		m.failf("sink call #%d: got %s with %d items buffered and Writev set, want writev", m.nextCall, rc.kind, len(m.buf))
		return nil
	}
	switch rc.kind {
	case "writev":
		if !m.writev || len(m.buf) == 0 || (len(m.buf) == 1 && !m.buf[0].run) {
			m.failf("sink call #%d: unexpected writev of %q (buffer %s)", m.nextCall, rc.chunks, m.bufString())
			return nil
		}
		c := m.newCall("writev")
		chunks := rc.chunks
		for _, it := range m.buf {
			if !it.run {
				if len(chunks) == 0 || !bytes.Equal(chunks[0], it.data) {
					m.failf("writev #%d: chunks %q do not start with write %d %q", c.idx, chunks, it.id, it.data)
					return nil
				}
				c.items = append(c.items, it)
				chunks = chunks[1:]
				continue
			}
			rest := it.data
			for len(rest) > 0 {
				if len(chunks) == 0 || len(chunks[0]) == 0 || !bytes.HasPrefix(rest, chunks[0]) {
					m.failf("writev #%d: chunks %q do not continue the bytes %q of Write", c.idx, chunks, rest)
					return nil
				}
				c.items = append(c.items, mItem{data: chunks[0], run: true})
				m.pending++ // each piece is an entry PendingCallbacks counts
				rest = rest[len(chunks[0]):]
				chunks = chunks[1:]
			}
		}
		if len(chunks) != 0 {
			m.failf("writev #%d: extra chunks %q beyond the buffer", c.idx, chunks)
			return nil
		}
		m.buf = nil
		return c
	case "write":
		c := m.newCall("write")
		head := m.buf[0]
		got := rc.chunks[0]
		switch {
		case !head.run:
			if !bytes.Equal(got, head.data) {
				m.failf("write #%d: got %q, want write %d %q", c.idx, got, head.id, head.data)
				return nil
			}
			c.items = []mItem{head}
			m.buf = m.buf[1:]
		case len(got) == 0 || !bytes.HasPrefix(head.data, got):
			m.failf("write #%d: got %q, not a prefix of the Write bytes %q", c.idx, got, head.data)
			return nil
		case m.writev && len(m.buf) == 1 && len(got) != len(head.data):
			m.failf("write #%d: got %q, a part of the buffered bytes %q, with Writev set", c.idx, got, head.data)
			return nil
		default:
			c.items = []mItem{{data: got, run: true}}
			m.pending++
			if len(got) == len(head.data) {
				m.buf = m.buf[1:]
			} else {
				m.buf[0].data = head.data[len(got):]
			}
		}
		return c
	default:
		m.failf("sink call #%d: got %s, want write or writev (buffer %s)", m.nextCall, rc.kind, m.bufString())
		m.nextCall++
		return nil
	}
}

// act runs the sink's scripted action for call c, made by the stream. It
// reports whether c completed before the sink function returned.
func (m *model) act(c *mCall) bool {
	switch c.action {
	case actSync:
		m.settle(c, "", c.kind == "write" || c.kind == "writev")
	case actFail:
		m.settle(c, sinkErrLabel(c.idx), c.kind == "write" || c.kind == "writev")
	case actTwice:
		// d: the first done counts; the second destroys the stream with
		// ErrMultipleCallback (ignored for the Destroy hook). It comes
		// before the stream settles the call, since both happen before the
		// sink function returns.
		if c.kind != "destroy" {
			m.destroy("MC")
		}
		m.settle(c, "", c.kind == "write" || c.kind == "writev")
	default:
		c.state = mPending
		return false
	}
	return true
}

// pump starts every sink call that can start now (D2, D4, D5).
func (m *model) pump() {
	for m.failure == "" {
		if m.call != nil || m.td >= mClosing {
			return
		}
		if m.td == mDestroying {
			// d: the Destroy hook starts once every event queued before
			// the destroy has been delivered and nothing is in flight.
			if m.barrierReached {
				m.startDestroy()
			}
			return
		}
		switch {
		case len(m.buf) > 0 && m.corked > 0:
			return
		case len(m.buf) > 0:
			c := m.startWrite()
			if c == nil {
				return
			}
			m.call = c
			if !m.act(c) {
				return
			}
		case m.end == mEnding:
			// D5: Final (or "finish") only after every write callback:
			// queued behind the callbacks already queued.
			if m.final {
				m.end = mFinalizing
				m.q = append(m.q, mEvent{kind: "final"})
			} else {
				m.end = mFinishing
				m.q = append(m.q, mEvent{kind: "finish"})
			}
			return
		default:
			return
		}
	}
}

// settle records the outcome of sink call c. sync reports a write that
// completed before the sink function returned (S D3: its "drain" is checked
// when its callbacks are delivered).
func (m *model) settle(c *mCall, err string, sync bool) {
	c.state = mSettled
	if c.kind == "destroy" {
		m.closeStream(err)
		return
	}
	m.call = nil
	switch c.kind {
	case "write", "writev":
		for _, it := range c.items {
			m.length -= len(it.data)
		}
		if err != "" {
			m.fail(err) // D6
		} else if m.needDrain {
			// D3: "drain" before the callbacks of the completion that
			// emptied the buffer.
			if sync {
				m.q = append(m.q, mEvent{kind: "drainCheck"})
			} else if m.drainDue() {
				m.needDrain = false
				m.q = append(m.q, mEvent{kind: "drain"})
			}
		}
		for _, it := range c.items {
			m.queueCallback(it, err)
		}
	case "final":
		if err != "" {
			m.fail(err)
		} else if m.end == mFinalizing {
			m.end = mFinishing
			m.q = append(m.q, mEvent{kind: "finish"})
		}
	case "construct":
		if err != "" {
			m.fail(err)
		}
	}
}

func (m *model) queueCallback(it mItem, err string) {
	if !it.cb {
		m.pending--
		return
	}
	m.q = append(m.q, mEvent{kind: "cb", id: it.id, err: err, counted: true})
}

// fail records a sink error (D6): the first error is sticky; the stream is
// destroyed with it.
func (m *model) fail(err string) {
	if m.err == "" {
		m.err = err
	}
	m.destroy(err)
}

// destroy marks the stream destroyed; only the first call counts (S K3).
func (m *model) destroy(err string) {
	if m.td != mAlive {
		return
	}
	m.td = mDestroying
	if err != "" && m.err == "" {
		m.err = err
	}
	m.q = append(m.q, mEvent{kind: "barrier"})
}

// startDestroy fails the buffered writes and runs the Destroy hook (D
// "Details", d "Order of the life cycle").
func (m *model) startDestroy() {
	m.td = mClosing
	err := m.err
	if err == "" {
		err = "destroyed"
	}
	for _, it := range m.buf {
		m.length -= len(it.data)
		if !it.run { // a run's pieces are not counted in m.pending
			m.queueCallback(it, err)
		}
	}
	m.buf = nil
	if !m.hook {
		m.closeStream("")
		return
	}
	c := m.newCall("destroy")
	m.hookCall = c
	m.act(c)
}

// closeStream records the Destroy hook's done: its error becomes the
// stream's if it had none (d "Order of the life cycle"); "error" (iff the
// stream has one), then "close".
func (m *model) closeStream(err string) {
	m.td = mClosed
	if err != "" && m.err == "" {
		m.err = err
	}
	if m.err != "" {
		m.q = append(m.q, mEvent{kind: "error", err: m.err})
	}
	m.q = append(m.q, mEvent{kind: "close"})
}

func (m *model) drainDue() bool {
	return m.needDrain && m.length == 0 && m.end == mOpen && m.td == mAlive // S D1, D4, D5
}

// deliver runs the queued callbacks and events in order (D9).
func (m *model) deliver() {
	for m.failure == "" {
		if len(m.q) > 0 && m.q[0].kind == "barrier" {
			if len(m.late) > 0 {
				ev := m.late[0]
				m.late = m.late[1:]
				m.runCallback(ev)
				continue
			}
			if !m.barrierReached {
				m.barrierReached = true
				m.pump()
			}
			if m.td == mDestroying {
				return // the rest waits for the call in flight and the hook
			}
		}
		if len(m.q) == 0 {
			return
		}
		ev := m.q[0]
		m.q = m.q[1:]
		switch ev.kind {
		case "cb":
			m.runCallback(ev)
		case "drainCheck":
			if m.drainDue() {
				m.needDrain = false
				m.emit("drain")
			}
		case "drain":
			if m.end == mOpen && m.td == mAlive {
				m.emit("drain")
			}
		case "finish":
			if m.td != mAlive {
				continue // D: a Destroy before "finish" cancels it
			}
			m.end = mFinished
			m.emit("finish")
			m.destroy("")
		case "final":
			if m.td != mAlive {
				continue
			}
			c := m.newCall("final")
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
		}
	}
}

func (m *model) runCallback(ev mEvent) {
	if ev.counted {
		m.pending--
	}
	m.emit(fmt.Sprintf("cb %d %s", ev.id, orNil(ev.err)))
}

func (m *model) emit(s string) { m.log = append(m.log, s) }

// lateErr is the error a write gets now, "" if the stream accepts writes
// (D "Details", d "Errors"): End takes precedence over Destroy.
func (m *model) lateErr() string {
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

// reject fails a late write (D7, S H1, H8).
func (m *model) reject(id int, err string, cb bool) {
	if cb {
		ev := mEvent{kind: "cb", id: id, err: err}
		if m.td != mAlive && !m.pass {
			// Late callbacks do not wait for the write in flight.
			m.late = append(m.late, ev)
		} else {
			m.q = append(m.q, ev)
		}
	}
	// DESIGN rule 7: a write after End fails alone (no H1 destroy).
}

// --- operations, each followed by the delivery of what it queued ---

func (m *model) writeChunk(id int, data []byte, cb bool) bool {
	if err := m.lateErr(); err != "" {
		m.reject(id, err, cb)
		m.deliver()
		return false
	}
	m.length += len(data)
	m.pending++
	m.buf = append(m.buf, mItem{id: id, data: data, cb: cb})
	m.pump()
	// D1 (S C3): computed after the dispatch.
	ok := m.length < m.hwm || m.length == 0
	if !ok {
		m.needDrain = true
	}
	ok = ok && m.td == mAlive
	m.deliver()
	return ok
}

// wouldBlock reports whether Write(p) could block: the harness only writes
// when it cannot, since one goroutine drives the stream.
func (m *model) wouldBlock(n int) bool {
	return m.lateErr() == "" && (m.needDrain || m.length+n >= m.hwm)
}

// write is Write, WriteString or ReadFrom of data, when it cannot block.
// Write and WriteString return an error iff they accepted less than all of
// data (d "Write"); ReadFrom checks the stream before each read, so it also
// returns the error of a stream that failed while it accepted its bytes.
func (m *model) write(data []byte, readFrom bool) (int, string) {
	if len(data) == 0 && !readFrom {
		// An empty Write accepts nothing: it reports a late stream's
		// error but, writing nothing, does not destroy the stream with
		// ErrWriteAfterEnd (main's choice with the fix of bug 1).
		return 0, m.lateErr()
	}
	if err := m.lateErr(); err != "" {
		m.reject(0, err, false)
		m.deliver()
		return 0, err
	}
	if len(data) == 0 {
		return 0, ""
	}
	m.length += len(data)
	if n := len(m.buf); n > 0 && m.buf[n-1].run {
		m.buf[n-1].data = append(m.buf[n-1].data, data...)
	} else {
		m.buf = append(m.buf, mItem{data: bytes.Clone(data), run: true})
	}
	m.pump()
	err := ""
	if readFrom {
		err = m.lateErr()
	}
	m.deliver()
	return len(data), err
}

func (m *model) cork() { m.corked++ }

func (m *model) uncork() {
	if m.corked > 0 {
		m.corked--
		if m.corked == 0 {
			m.pump()
			m.deliver()
		}
	}
}

func (m *model) endStream() {
	m.corked = 0
	if m.end == mOpen && m.err == "" {
		m.end = mEnding
	}
	m.pump()
	m.deliver()
}

func (m *model) destroyStream(err string) {
	m.destroy(err)
	m.pump()
	m.deliver()
}

// pendingCall is the call the sink holds, if any.
func (m *model) pendingCall() *mCall {
	if m.call != nil && m.call.state == mPending {
		return m.call
	}
	if m.hookCall != nil && m.hookCall.state == mPending {
		return m.hookCall
	}
	return nil
}

// done is the sink calling c's done after its sink function returned.
// Write, writev and final calls share a ring of completions, so a stale
// done reaches whichever call now uses c's (d "Errors"). The harness only
// calls a stale done within the last 7 calls, where that is c itself:
// further back, the core's fast path, with a ring of its own, makes the
// outcome depend on which path each write took.
func (m *model) done(c *mCall, err string) {
	target := c
	if c.seq != 0 {
		target = m.ring[c.seq%ringSize]
	}
	switch {
	case target.state == mPending:
		m.settle(target, err, false)
	case target.state == mAbandoned:
		return // d: a done after a stall is ignored
	case c.kind == "destroy":
		return // a second done of the Destroy hook is ignored
	default:
		m.destroy("MC")
	}
	m.pump()
	m.deliver()
}

// stallNow is StallTimeout passing while the sink holds a call: it is given
// up with ErrStalled, which destroys the stream (D "Details").
func (m *model) stallNow() {
	c := m.pendingCall()
	if c == nil || !m.stall {
		return
	}
	m.settle(c, "stalled", false)
	c.state = mAbandoned
	m.pump()
	m.deliver()
}

// closeResult is what Close returns once the stream closed (D5).
func (m *model) closeResult() string {
	switch {
	case m.err != "":
		return m.err
	case m.end == mFinished:
		return ""
	default:
		return "destroyed"
	}
}

// Counts of buffered entries: exact for WriteChunk items, a range for runs
// (each run is at least one entry, at most one per byte).
func (m *model) bufferedRange() (lo, hi, runLo, runHi int) {
	for _, it := range m.buf {
		if it.run {
			lo++
			hi += len(it.data)
			runLo++
			runHi += len(it.data)
		} else {
			lo++
			hi++
		}
	}
	return lo, hi, runLo, runHi
}

func (m *model) bufString() string {
	var b strings.Builder
	b.WriteString("[")
	for i, it := range m.buf {
		if i > 0 {
			b.WriteString(" ")
		}
		if it.run {
			fmt.Fprintf(&b, "run%q", it.data)
		} else {
			fmt.Fprintf(&b, "%d%q", it.id, it.data)
		}
	}
	b.WriteString("]")
	return b.String()
}

func orNil(label string) string {
	if label == "" {
		return "nil"
	}
	return label
}

func sinkErrLabel(idx int) string { return fmt.Sprintf("sink#%d", idx) }
func doneErrLabel(idx int) string { return fmt.Sprintf("late#%d", idx) }
