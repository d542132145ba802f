package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
)

// Regression tests for the divergences between the object-mode engine and
// DESIGN.md found while building FuzzWritableOf. Each states what DESIGN
// says; each failed before its fix.

// heldSinkOf is a sink for WritableOf[int] that holds every call until
// the test completes it, and records the items of each.
type heldSinkOf struct {
	mu    sync.Mutex
	calls [][]int
	dones []stream.Callback
}

func (s *heldSinkOf) write(v int, done stream.Callback) { s.writev([]int{v}, done) }

func (s *heldSinkOf) writev(items []int, done stream.Callback) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, append([]int(nil), items...))
	s.dones = append(s.dones, done)
}

// complete calls the done of call i.
func (s *heldSinkOf) complete(i int, err error) {
	s.mu.Lock()
	done := s.dones[i]
	s.mu.Unlock()
	done(err)
}

// outcomesOf records OnWritten and callbacks as "w v err" and "cb v err".
type outcomesOf struct {
	mu  sync.Mutex
	log []string
}

func (o *outcomesOf) add(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, fmt.Sprintf(format, args...))
}

func (o *outcomesOf) written(v int, err error) { o.add("w %d %v", v, err) }

func (o *outcomesOf) callback(v int) stream.Callback {
	return func(err error) { o.add("cb %d %v", v, err) }
}

func (o *outcomesOf) snapshot() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.log...)
}

// Bug 1. DESIGN, "Details of object mode": "DropOldest evicts waiting
// items only; if the items in flight alone leave no room, the new item is
// dropped as with DropNewest." The engine evicts the waiting items first,
// in vain, and then drops the new item too: item 1 is lost although
// evicting it could not make room for item 2.
func TestBugOfDropOldestEvictsInVain(t *testing.T) {

	synctest.Test(t, func(t *testing.T) {
		sink := &heldSinkOf{}
		var out outcomesOf
		w := stream.NewWritableOf(sink.write, stream.OptionsOf[int]{
			Size: func(v int) int { return v }, HighWaterMark: 4, MaxBuffered: 4, Overflow: stream.DropOldest,
		})
		w.WriteChunk(3, out.callback(3)) // in flight: 3 of 4 units
		w.WriteChunk(1, out.callback(1)) // waiting: 4 of 4
		w.WriteChunk(2, out.callback(2)) // 3 in flight + 2 > 4: cannot fit whatever is evicted
		synctest.Wait()
		assert.Equal(t, 1, w.State().Dropped, "only the new item is dropped")
		assert.Equal(t, []string{"cb 2 " + stream.ErrDropped.Error()}, out.snapshot(), "item 1 still waits")
		sink.complete(0, nil)
		synctest.Wait()
		require.Len(t, sink.calls, 2, "item 1 reaches the sink")
		sink.complete(1, nil)
		assert.NoError(t, w.Close(), "Close")
	})
}

// Not a bug after all, and documented on DropOldest: an item that
// DropOldest evicts gets its outcome (OnWritten and callback) at once,
// before the older item still in flight. Holding it back until that call
// settles made memory grow without bound under a stalled sink (3 GiB in
// the overflow-of benchmark), which MaxBuffered exists to prevent.
func TestEvictedOutcomeGoesAtOnce(t *testing.T) {

	synctest.Test(t, func(t *testing.T) {
		sink := &heldSinkOf{}
		var out outcomesOf
		w := stream.NewWritableOf(sink.write, stream.OptionsOf[int]{
			HighWaterMark: 2, MaxBuffered: 2, Overflow: stream.DropOldest, OnWritten: out.written,
		})
		w.WriteChunk(1, out.callback(1)) // in flight
		w.WriteChunk(2, out.callback(2)) // waiting
		w.WriteChunk(3, out.callback(3)) // evicts 2
		synctest.Wait()
		sink.complete(0, nil)
		synctest.Wait()
		sink.complete(1, nil)
		synctest.Wait()
		dropped := stream.ErrDropped.Error()
		assert.Equal(t, []string{"w 2 " + dropped, "cb 2 " + dropped, "w 1 <nil>", "cb 1 <nil>", "w 3 <nil>", "cb 3 <nil>"},
			out.snapshot(), "an eviction's outcome at once (documented on DropOldest); the others in acceptance order")
		assert.NoError(t, w.Close(), "Close")
	})
}

// Bug 3. An ItemErrors given to a single write's done is handled in two
// ways depending on the path the write took: on the locked path (a write
// with a callback) it is a per-item outcome and the stream lives on; on
// the fast path (no callback, idle stream) the stream is destroyed with
// ErrBadItemErrors, "1 errors for a batch of 0" (the fast write is not
// counted in the batch). DESIGN: ItemErrors "must have exactly one entry
// per item of the batch"; a write is a batch of one either way.
func TestBugOfItemErrorsOnFastWrite(t *testing.T) {

	itemOK := func(v int, done stream.Callback) { done(stream.ItemErrors{nil}) }
	for _, withCB := range []bool{true, false} {
		w := stream.NewWritableOf(itemOK, stream.OptionsOf[int]{})
		var cb stream.Callback
		if withCB {
			cb = func(error) {}
		}
		w.WriteChunk(1, cb)
		assert.NoError(t, w.Close(), "Close after an ItemErrors{nil} write, callback %v", withCB)
	}
}

// Bug 4 (or a DESIGN clarification). DESIGN: Flush returns "nil if all
// succeeded, else the first of their errors ...; on a stream that is
// ended, destroyed or errored it returns the error a write would get,
// after those callbacks". On a stream destroyed with boom, a write gets
// an error matching ErrDestroyed and boom; Flush returns plain boom (the
// buffered item's outcome), which does not match ErrDestroyed: the items'
// errors take precedence over the stream's state. Likewise an ended stream
// whose last batch had an ItemErrors entry gives that entry, not
// ErrWriteAfterEnd.
func TestBugOfFlushOnDestroyedStream(t *testing.T) {

	synctest.Test(t, func(t *testing.T) {
		sink := &heldSinkOf{}
		w := stream.NewWritableOf(sink.write, stream.OptionsOf[int]{})
		w.WriteChunk(1, func(error) {}) // in flight
		w.WriteChunk(2, func(error) {}) // waiting
		boom := errors.New("boom")
		w.Destroy(boom)
		flushed := make(chan error, 1)
		go func() { flushed <- w.Flush(context.Background()) }()
		synctest.Wait()
		sink.complete(0, nil)
		synctest.Wait()
		err := <-flushed
		assert.ErrorIs(t, err, stream.ErrDestroyed, "Flush on a destroyed stream: the error a write gets")
		assert.ErrorIs(t, err, boom, "... which wraps the cause")
	})
}
