package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/streamkit/stream"
)

// The concurrent part of FuzzWritable: Writes from several goroutines at
// once, checked for contiguity (DESIGN "A Write is contiguous"). An input
// that starts with concurrentPrefix is such a script: the next byte picks
// the number of goroutines (2..8), and the rest is decoded as for the
// sequential scripts (decodeScript: high-water mark, options, sink actions,
// operations), but the operations are shared out among the goroutines,
// which run them all at once against one stream while the sink completes
// its held calls on goroutines of its own. The outcome depends on the
// schedule, so there is no model; instead, every byte a write hands over
// is its own id, and the sink's output must show:
//   - the bytes of each Write, WriteString or ReadFrom call in one run
//     (a Write larger than its piece size, or a ReadFrom of several reads,
//     may have WriteChunk chunks between its runs, never another Write's
//     bytes); each WriteChunk chunk in one run;
//   - no more bytes of a call than it accepted, and, if the stream finished
//     (Close returned nil), all of them;
//   - each goroutine's calls in the order it made them;
//   - a Write or WriteString no larger than the high-water mark that fails
//     with ErrWriteAfterEnd accepted nothing (End would flush a part of it).

// concurrentPrefix marks a concurrent script. No input of the sequential
// corpus starts with it.
const concurrentPrefix = "CW"

// maxConcurrentCalls bounds the calls of a concurrent script: each call's
// bytes are its index plus one, so that no byte is 0 or shared.
const maxConcurrentCalls = 255

// Concurrent operation kinds: bits 3-5 of an operation's first byte; bits
// 0-2 pick its goroutine (modulo their number).
const (
	copWrite       = iota // 0, 1: Write
	copWriteString = 2
	copReadFrom    = 3 // in reads of arg%61+1 bytes
	copChunk       = 4 // WriteChunk, nil callback
	copChunkCB     = 5 // WriteChunk with a callback
	copCork        = 6 // Cork, until this goroutine's next call that is no WriteChunk
	copLifecycle   = 7 // arg%4: End, Close, Destroy(nil), Destroy(err)
)

type concurrentScript struct {
	goroutines int
	sc         fuzzScript
}

func decodeConcurrent(data []byte) (concurrentScript, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(concurrentPrefix))
	if !ok || len(rest) == 0 {
		return concurrentScript{}, false
	}
	return concurrentScript{goroutines: int(rest[0])%7 + 2, sc: decodeScript(rest[1:])}, true
}

// concurrentCall is one call a goroutine makes, and its outcome.
type concurrentCall struct {
	id        byte // every byte of its data
	g         int
	kind      int
	size      int
	readSize  int
	lifecycle int

	n   int   // bytes accepted (Write, WriteString, ReadFrom)
	err error // its error

	// mu guards the outcome of a WriteChunk's callback, which may run after
	// Close returned if the write was late.
	mu    sync.Mutex
	cbErr error
	cbRan bool
}

// callback returns the outcome of c's callback: whether it ran, and its
// error.
func (c *concurrentCall) callback() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cbRan, c.cbErr
}

// concurrentSink records every byte it gets, in order, and completes each
// call as the script's actions say: a held call on a goroutine of its own.
type concurrentSink struct {
	actions []sinkAction
	mu      sync.Mutex // guards the fields below
	calls   int
	out     []byte
}

func (s *concurrentSink) handle(chunks [][]byte, done stream.Callback) {
	s.mu.Lock()
	for _, c := range chunks {
		s.out = append(s.out, c...)
	}
	i := s.calls
	s.calls++
	s.mu.Unlock()
	switch s.actions[i%len(s.actions)] {
	case actSync:
		done(nil)
	case actHold:
		go done(nil)
	case actFail:
		done(errors.New(sinkErrLabel(i)))
	case actTwice:
		done(nil)
		done(nil)
	case actNever:
		// StallTimeout gives up on it.
	}
}

func (s *concurrentSink) write(chunk []byte, done stream.Callback)     { s.handle([][]byte{chunk}, done) }
func (s *concurrentSink) writev(chunks [][]byte, done stream.Callback) { s.handle(chunks, done) }
func (s *concurrentSink) hook(done stream.Callback)                    { s.handle(nil, done) }
func (s *concurrentSink) destroy(_ error, done stream.Callback)        { s.handle(nil, done) }

// runConcurrent runs a concurrent script and checks its output.
func runConcurrent(t *testing.T, cs concurrentScript) {
	cfg := cs.sc.cfg
	sink := &concurrentSink{actions: cs.sc.actions}
	opts := stream.Options{HighWaterMark: cfg.hwmOption}
	if cfg.writev {
		opts.Writev = sink.writev
	}
	if cfg.final {
		opts.Final = sink.hook
	}
	if cfg.destroy {
		opts.Destroy = sink.destroy
	}
	if cfg.construct {
		opts.Construct = sink.hook
	}
	if cfg.stall {
		opts.StallTimeout = fuzzStall
	}
	w := stream.NewWritable(sink.write, opts)

	size := func(arg uint8) int { return int(arg) * 3 * cfg.hwm / 255 }
	perG := make([][]*concurrentCall, cs.goroutines)
	var calls []*concurrentCall
	for _, op := range cs.sc.ops {
		if len(calls) == maxConcurrentCalls {
			break
		}
		c := &concurrentCall{
			id: byte(len(calls) + 1), g: int(op.kind&7) % cs.goroutines, kind: int(op.kind>>3) & 7,
			size: size(op.arg), readSize: int(op.arg)%61 + 1, lifecycle: int(op.arg) % 4,
		}
		calls = append(calls, c)
		perG[c.g] = append(perG[c.g], c)
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, mine := range perG {
		wg.Go(func() {
			<-start
			// A Cork holds for the WriteChunk calls that follow it: a Write
			// that blocks while its own goroutine holds a Cork would wait
			// forever.
			corks := 0
			for _, c := range mine {
				if !isChunk(c) {
					for ; corks > 0; corks-- {
						w.Uncork()
					}
				}
				runConcurrentCall(w, c)
				if c.kind == copCork {
					corks++
				}
			}
			for ; corks > 0; corks-- {
				w.Uncork()
			}
		})
	}
	close(start)
	wg.Wait()
	closeErr := w.Close()

	sink.mu.Lock()
	out := sink.out
	sink.mu.Unlock()
	if msg := checkConcurrentOutput(out, calls, closeErr, cfg.hwm); msg != "" {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s\nconfig %+v actions %v, %d goroutines, Close: %v\ncalls:\n", msg, cfg, cs.sc.actions, cs.goroutines, closeErr)
		for _, c := range calls {
			fmt.Fprintf(&b, "  #%d g%d kind %d size %d: n %d err %v\n", c.id, c.g, c.kind, c.size, c.n, c.err)
		}
		t.Fatal(b.String())
	}
}

// runConcurrentCall makes call c on w.
func runConcurrentCall(w *stream.Writable, c *concurrentCall) {
	data := bytes.Repeat([]byte{c.id}, c.size)
	switch c.kind {
	case copWrite, copWrite + 1:
		c.n, c.err = w.Write(data)
	case copWriteString:
		c.n, c.err = w.WriteString(string(data))
	case copReadFrom:
		n, err := w.ReadFrom(&shortReader{r: bytes.NewReader(data), max: c.readSize})
		c.n, c.err = int(n), err
	case copChunk:
		w.WriteChunk(data, nil)
		c.n = c.size // at most
	case copChunkCB:
		c.n = c.size
		w.WriteChunk(data, func(err error) {
			c.mu.Lock()
			c.cbErr, c.cbRan = err, true
			c.mu.Unlock()
		})
	case copCork:
		w.Cork()
	case copLifecycle:
		switch c.lifecycle {
		case 0:
			w.End()
		case 1:
			c.err = w.Close()
		case 2:
			w.Destroy(nil)
		case 3:
			w.Destroy(errors.New("boom"))
		}
	}
}

func isChunk(c *concurrentCall) bool { return c.kind == copChunk || c.kind == copChunkCB }

func isCopy(c *concurrentCall) bool { return c.kind <= copReadFrom }

// checkConcurrentOutput checks the sink's output against the calls made;
// it returns what is wrong, or "".
func checkConcurrentOutput(out []byte, calls []*concurrentCall, closeErr error, hwm int) string {
	byID := make(map[byte]*concurrentCall, len(calls))
	for _, c := range calls {
		byID[c.id] = c
	}
	piece := min(max(4096, ceilPow2(hwm)), 1<<20) // Write's doc
	type run struct{ start, end int }
	runs := make(map[byte][]run)
	firstAt := make(map[byte]int)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && out[j] == out[i] {
			j++
		}
		id := out[i]
		c, ok := byID[id]
		if !ok || !(isCopy(c) || isChunk(c)) {
			return fmt.Sprintf("byte %d at offset %d belongs to no write", id, i)
		}
		if _, seen := firstAt[id]; !seen {
			firstAt[id] = i
		}
		runs[id] = append(runs[id], run{i, j})
		i = j
	}
	for _, c := range calls {
		if !isCopy(c) && !isChunk(c) {
			continue
		}
		rs := runs[c.id]
		total := 0
		for _, r := range rs {
			total += r.end - r.start
		}
		if total > c.n {
			return fmt.Sprintf("#%d: %d bytes at the sink, %d accepted", c.id, total, c.n)
		}
		// A WriteChunk whose callback got nil reached the sink whole.
		if ran, err := c.callback(); c.kind == copChunkCB && ran && err == nil && total != c.size {
			return fmt.Sprintf("#%d: its callback got nil, but %d of its %d bytes reached the sink", c.id, total, c.size)
		}
		if closeErr == nil && isCopy(c) && total != c.n {
			return fmt.Sprintf("#%d: %d of its %d accepted bytes at the sink, but Close returned nil", c.id, total, c.n)
		}
		// End's flush would send the part of the line accepted before it.
		if c.kind <= copWriteString && c.size <= hwm && c.n != 0 && errors.Is(c.err, stream.ErrWriteAfterEnd) {
			return fmt.Sprintf("#%d: a Write of %d bytes, under the mark %d, accepted %d, then %v", c.id, c.size, hwm, c.n, c.err)
		}
		// Only WriteChunk chunks may come between the runs of a Write larger
		// than its piece size, or of a ReadFrom (its pieces are its reads,
		// whatever their size); nothing may split any other call.
		splittable := c.kind == copReadFrom || isCopy(c) && c.size > piece
		for k := 1; k < len(rs); k++ {
			b := out[rs[k-1].end]
			if !splittable || !isChunk(byID[b]) {
				return fmt.Sprintf("#%d (%d bytes, piece %d) torn by #%d", c.id, c.size, piece, b)
			}
			for _, b := range out[rs[k-1].end:rs[k].start] {
				if !isChunk(byID[b]) {
					return fmt.Sprintf("#%d (%d bytes) torn by #%d", c.id, c.size, b)
				}
			}
		}
	}
	// Each goroutine's calls in order.
	last := make(map[int]*concurrentCall)
	for _, c := range calls {
		at, ok := firstAt[c.id]
		if !ok {
			continue
		}
		if p := last[c.g]; p != nil && firstAt[p.id] > at {
			return fmt.Sprintf("goroutine %d: #%d reached the sink before #%d, made earlier", c.g, c.id, p.id)
		}
		last[c.g] = c
	}
	return ""
}

func ceilPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}
