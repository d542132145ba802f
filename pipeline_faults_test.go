package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
)

// The Pipeline fault matrix (issue 5): a script of 50 small reads, spread
// over one source or three (the middle one not an io.Closer), copied into
// a sink that completes synchronously, asynchronously, or a FromWriter
// stream. For every position k: the read k fails (with and without data);
// the sink fails the write carrying read k; ctx is cancelled with a cause
// inside read k; dst is destroyed by someone else, with nil or an error,
// inside read k, or from the sink's side while the write carrying read k
// is in flight. Pipeline must return the first error (errors.Is finds the
// read error, the sink error, context.Cause(ctx), the Destroy's error or
// ErrPrematureClose); read at most pfMaxReadsAfter times after the fault;
// close every io.Closer source exactly once; return only once dst has
// closed, with Finished(dst) agreeing; have handed the sink a prefix of
// the script's bytes, in order; and leave no goroutine behind. Helpers are
// prefixed pf.

const (
	pfReads = 50
	// pfMaxReadsAfter bounds the Read calls (EOFs included) made after the
	// fault: Pipeline has two buffers, so it may have one read ahead of a
	// write in flight when that write fails.
	pfMaxReadsAfter = 2
)

var (
	errPfRead = errors.New("read failed")
	errPfSink = errors.New("sink failed")
	errPfStop = errors.New("operator said stop")
)

// pfPiece is read i of the script: 1 + i%7 bytes of value i.
func pfPiece(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1+i%7) }

// pfStart is the offset of read i in the script's bytes.
func pfStart(i int) int {
	n := 0
	for j := range i {
		n += len(pfPiece(j))
	}
	return n
}

// pfAll is the script's bytes.
var pfAll = func() []byte {
	var b []byte
	for i := range pfReads {
		b = append(b, pfPiece(i)...)
	}
	return b
}()

// pfScript is the state shared by the sources of one run.
type pfScript struct {
	reads      atomic.Int64 // Read calls so far, EOFs included
	faultReads atomic.Int64 // reads when the fault happened; -1: none yet
	failAt     int          // the read that fails (-1: none)
	withData   bool         // the failing read returns its piece too
	hook       func(i int)  // called in read i, before it returns
}

func (sc *pfScript) fault() { sc.faultReads.CompareAndSwap(-1, sc.reads.Load()) }

// pfSource is one source: reads [from, to) of the script. Read and Close
// may run at once (Pipeline closes a source to unblock its Read).
type pfSource struct {
	sc       *pfScript
	next, to int
	reads    atomic.Int32
	closes   atomic.Int32
}

func (s *pfSource) Read(p []byte) (int, error) {
	s.sc.reads.Add(1)
	s.reads.Add(1)
	if s.next == s.to {
		return 0, io.EOF
	}
	i := s.next
	s.next++
	if i == s.sc.failAt {
		s.sc.fault()
		if s.sc.withData {
			return copy(p, pfPiece(i)), errPfRead
		}
		return 0, errPfRead
	}
	n := copy(p, pfPiece(i))
	if s.sc.hook != nil {
		s.sc.hook(i)
	}
	return n, nil
}

func (s *pfSource) Close() error {
	s.closes.Add(1)
	return nil
}

// readerOnly hides a source's Close: a source that is not an io.Closer.
type readerOnly struct{ io.Reader }

// pfLayouts: how the 50 reads are spread over sources.
var pfLayouts = []struct {
	desc   string
	bounds []int // source j has reads [bounds[j], bounds[j+1])
	plain  int   // the index of the source that is not an io.Closer; -1: none
}{
	{"one source", []int{0, pfReads}, -1},
	{"three sources", []int{0, 17, 33, pfReads}, 1},
}

// pfSink receives what dst writes: a WriteFunc or an io.Writer. It fails
// (or runs onFault, when set) at the first call carrying byte failFrom of
// the script (-1: never).
type pfSink struct {
	sc       *pfScript
	async    bool
	failFrom int
	onFault  func() // instead of failing: what the sink does at the fault
	mu       sync.Mutex
	got      []byte
	faulted  bool
}

// take records chunk and reports whether the fault is due in this call,
// and how many of its bytes precede it.
func (s *pfSink) take(chunk []byte) (due bool, before int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := len(s.got)
	if !s.faulted && s.failFrom >= 0 && start+len(chunk) > s.failFrom {
		s.faulted = true
		s.sc.fault()
		before = s.failFrom - start
		if s.onFault != nil {
			s.got = append(s.got, chunk...)
			return true, len(chunk)
		}
		s.got = append(s.got, chunk[:before]...)
		return true, before
	}
	s.got = append(s.got, chunk...)
	return false, len(chunk)
}

func (s *pfSink) write(chunk []byte, done stream.Callback) {
	var err error
	if due, _ := s.take(chunk); due {
		if s.onFault != nil {
			s.onFault()
		} else {
			err = errPfSink
		}
	}
	if s.async {
		go done(err)
	} else {
		done(err)
	}
}

// Write makes pfSink an io.Writer for FromWriter: the write carrying the
// fault writes the bytes before it and fails.
func (s *pfSink) Write(p []byte) (int, error) {
	due, n := s.take(p)
	if due {
		if s.onFault != nil {
			s.onFault()
			return len(p), nil
		}
		return n, errPfSink
	}
	return len(p), nil
}

func (s *pfSink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.got)
}

// pfFault is one row of the matrix, applied at read k.
type pfFault struct {
	desc string
	// arm sets the fault up for read k; it returns the error Pipeline
	// must return (errors.Is) and whether dst keeps no error (a
	// Destroy(nil)).
	arm func(k int, sc *pfScript, sink *pfSink, dst func() *stream.Writable, cancel context.CancelCauseFunc) (want error, noErr bool)
}

var pfFaults = []pfFault{
	{"read k fails", func(k int, sc *pfScript, _ *pfSink, _ func() *stream.Writable, _ context.CancelCauseFunc) (error, bool) {
		sc.failAt, sc.withData = k, false
		return errPfRead, false
	}},
	{"read k fails with data", func(k int, sc *pfScript, _ *pfSink, _ func() *stream.Writable, _ context.CancelCauseFunc) (error, bool) {
		sc.failAt, sc.withData = k, true
		return errPfRead, false
	}},
	{"sink fails at write k", func(k int, _ *pfScript, sink *pfSink, _ func() *stream.Writable, _ context.CancelCauseFunc) (error, bool) {
		sink.failFrom = pfStart(k)
		return errPfSink, false
	}},
	{"ctx cancelled in read k", func(k int, sc *pfScript, _ *pfSink, _ func() *stream.Writable, cancel context.CancelCauseFunc) (error, bool) {
		sc.hook = func(i int) {
			if i == k {
				sc.fault()
				cancel(errPfStop)
			}
		}
		return errPfStop, false
	}},
	{"Destroy(nil) in read k", func(k int, sc *pfScript, _ *pfSink, dst func() *stream.Writable, _ context.CancelCauseFunc) (error, bool) {
		sc.hook = func(i int) {
			if i == k {
				sc.fault()
				dst().Destroy(nil)
			}
		}
		return stream.ErrPrematureClose, true
	}},
	{"Destroy(err) in read k", func(k int, sc *pfScript, _ *pfSink, dst func() *stream.Writable, _ context.CancelCauseFunc) (error, bool) {
		sc.hook = func(i int) {
			if i == k {
				sc.fault()
				dst().Destroy(errPfStop)
			}
		}
		return errPfStop, false
	}},
	{"Destroy(nil) by the sink during write k", func(k int, _ *pfScript, sink *pfSink, dst func() *stream.Writable, _ context.CancelCauseFunc) (error, bool) {
		sink.failFrom = pfStart(k)
		sink.onFault = func() { dst().Destroy(nil) }
		return stream.ErrPrematureClose, true
	}},
}

// pfSinks are the kinds of dst.
var pfSinks = []string{"sync", "async", "FromWriter"}

func TestPipelineFaultMatrix(t *testing.T) {
	for _, layout := range pfLayouts {
		for _, kind := range pfSinks {
			t.Run(layout.desc+"/"+kind+"/no fault", func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				r := pfRun(t, layout.bounds, layout.plain, kind, -1, nil)
				require.NoError(t, r.err, "Pipeline")
				assert.NoError(t, r.finished, "Finished")
				assert.Equal(t, pfAll, r.got, "the sink got every byte, in order")
			})
			for _, f := range pfFaults {
				t.Run(layout.desc+"/"+kind+"/"+f.desc, func(t *testing.T) {
					defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
					worst := 0
					for k := range pfReads {
						r := pfRun(t, layout.bounds, layout.plain, kind, k, &f)
						if !pfCheck(t, r, k, f.desc, kind) {
							return
						}
						worst = max(worst, r.readsAfter)
					}
					t.Logf("reads after the fault: at most %d", worst)
				})
			}
		}
	}
}

// pfResult is what one run observed.
type pfResult struct {
	err        error
	want       error
	noErr      bool
	dstErr     error
	finished   error
	doneAtRet  bool
	readsAfter int
	faulted    bool
	got        []byte
	sources    []*pfSource
	plain      int
	ctxCause   error
}

// pfRun runs one Pipeline of the script over the sources of bounds into a
// dst of kind, with fault f at read k (f nil: none).
func pfRun(t *testing.T, bounds []int, plain int, kind string, k int, f *pfFault) pfResult {
	t.Helper()
	sc := &pfScript{failAt: -1}
	sc.faultReads.Store(-1)
	sink := &pfSink{sc: sc, async: kind == "async", failFrom: -1}
	var dst *stream.Writable
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r := pfResult{plain: plain}
	if f != nil {
		r.want, r.noErr = f.arm(k, sc, sink, func() *stream.Writable { return dst }, cancel)
	}
	// A high-water mark below a read's size for the FromWriter sink, so
	// that writes pile up and go out in batches.
	opts := stream.Options{HighWaterMark: 16}
	if kind == "FromWriter" {
		dst = stream.FromWriter(sink, opts)
	} else {
		dst = stream.NewWritable(sink.write, opts)
	}
	var srcs []io.Reader
	for j := range len(bounds) - 1 {
		s := &pfSource{sc: sc, next: bounds[j], to: bounds[j+1]}
		r.sources = append(r.sources, s)
		if j == plain {
			srcs = append(srcs, readerOnly{s})
		} else {
			srcs = append(srcs, s)
		}
	}
	res := make(chan error, 1)
	go func() {
		err := stream.Pipeline(ctx, dst, srcs...)
		r.doneAtRet = isClosed(dst.Done())
		res <- err
	}()
	r.err = recvWithin(t, res, "Pipeline")
	r.dstErr = dst.Err()
	r.finished = stream.Finished(context.Background(), dst)
	r.ctxCause = context.Cause(ctx)
	if fr := sc.faultReads.Load(); fr >= 0 {
		r.faulted = true
		r.readsAfter = int(sc.reads.Load() - fr)
	}
	r.got = sink.bytes()
	return r
}

// pfCheck checks a run with a fault at read k; false stops the sweep.
func pfCheck(t *testing.T, r pfResult, k int, desc, kind string) bool {
	t.Helper()
	ok := true
	check := func(cond bool, msg string, args ...any) {
		if !cond {
			ok = false
			assert.Fail(t, fmt.Sprintf("k=%d: ", k)+fmt.Sprintf(msg, args...), "Pipeline returned %v; dst.Err %v; Finished %v", r.err, r.dstErr, r.finished)
		}
	}
	check(r.faulted, "the fault happened")
	check(errors.Is(r.err, r.want), "Pipeline's error matches %v", r.want)
	check(r.doneAtRet, "dst closed before Pipeline returned")
	if r.noErr {
		check(r.dstErr == nil, "dst has no error after Destroy(nil)")
	} else {
		check(errors.Is(r.dstErr, r.want), "dst was destroyed with the first error")
	}
	check(errors.Is(r.finished, r.want), "Finished(dst) agrees")
	if errors.Is(r.want, errPfStop) && desc == "ctx cancelled in read k" {
		check(errors.Is(r.err, r.ctxCause), "Pipeline's error is context.Cause(ctx)")
	}
	if errors.Is(r.want, errPfRead) {
		src := 0
		for src+1 < len(r.sources) && r.sources[src].to <= k {
			src++
		}
		check(bytes.Contains([]byte(r.err.Error()), fmt.Appendf(nil, "reading source %d", src)), "the error names source %d", src)
	}
	check(r.readsAfter <= pfMaxReadsAfter, "reads after the fault: %d, want at most %d", r.readsAfter, pfMaxReadsAfter)
	for j, s := range r.sources {
		want := int32(1)
		if j == r.plain {
			want = 0
		}
		check(s.closes.Load() == want, "source %d closed %d times, want %d", j, s.closes.Load(), want)
	}
	check(bytes.HasPrefix(pfAll, r.got), "the sink got a prefix of the script (%d bytes)", len(r.got))
	// What certainly reached the sink: with a synchronous sink every
	// write completes inside WriteChunk, so the sink has every read made
	// before the fault.
	if kind == "sync" {
		switch desc {
		case "read k fails":
			check(len(r.got) == pfStart(k), "the sink got reads 0..k-1: %d bytes, want %d", len(r.got), pfStart(k))
		case "read k fails with data":
			check(len(r.got) == pfStart(k+1), "the sink got reads 0..k: %d bytes, want %d", len(r.got), pfStart(k+1))
		case "sink fails at write k":
			check(len(r.got) == pfStart(k), "the sink kept reads 0..k-1: %d bytes, want %d", len(r.got), pfStart(k))
		}
	}
	return ok
}
