package streamtest

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamkit/stream"
)

// Timeout bounds every wait in this package.
const Timeout = 5 * time.Second

// Kind names a sink call: the WriteFunc, WritevFunc, FinalFunc, DestroyFunc
// or ConstructFunc of a stream.
type Kind string

// The kinds of sink calls.
const (
	Write     Kind = "write"
	Writev    Kind = "writev"
	Final     Kind = "final"
	Destroy   Kind = "destroy"
	Construct Kind = "construct"
)

// Writes lists the kinds that carry data.
var Writes = []Kind{Write, Writev}

// Mode says how a [Sink] completes a call of one kind.
type Mode int

const (
	// Sync calls done before the sink method returns.
	Sync Mode = iota
	// Async calls done from a new goroutine.
	Async
	// Hold keeps the call until the test completes it: see [Sink.Next].
	Hold
)

// Call is one call the stream made to a [Sink].
type Call struct {
	Kind Kind
	// Chunks holds a copy of the data: one chunk for a write, every chunk of
	// a writev, nil for the other kinds.
	Chunks [][]byte
	// Err is the error a destroy hook was called with.
	Err error

	done stream.Callback
	// completed is set once someone has completed (or will complete) the
	// call: Done, or the sink itself in modes Sync and Async.
	completed atomic.Bool
}

// Done calls the done callback the stream gave to this call. Calling it
// again calls the stream's callback again (to test ErrMultipleCallback).
func (c *Call) Done(err error) {
	c.completed.Store(true)
	c.done(err)
}

// Data returns the call's chunks joined.
func (c *Call) Data() string {
	return string(joinChunks(c.Chunks))
}

// String describes the call: "write a", "writev [a b]", "final",
// "destroy <nil>", "destroy boom" or "construct".
func (c *Call) String() string {
	switch c.Kind {
	case Write:
		return "write " + string(c.Chunks[0])
	case Writev:
		parts := make([]string, len(c.Chunks))
		for i, ch := range c.Chunks {
			parts[i] = string(ch)
		}
		return fmt.Sprintf("writev [%s]", strings.Join(parts, " "))
	case Destroy:
		return "destroy " + Label(c.Err)
	default:
		return string(c.Kind)
	}
}

// Sink is a scripted sink. Pass its methods as the WriteFunc and as the
// Writev, Final, Destroy and Construct options. Every call is recorded; each
// kind completes as its [Mode] says (Sync by default), successfully unless
// [Sink.FailCall] scripted an error for it.
//
// A Sink is safe for concurrent use. Its zero value is not usable: use NewSink.
type Sink struct {
	// mu guards the fields below.
	mu       sync.Mutex
	modes    map[Kind]Mode
	fails    map[Kind]map[int]error // kind -> 1-based call number -> result
	onCall   func(*Call)
	calls    []*Call
	counts   map[Kind]int
	held     []*Call       // held calls not yet handed out by Next
	wake     chan struct{} // closed and replaced whenever held grows
	released bool          // set by Release: every call completes at once
	depth    int           // sink calls currently executing
	maxDepth int
}

// NewSink returns a Sink that completes every call synchronously with nil.
func NewSink() *Sink {
	return &Sink{
		modes:  make(map[Kind]Mode),
		fails:  make(map[Kind]map[int]error),
		counts: make(map[Kind]int),
		wake:   make(chan struct{}),
	}
}

// SetMode sets how calls of the given kinds complete from now on.
func (s *Sink) SetMode(m Mode, kinds ...Kind) *Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range kinds {
		s.modes[k] = m
	}
	return s
}

// FailCall makes the n-th call (counting from 1) of the given kind complete
// with err when the sink completes it itself (modes Sync and Async).
func (s *Sink) FailCall(k Kind, n int, err error) *Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fails[k] == nil {
		s.fails[k] = make(map[int]error)
	}
	s.fails[k][n] = err
	return s
}

// OnCall registers fn to run inside every sink call, after it is recorded and
// before it completes (or is held). fn may call the stream's methods.
func (s *Sink) OnCall(fn func(*Call)) *Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = fn
	return s
}

// Write is the WriteFunc.
func (s *Sink) Write(chunk []byte, done stream.Callback) {
	s.handle(&Call{Kind: Write, Chunks: [][]byte{clone(chunk)}, done: done})
}

// Writev is the WritevFunc.
func (s *Sink) Writev(chunks [][]byte, done stream.Callback) {
	cp := make([][]byte, len(chunks))
	for i, ch := range chunks {
		cp[i] = clone(ch)
	}
	s.handle(&Call{Kind: Writev, Chunks: cp, done: done})
}

// Final is the FinalFunc.
func (s *Sink) Final(done stream.Callback) {
	s.handle(&Call{Kind: Final, done: done})
}

// Destroy is the DestroyFunc.
func (s *Sink) Destroy(err error, done stream.Callback) {
	s.handle(&Call{Kind: Destroy, Err: err, done: done})
}

// Construct is the ConstructFunc.
func (s *Sink) Construct(done stream.Callback) {
	s.handle(&Call{Kind: Construct, done: done})
}

func (s *Sink) handle(c *Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.counts[c.Kind]++
	result := s.fails[c.Kind][s.counts[c.Kind]]
	mode := s.modes[c.Kind]
	if s.released {
		mode = Sync
	}
	if mode != Hold {
		c.completed.Store(true) // so that Release leaves it alone
	}
	onCall := s.onCall
	s.depth++
	s.maxDepth = max(s.maxDepth, s.depth)
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		s.depth--
		s.mu.Unlock()
	}()
	if onCall != nil {
		onCall(c)
	}
	switch mode {
	case Sync:
		c.Done(result)
	case Async:
		go c.Done(result)
	case Hold:
		s.mu.Lock()
		if s.released { // Release ran while onCall did.
			s.mu.Unlock()
			c.Done(nil)
			return
		}
		s.held = append(s.held, c)
		close(s.wake)
		s.wake = make(chan struct{})
		s.mu.Unlock()
	}
}

// Next waits for the next held call, in the order the calls were made, and
// returns it; the test completes it with [Call.Done]. Call it from the test's
// own goroutine: it fails the test with t.Fatalf.
func (s *Sink) Next(t testing.TB) *Call {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.held) > 0 {
			c := s.held[0]
			s.held = s.held[1:]
			s.mu.Unlock()
			return c
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			t.Fatalf("streamtest: no held sink call within %v (calls so far: %v)", Timeout, s.Log())
			return nil
		}
	}
}

// Held returns how many held calls Next has not handed out yet.
func (s *Sink) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// Calls returns every call so far, in order.
func (s *Sink) Calls() []*Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Call(nil), s.calls...)
}

// Log returns [Call.String] of every call so far, in order.
func (s *Sink) Log() []string {
	calls := s.Calls()
	log := make([]string, len(calls))
	for i, c := range calls {
		log[i] = c.String()
	}
	return log
}

// Count returns how many calls of kind k the sink got.
func (s *Sink) Count(k Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[k]
}

// Data returns every byte written (write and writev calls), in order.
func (s *Sink) Data() string {
	var b strings.Builder
	for _, c := range s.Calls() {
		if c.Kind == Write || c.Kind == Writev {
			b.Write(joinChunks(c.Chunks))
		}
	}
	return b.String()
}

// MaxDepth returns the deepest nesting of sink calls seen: 1 unless the
// stream called the sink again from inside a sink call (recursion).
func (s *Sink) MaxDepth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxDepth
}

// Release completes, with nil, every call that has not been completed yet,
// and makes every later call complete at once. Cleanup uses it so that no
// stream waits forever for a held call.
func (s *Sink) Release() {
	s.mu.Lock()
	s.released = true
	s.held = nil
	calls := append([]*Call(nil), s.calls...)
	s.mu.Unlock()
	for _, c := range calls {
		if !c.completed.Load() {
			c.Done(nil)
		}
	}
}

func clone(b []byte) []byte {
	return append([]byte{}, b...)
}

func joinChunks(chunks [][]byte) []byte {
	var out []byte
	for _, ch := range chunks {
		out = append(out, ch...)
	}
	return out
}
