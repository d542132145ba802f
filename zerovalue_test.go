package stream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/streamkit/stream"
)

// notMadeMsg is what every method of a Writable not made by NewWritable
// panics with (DESIGN "Misuse is loud").
const notMadeMsg = "stream: Writable not made by NewWritable"

// zeroValueMethods calls each method of Writable once.
var zeroValueMethods = []struct {
	name string
	call func(w *stream.Writable)
}{
	{"WriteChunk", func(w *stream.Writable) { w.WriteChunk([]byte("x"), nil) }},
	{"WriteChunk with a callback", func(w *stream.Writable) { w.WriteChunk([]byte("x"), func(error) {}) }},
	{"Write", func(w *stream.Writable) { _, _ = w.Write([]byte("x")) }},
	{"Write of 2000 bytes", func(w *stream.Writable) { _, _ = w.Write(make([]byte, 2000)) }},
	{"Write of nothing", func(w *stream.Writable) { _, _ = w.Write(nil) }},
	{"WriteString", func(w *stream.Writable) { _, _ = w.WriteString("x") }},
	{"ReadFrom", func(w *stream.Writable) { _, _ = w.ReadFrom(strings.NewReader("x")) }},
	{"End", func(w *stream.Writable) { w.End() }},
	{"Close", func(w *stream.Writable) { _ = w.Close() }},
	{"Destroy", func(w *stream.Writable) { w.Destroy(nil) }},
	{"Cork", func(w *stream.Writable) { w.Cork() }},
	{"Uncork", func(w *stream.Writable) { w.Uncork() }},
	{"Ready", func(w *stream.Writable) { _ = w.Ready() }},
	{"Done", func(w *stream.Writable) { _ = w.Done() }},
	{"Err", func(w *stream.Writable) { _ = w.Err() }},
	{"State", func(w *stream.Writable) { _ = w.State() }},
	{"OnDrain", func(w *stream.Writable) { w.OnDrain(func() {}) }},
	{"OnFinish", func(w *stream.Writable) { w.OnFinish(func() {}) }},
	{"OnClose", func(w *stream.Writable) { w.OnClose(func() {}) }},
	{"OnError", func(w *stream.Writable) { w.OnError(func(error) {}) }},
	{"Wait", func(w *stream.Writable) { _ = w.Wait(context.Background()) }},
	{"Flush", func(w *stream.Writable) { _ = w.Flush(context.Background()) }},
}

// callRecovering runs call(w) on a goroutine of its own and returns what it
// panicked with, or "no panic"; it fails the test if call does not return
// within waitTimeout (a hang, or a lock left held by an earlier call).
func callRecovering(t *testing.T, w *stream.Writable, call func(*stream.Writable)) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				got <- fmt.Sprint(r)
			}
		}()
		call(w)
		got <- "no panic"
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(waitTimeout):
		t.Fatalf("the call neither returned nor panicked within %v", waitTimeout)
		return ""
	}
}

// Issue 8, bug 3: every method of the zero value panics at once with a
// message saying the Writable was not made by NewWritable, and again the
// same way on a second call: no lock is left held, nothing hangs. On
// 03cb6e4, Write panicked with an index out of range, WriteChunk with a nil
// dereference (leaving the mutex held), and Close hung forever.
func TestZeroValueWritablePanics(t *testing.T) {
	for _, m := range zeroValueMethods {
		t.Run(m.name, func(t *testing.T) {
			for _, v := range []struct {
				name string
				w    *stream.Writable
			}{
				{"var w stream.Writable", func() *stream.Writable { var w stream.Writable; return &w }()},
				{"new(stream.Writable)", new(stream.Writable)},
			} {
				for i := range 2 {
					got := callRecovering(t, v.w, m.call)
					assert.Contains(t, got, notMadeMsg, "%s of %s, call %d: the panic", m.name, v.name, i+1)
				}
			}
		})
	}
}

// A zero value that every method was called on, in turn, still panics the
// same way: none of them changed its state.
func TestZeroValueWritableIsLeftUntouched(t *testing.T) {
	var w stream.Writable
	for range 2 {
		for _, m := range zeroValueMethods {
			got := callRecovering(t, &w, m.call)
			assert.Contains(t, got, notMadeMsg, "%s after the others", m.name)
		}
	}
}
