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
	"testing/synctest"

	"github.com/streamkit/stream"
)

// FuzzPipeline decodes its input into 1-4 sources, each a script of reads
// (data of 0-32 bytes, data with io.EOF, an error with or without data,
// an empty read) some of which also cancel ctx or destroy dst from inside
// the Read; a sink (synchronous, asynchronous, or FromWriter) that fails
// at a given byte of the data; and a high-water mark. It runs Pipeline in
// a synctest bubble and checks:
//
//   - the error is one that can come first: nil only without any fault;
//     with a synchronous sink, exactly the first fault in read order; else
//     the first fault on the reading side or the sink's, if the sink got
//     its byte before (errors.Is on the read error, the sink error,
//     context.Cause(ctx), the Destroy's error or ErrPrematureClose);
//   - no Read after a fault on the reading side, and at most two Reads
//     that start once dst is destroyed;
//   - dst has closed when Pipeline returns, and Finished(dst) agrees (when
//     two faults race, it may report the other one);
//   - every io.Closer source is closed exactly once;
//   - the sink got a prefix of the data, in order: all of it on success;
//   - no goroutine is left (the bubble fails otherwise).
//
// Input layout: byte 0: sink kind (%3) and high-water mark (/3 %4);
// byte 1: the number of sources (%4 + 1) and which are io.Closers (bits
// 4-7); byte 2: the sink fails at data byte 4*b (255: never); then reads
// of two bytes, kind and argument (see fpDecode).
func FuzzPipeline(f *testing.F) {
	for _, s := range fpSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := fpDecode(data)
		synctest.Test(t, func(t *testing.T) { fpRun(t, sc) })
	})
}

// fpSeeds are the hand-written seeds; testdata/fuzz/FuzzPipeline holds
// the inputs the fuzzer found worth keeping.
var fpSeeds = [][]byte{
	// Sync sink, one Closer source, three reads: success.
	{0, 0x10, 255, fpData, 10, fpData, 20, fpData, 5},
	// Async sink, two sources, the sink fails at byte 12.
	{1, 0x31, 3, fpData, 10, fpDataEOF, 10, fpData, 10},
	// FromWriter sink, three sources, a read error in the second.
	{2, 0x72, 255, fpData, 8, fpDataEOF, 8, fpData, 4, fpErrData, 3, fpData, 9},
	// Sync sink, ctx cancelled in the second read.
	{3, 0x10, 255, fpData, 5, fpData | fpHookCancel, 5, fpData, 5},
	// Async sink, Destroy(nil) in a read (ErrPrematureClose; bug 8).
	{4, 0x10, 255, fpData, 5, fpData | fpHookDestroyNil, 5, fpData, 5},
	// FromWriter sink, Destroy(err), empty reads.
	{5, 0x30, 255, fpEmpty, 0, fpData | fpHookDestroyErr, 5, fpEmpty, 0, fpData, 5},
	// Read error and sink failure on the same read.
	{0, 0x10, 1, fpErrData, 8},
}

// Read kinds (low 3 bits of a read's first byte) and hooks (bits 3-5).
const (
	fpData    = iota // n bytes
	fpDataEOF        // n bytes and io.EOF: the source ends
	fpErr            // 0, error
	fpErrData        // n bytes, error
	fpEmpty          // 0, nil
	fpNext           // 0, io.EOF: the source ends

	fpHookCancel     = 1 << 3 // cancel ctx with a cause inside this Read
	fpHookDestroyNil = 2 << 3 // dst.Destroy(nil) inside this Read
	fpHookDestroyErr = 3 << 3 // dst.Destroy(err) inside this Read
)

var (
	errFpRead    = errors.New("fuzz: read failed")
	errFpSink    = errors.New("fuzz: sink failed")
	errFpCancel  = errors.New("fuzz: ctx cancelled")
	errFpDestroy = errors.New("fuzz: dst destroyed")
)

type fpRead struct {
	kind, hook int
	data       []byte
}

type fpScript struct {
	sink     int // 0 sync, 1 async, 2 FromWriter
	hwm      int
	sources  [][]fpRead
	closers  []bool
	failFrom int // the data byte at which the sink fails; -1: never
}

const fpMaxReads = 64

func fpDecode(data []byte) fpScript {
	at := func(i int) int {
		if i < len(data) {
			return int(data[i])
		}
		return 0
	}
	sc := fpScript{
		sink:     at(0) % 3,
		hwm:      []int{1, 16, 1024, 0}[at(0)/3%4],
		failFrom: 4 * at(2),
	}
	if at(2) == 255 || len(data) < 3 {
		sc.failFrom = -1
	}
	nsrc := at(1)%4 + 1
	for i := range nsrc {
		sc.closers = append(sc.closers, at(1)>>(4+i)&1 == 1)
	}
	sc.sources = make([][]fpRead, nsrc)
	src, val := 0, 0
	for i := 3; i+1 < len(data) && src < nsrc && i < 3+2*fpMaxReads; i += 2 {
		r := fpRead{kind: int(data[i]) & 7 % 6, hook: int(data[i]) >> 3 & 3}
		if r.kind == fpData || r.kind == fpDataEOF || r.kind == fpErrData {
			r.data = make([]byte, int(data[i+1])%33)
			for j := range r.data {
				r.data[j] = byte(val)
				val++
			}
		}
		sc.sources[src] = append(sc.sources[src], r)
		if r.kind == fpDataEOF || r.kind == fpNext {
			src++
		}
	}
	return sc
}

// fpSource plays one source's reads, then io.EOF.
type fpSource struct {
	run    *fpRunState
	index  int
	reads  []fpRead
	next   int
	closes atomic.Int32
}

// fpRunState is shared by the sources and the sink of one run.
type fpRunState struct {
	sc     fpScript
	dst    *stream.Writable
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	pos       int // reads (of the script) returned so far
	late      int // Read calls that started with dst destroyed
	got       []byte
	sinkGiven int // data bytes handed to the sink so far
}

func (s *fpSource) Read(p []byte) (int, error) {
	st := s.run
	if st.dst.State().Destroyed {
		st.mu.Lock()
		st.late++
		st.mu.Unlock()
	}
	if s.next == len(s.reads) {
		return 0, io.EOF
	}
	r := s.reads[s.next]
	s.next++
	st.mu.Lock()
	st.pos++
	st.mu.Unlock()
	switch r.hook {
	case 1:
		st.cancel(errFpCancel)
	case 2:
		st.dst.Destroy(nil)
	case 3:
		st.dst.Destroy(errFpDestroy)
	}
	n := copy(p, r.data)
	switch r.kind {
	case fpDataEOF, fpNext:
		return n, io.EOF
	case fpErr, fpErrData:
		return n, errFpRead
	}
	return n, nil
}

func (s *fpSource) Close() error {
	s.closes.Add(1)
	return nil
}

// take records chunk at the sink; it reports whether the failure is due
// in this call and how many bytes of chunk precede it.
func (st *fpRunState) take(chunk []byte) (bool, int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	start := st.sinkGiven
	st.sinkGiven += len(chunk)
	if st.sc.failFrom >= 0 && start <= st.sc.failFrom && st.sc.failFrom < start+len(chunk) {
		st.got = append(st.got, chunk[:st.sc.failFrom-start]...)
		return true, st.sc.failFrom - start
	}
	st.got = append(st.got, chunk...)
	return false, len(chunk)
}

func (st *fpRunState) write(chunk []byte, done stream.Callback) {
	due, _ := st.take(chunk)
	finish := func() {
		if due {
			done(errFpSink)
			return
		}
		done(nil)
	}
	if st.sc.sink == 1 {
		go finish()
	} else {
		finish()
	}
}

// Write makes fpRunState the io.Writer of a FromWriter sink.
func (st *fpRunState) Write(p []byte) (int, error) {
	if due, n := st.take(p); due {
		return n, errFpSink
	}
	return len(p), nil
}

// fpOutcome is what the script should lead to.
type fpOutcome struct {
	want       []error // acceptable errors; nil entry: success
	readerAt   int     // the read (1-based position) of the first fault on the reading side; 0: none
	data       []byte  // the data of the reads up to that fault, or all
	sinkBefore bool    // the sink's byte is in data
}

func fpExpect(sc fpScript) fpOutcome {
	var o fpOutcome
	pos := 0
	readerErr := error(nil)
	sinkRead := 0 // the read whose data holds the sink's byte
	var readerHook int
	readerEnds := false // the fault's read is an EOF of the last source
scan:
	for si, reads := range sc.sources {
		for _, r := range reads {
			pos++
			o.data = append(o.data, r.data...)
			if sc.failFrom >= 0 && sinkRead == 0 && len(o.data) > sc.failFrom {
				sinkRead = pos
			}
			switch {
			case r.hook == 1:
				readerErr = errFpCancel
			case r.hook == 2:
				readerErr = stream.ErrPrematureClose
			case r.hook == 3:
				readerErr = errFpDestroy
			case r.kind == fpErr || r.kind == fpErrData:
				readerErr = errFpRead
			}
			if readerErr != nil {
				o.readerAt = pos
				readerHook = r.hook
				readerEnds = si == len(sc.sources)-1 && (r.kind == fpDataEOF || r.kind == fpNext)
				break scan
			}
			if r.kind == fpDataEOF || r.kind == fpNext {
				break
			}
		}
	}
	o.sinkBefore = sinkRead > 0
	switch {
	case readerErr == nil && !o.sinkBefore:
		o.want = []error{nil}
	case readerErr == nil:
		o.want = []error{errFpSink}
	case !o.sinkBefore:
		o.want = []error{readerErr}
	case sc.sink != 0:
		// The sink completes on another goroutine: either may be first.
		o.want = []error{errFpSink, readerErr}
	case sinkRead < o.readerAt:
		o.want = []error{errFpSink}
	case readerHook == 0:
		// A read error with data: the data is written, and fails, first.
		o.want = []error{errFpSink}
	case readerHook == 1:
		// ctx cancelled in the read whose data fails the sink: Pipeline
		// may still write it (its select), and the context's goroutine
		// races with the sink's failure.
		o.want = []error{errFpSink, readerErr}
	default:
		// dst destroyed in that read: its data is never written.
		o.want = []error{readerErr}
	}
	if readerHook == 1 && readerEnds && !o.sinkBefore {
		// ctx cancelled inside the Read that returns the last EOF:
		// Pipeline has every byte and ends dst at once; the context's
		// goroutine destroys dst only if it gets there before dst has
		// finished ("A ctx done while dst was finishing counts only if it
		// destroyed dst first").
		o.want = append(o.want, nil)
	}
	return o
}

func fpRun(t *testing.T, sc fpScript) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	st := &fpRunState{sc: sc, cancel: cancel}
	opts := stream.Options{HighWaterMark: sc.hwm}
	if sc.sink == 2 {
		st.dst = stream.FromWriter(st, opts)
	} else {
		st.dst = stream.NewWritable(st.write, opts)
	}
	var srcs []io.Reader
	var sources []*fpSource
	for i, reads := range sc.sources {
		s := &fpSource{run: st, index: i, reads: reads}
		sources = append(sources, s)
		if sc.closers[i] {
			srcs = append(srcs, s)
		} else {
			srcs = append(srcs, readerOnly{s})
		}
	}
	o := fpExpect(sc)

	err := stream.Pipeline(ctx, st.dst, srcs...)
	closed := isClosed(st.dst.Done())
	finished := stream.Finished(context.Background(), st.dst)
	synctest.Wait()

	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\nscript %+v\nPipeline: %v; Finished: %v; want one of %v", fmt.Sprintf(format, args...), sc, err, finished, o.want)
	}
	if !closed {
		fail("Pipeline returned before dst closed")
	}
	match := -1
	for i, w := range o.want {
		if (w == nil && err == nil) || (w != nil && errors.Is(err, w)) {
			match = i
		}
	}
	if match < 0 {
		fail("unexpected error")
	}
	// Finished reports dst's first error: Pipeline's, unless two faults
	// raced (then either).
	agrees := func(w error) bool {
		switch {
		case w == nil:
			return finished == nil
		case errors.Is(w, stream.ErrPrematureClose):
			return errors.Is(finished, stream.ErrPrematureClose) && st.dst.Err() == nil
		default:
			return errors.Is(finished, w) && errors.Is(st.dst.Err(), w)
		}
	}
	if len(o.want) == 1 && !agrees(o.want[0]) {
		fail("Finished or dst.Err disagree")
	}
	if len(o.want) > 1 && !agrees(o.want[0]) && !agrees(o.want[1]) {
		fail("Finished or dst.Err report neither fault")
	}
	if errors.Is(o.want[match], errFpCancel) && !errors.Is(err, context.Cause(ctx)) {
		fail("Pipeline's error is not context.Cause(ctx)")
	}

	st.mu.Lock()
	pos, late, got := st.pos, st.late, bytes.Clone(st.got)
	st.mu.Unlock()
	if o.readerAt > 0 && pos > o.readerAt {
		fail("read %d of the script after the fault at read %d", pos, o.readerAt)
	}
	if late > pfMaxReadsAfter {
		fail("%d Read calls started after dst was destroyed", late)
	}
	for i, s := range sources {
		want := int32(0)
		if sc.closers[i] {
			want = 1
		}
		if s.closes.Load() != want {
			fail("source %d closed %d times, want %d", i, s.closes.Load(), want)
		}
	}
	if !bytes.HasPrefix(o.data, got) {
		fail("the sink got %d bytes that are not a prefix of the data", len(got))
	}
	if err == nil && !bytes.Equal(o.data, got) {
		fail("success, but the sink got %d of %d bytes", len(got), len(o.data))
	}
}
