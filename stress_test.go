package stream_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
)

// stressLong selects the long form of the stress tests (issue 5's figures:
// 64 producers x 10,000 writes). The default, short form keeps CI fast
// under the race detector.
var stressLong = flag.Bool("stress.long", false, "run the long form of the stress tests")

// The payload of producer p is a byte stream in which byte i is
// p<<2 | i%4: every byte says which producer wrote it and where it falls
// in that producer's sequence (mod 4). The sink demultiplexes what it gets
// and checks, per producer, that the phases follow each other and that the
// byte count matches: a byte lost, duplicated, or moved by anything but a
// multiple of 4 shows. Write may split a call's bytes and merge them with
// other writers' (d "Write"), so nothing else is assumed of it; WriteChunk
// keeps its chunk whole, so each WriteChunk slice must also reach the sink
// as exactly one chunk, the very slice, once, in the producer's order.
const stressProducers = 64

type stressSink struct {
	t         testing.TB
	inFlight  atomic.Int32
	maxFlight atomic.Int32
	asyncPct  int
	calls     atomic.Int64

	// mu guards the fields below. The stream makes one sink call at a time;
	// mu is there for the race detector and for the final read.
	mu       sync.Mutex
	phase    [stressProducers]byte
	count    [stressProducers]int64
	chunkSeq [stressProducers]int64 // last WriteChunk seq seen, per producer
	chunks   map[*byte]chunkTag     // WriteChunk slices not seen yet
	errs     []string
}

type chunkTag struct {
	producer int
	seq      int64
	n        int
}

func newStressSink(t testing.TB, asyncPct int) *stressSink {
	s := &stressSink{t: t, asyncPct: asyncPct, chunks: make(map[*byte]chunkTag)}
	for i := range s.chunkSeq {
		s.chunkSeq[i] = -1
	}
	return s
}

// register announces a WriteChunk slice before it is written.
func (s *stressSink) register(p []byte, producer int, seq int64) {
	if len(p) == 0 {
		return
	}
	s.mu.Lock()
	s.chunks[unsafe.SliceData(p)] = chunkTag{producer, seq, len(p)}
	s.mu.Unlock()
}

func (s *stressSink) errorf(format string, args ...any) {
	if len(s.errs) < 10 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
}

func (s *stressSink) consume(chunk []byte) {
	if len(chunk) == 0 {
		return
	}
	if tag, ok := s.chunks[unsafe.SliceData(chunk)]; ok {
		delete(s.chunks, unsafe.SliceData(chunk))
		if tag.n != len(chunk) {
			s.errorf("WriteChunk %d/%d: got %d bytes of its %d", tag.producer, tag.seq, len(chunk), tag.n)
		}
		if tag.seq <= s.chunkSeq[tag.producer] {
			s.errorf("producer %d: WriteChunk %d after %d", tag.producer, tag.seq, s.chunkSeq[tag.producer])
		}
		s.chunkSeq[tag.producer] = tag.seq
	}
	for _, b := range chunk {
		p := b >> 2
		if b&3 != s.phase[p] {
			s.errorf("producer %d: byte of phase %d where %d was due, after %d bytes", p, b&3, s.phase[p], s.count[p])
		}
		s.phase[p] = (b + 1) & 3
		s.count[p]++
	}
}

func (s *stressSink) enter() {
	if n := s.inFlight.Add(1); n > s.maxFlight.Load() {
		s.maxFlight.Store(n)
	}
	s.calls.Add(1)
}

// complete calls done now, or from another goroutine after a random
// moment; the flight counter drops first, since done may make the next
// call at once.
func (s *stressSink) complete(done stream.Callback) {
	s.inFlight.Add(-1)
	if rand.IntN(100) >= s.asyncPct {
		done(nil)
		return
	}
	go func() {
		if d := rand.IntN(4); d == 0 {
			time.Sleep(time.Duration(rand.IntN(20)) * time.Microsecond)
		} else {
			runtime.Gosched()
		}
		done(nil)
	}()
}

func (s *stressSink) write(chunk []byte, done stream.Callback) {
	s.enter()
	s.mu.Lock()
	s.consume(chunk)
	s.mu.Unlock()
	s.complete(done)
}

func (s *stressSink) writev(chunks [][]byte, done stream.Callback) {
	s.enter()
	s.mu.Lock()
	for _, c := range chunks {
		s.consume(c)
	}
	s.mu.Unlock()
	s.complete(done)
}

// stressPayload returns n bytes of producer p's stream from position at.
func stressPayload(p int, at int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(p<<2) | byte((at+int64(i))&3)
	}
	return b
}

// 64 producers write concurrently, mixing WriteChunk (with and without
// callbacks, respecting backpressure through Ready) and Write (which
// blocks on backpressure), some of them corking around batches, while a
// sink completes at random, sometimes on other goroutines after random
// delays, and one goroutine reads State in a loop. Per producer, its bytes
// arrive exactly once and in its order, each callback runs once with nil,
// and Close returns nil.
func TestStressManyProducers(t *testing.T) {
	writes := 1000
	if *stressLong {
		writes = 10_000
	}
	for _, tt := range []struct {
		desc   string
		writev bool
	}{
		{desc: "WriteFunc"},
		{desc: "Writev", writev: true},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			stressProducersRun(t, writes, tt.writev)
		})
	}
}

func stressProducersRun(t *testing.T, writes int, writev bool) {
	const (
		hwm      = 1024
		maxChunk = 64
	)
	sink := newStressSink(t, 50)
	opts := stream.Options{HighWaterMark: hwm}
	if writev {
		opts.Writev = sink.writev
	}
	w := stream.NewWritable(sink.write, opts)
	baseline := runtime.NumGoroutine()

	var (
		cbRuns    [stressProducers][]atomic.Int32
		written   [stressProducers]int64
		wg        sync.WaitGroup
		stop      = make(chan struct{})
		maxG      atomic.Int64
		maxLength atomic.Int64
		stateErrs = make(chan string, 10)
	)
	for p := range cbRuns {
		cbRuns[p] = make([]atomic.Int32, writes)
	}

	// One goroutine reads State in a loop and checks what must always hold.
	stateDone := make(chan struct{})
	go func() {
		defer close(stateDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			st := w.State()
			if int64(st.Length) > maxLength.Load() {
				maxLength.Store(int64(st.Length))
			}
			if g := int64(runtime.NumGoroutine()); g > maxG.Load() {
				maxG.Store(g)
			}
			bad := st.Length < 0 || st.Buffered < 0 || st.PendingCallbacks < 0 || st.Corked < 0 ||
				st.Err != nil || st.Destroyed || st.Ended ||
				st.Length > hwm+stressProducers*(maxChunk+4096)
			if bad {
				select {
				case stateErrs <- fmt.Sprintf("%+v", st):
				default:
				}
			}
			runtime.Gosched()
		}
	}()

	start := time.Now()
	for p := range stressProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 42))
			corker := p%8 == 0
			var at int64
			for seq := 0; seq < writes; {
				if corker && rng.IntN(4) == 0 {
					// A corked batch of WriteChunks: never wait while corked,
					// or the buffer could never flush.
					w.Cork()
					for k := 0; k < 4 && seq < writes; k++ {
						n := rng.IntN(maxChunk + 1)
						b := stressPayload(p, at, n)
						at += int64(n)
						sink.register(b, p, int64(seq))
						i := seq
						w.WriteChunk(b, func(err error) {
							if err != nil {
								t.Errorf("producer %d write %d: %v", p, i, err)
							}
							cbRuns[p][i].Add(1)
						})
						seq++
					}
					w.Uncork()
					<-w.Ready()
					continue
				}
				n := 1 + rng.IntN(maxChunk)
				b := stressPayload(p, at, n)
				at += int64(n)
				switch rng.IntN(3) {
				case 0:
					if _, err := w.Write(b); err != nil {
						t.Errorf("producer %d: Write: %v", p, err)
						return
					}
					cbRuns[p][seq].Add(1) // Write has no callback: count it here
				case 1:
					sink.register(b, p, int64(seq))
					i := seq
					if !w.WriteChunk(b, func(err error) {
						if err != nil {
							t.Errorf("producer %d write %d: %v", p, i, err)
						}
						cbRuns[p][i].Add(1)
					}) {
						<-w.Ready()
					}
				default:
					// No callback: the sink's bookkeeping says whether it
					// arrived; count it as called.
					sink.register(b, p, int64(seq))
					cbRuns[p][seq].Add(1)
					if !w.WriteChunk(b, nil) {
						<-w.Ready()
					}
				}
				seq++
			}
			written[p] = at
		}()
	}
	wg.Wait()
	close(stop) // before Close: the State loop checks that the stream is not ended
	<-stateDone
	require.NoError(t, w.Close(), "Close after every producer finished")
	elapsed := time.Since(start)

	select {
	case st := <-stateErrs:
		t.Errorf("State broke an invariant: %s", st)
	default:
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	assert.Empty(t, sink.errs, "per-producer order and chunk identity at the sink")
	assert.Empty(t, sink.chunks, "WriteChunk slices that never reached the sink")
	var total, got int64
	for p := range stressProducers {
		total += written[p]
		got += sink.count[p]
		if sink.count[p] != written[p] {
			t.Errorf("producer %d: the sink got %d bytes, it wrote %d", p, sink.count[p], written[p])
		}
		for i := range cbRuns[p] {
			if n := cbRuns[p][i].Load(); n != 1 {
				t.Errorf("producer %d write %d: callback ran %d times", p, i, n)
				break
			}
		}
	}
	assert.Equal(t, total, got, "total bytes at the sink")
	assert.EqualValues(t, 1, sink.maxFlight.Load(), "sink calls in flight at once")
	n := stressProducers * writes
	t.Logf("%d producers x %d writes (%d bytes, %d sink calls) in %v: %.0f writes/s; max goroutines %d (baseline %d, producers %d); max Length %d (hwm %d)",
		stressProducers, writes, total, sink.calls.Load(), elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds(), maxG.Load(), baseline, stressProducers, maxLength.Load(), hwm)
}

// 10,000 streams are open at once, each with a few writes, some with a
// write held in flight, with StallTimeout and a Context set: an idle
// stream holds no goroutine, and once they are closed nothing is left.
func TestStressManyStreams(t *testing.T) {
	streams := 10_000
	if *stressLong {
		streams = 100_000
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runtime.GC()
	base := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	ws := make([]*stream.Writable, streams)
	var held []stream.Callback
	var heldMu sync.Mutex
	var cbs atomic.Int64
	for i := range ws {
		hold := i%10 == 0 // every tenth stream keeps its second write in flight
		calls := 0
		ws[i] = stream.NewWritable(func(chunk []byte, done stream.Callback) {
			calls++
			if hold && calls == 2 {
				heldMu.Lock()
				held = append(held, done)
				heldMu.Unlock()
				return
			}
			done(nil)
		}, stream.Options{HighWaterMark: 64, StallTimeout: time.Hour, Context: ctx})
		for k := range 3 {
			ws[i].WriteChunk([]byte{byte(k)}, func(error) { cbs.Add(1) })
		}
	}
	// Wait until every callback that can run has run (the held writes'
	// and those behind them wait).
	want := int64(streams*3 - streams/10*2)
	for deadline := time.Now().Add(30 * time.Second); cbs.Load() != want; time.Sleep(time.Millisecond) {
		require.False(t, time.Now().After(deadline), "callbacks of the writes that were not held: %d of %d", cbs.Load(), want)
	}
	runtime.GC()
	idle := runtime.NumGoroutine() - base
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perStream := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(streams)
	t.Logf("%d open streams (%d with a write in flight): %d goroutines above baseline (%.4f per stream), about %.0f bytes of heap per stream",
		streams, len(held), idle, float64(idle)/float64(streams), perStream)
	assert.LessOrEqual(t, idle, 0, "goroutines held by idle streams")

	for _, done := range held {
		done(nil)
	}
	closed := make(chan error, streams)
	for _, w := range ws {
		go func() { closed <- w.Close() }()
	}
	for range ws {
		select {
		case err := <-closed:
			require.NoError(t, err, "Close")
		case <-time.After(time.Minute):
			t.Fatal("streams did not close")
		}
	}
	assert.EqualValues(t, streams*3, cbs.Load(), "callbacks")
	waitGoroutines(t, base, "after every stream closed")
}

// waitGoroutines waits until no more than n goroutines run, and fails the
// test with a dump of them if that takes more than 10s. (testify's
// Eventually runs its condition on a goroutine of its own.)
func waitGoroutines(t testing.TB, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines %s, want at most %d:\n%s", runtime.NumGoroutine(), what, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}
