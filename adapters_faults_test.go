package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// Fault injection for the adapters (issue 5, "Adapters"): writers that
// write short, block forever (with and without a write deadline), are
// reset by their TCP peer, fail to flush, or fail to close. For each, the
// error must reach the write callbacks, Err, OnError (once), Close and
// Finished; nothing after the fault may be reported as written; no
// goroutine may be left once Done is closed, except where a writer that
// can be interrupted neither by a deadline nor by Close keeps it (the
// documented case; see TestAdapterFaultBlockedWriteWithoutDeadline).
// Helpers are prefixed af to keep out of the other files' way.

const (
	afChunks    = 50 // writes in a short-write script
	afChunkSize = 64 // bytes per write
)

// afChunk is write i of a script: afChunkSize bytes of value i.
func afChunk(i int) []byte { return bytes.Repeat([]byte{byte(i)}, afChunkSize) }

// afShortWriter accepts writes until it holds limit bytes; the write that
// would cross limit is short (n < len(p), nil error), as a writer that
// breaks the io.Writer contract returns. It counts the Write calls made
// after that one.
type afShortWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	short bool
	after int
}

func (s *afShortWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.short {
		s.after++
		s.buf.Write(p)
		return len(p), nil
	}
	if s.buf.Len()+len(p) > s.limit {
		n := s.limit - s.buf.Len()
		s.buf.Write(p[:n])
		s.short = true
		return n, nil
	}
	s.buf.Write(p)
	return len(p), nil
}

func (s *afShortWriter) state() (written []byte, after int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes()), s.after
}

// afShortConn is an afShortWriter posing as a net.Conn, so that the adapter
// sends its batches with one net.Buffers.WriteTo. Only Write and
// SetWriteDeadline are called.
type afShortConn struct {
	net.Conn
	*afShortWriter
}

func (c afShortConn) Write(p []byte) (int, error)      { return c.afShortWriter.Write(p) }
func (c afShortConn) SetWriteDeadline(time.Time) error { return nil }

// afOutcome is what a stream reported once closed.
type afOutcome struct {
	cbErrs   []error // per write
	cbCalls  []int
	errors   []error // every error OnError got
	events   []string
	err      error // Err()
	closeErr error // Close()
	finished error // Finished()
}

// afWriteScript writes n chunks (chunk(i)) with callbacks through mode,
// then Closes w and collects what it reported.
//
//   - "serial": each write waits for its callback (one write per sink call);
//   - "burst": every write at once (the adapter batches what piles up);
//   - "corked": every write corked, then one batch.
func afWriteScript(t *testing.T, w *stream.Writable, n int, chunk func(int) []byte, mode string) afOutcome {
	t.Helper()
	var mu sync.Mutex
	o := afOutcome{cbErrs: make([]error, n), cbCalls: make([]int, n)}
	w.OnFinish(func() { mu.Lock(); o.events = append(o.events, "finish"); mu.Unlock() })
	w.OnError(func(err error) {
		mu.Lock()
		o.errors = append(o.errors, err)
		o.events = append(o.events, "error")
		mu.Unlock()
	})
	w.OnClose(func() { mu.Lock(); o.events = append(o.events, "close"); mu.Unlock() })
	called := make(chan int, n)
	if mode == "corked" {
		w.Cork()
	}
	for i := range n {
		w.WriteChunk(chunk(i), func(err error) {
			mu.Lock()
			o.cbErrs[i] = err
			o.cbCalls[i]++
			mu.Unlock()
			called <- i
		})
		if mode == "serial" {
			recvWithin(t, called, "the write's callback")
		}
	}
	if mode == "corked" {
		w.Uncork()
	}
	o.closeErr = w.Close()
	rest := n
	if mode == "serial" {
		rest = 0
	}
	for range rest {
		recvWithin(t, called, "every write's callback")
	}
	o.err = w.Err()
	o.finished = stream.Finished(context.Background(), w)
	mu.Lock()
	defer mu.Unlock()
	o.events = append([]string(nil), o.events...)
	o.errors = append([]error(nil), o.errors...)
	return o
}

// afCheckFailed checks a stream that failed with want: each callback once;
// those that got nil are a prefix of the writes (at most okMax of them);
// the others got want; Err, Close, Finished and the one "error" report it;
// no "finish". It returns how many writes were reported written.
func afCheckFailed(t *testing.T, o afOutcome, want error, okMax int) int {
	t.Helper()
	ok := firstError(o.cbErrs)
	for i := range o.cbErrs {
		if !assert.Equal(t, 1, o.cbCalls[i], "write %d: callback calls", i) {
			return ok
		}
		if i >= ok && !assert.ErrorIs(t, o.cbErrs[i], want, "write %d, at or after the first failed one (%d)", i, ok) {
			return ok
		}
	}
	assert.LessOrEqual(t, ok, okMax, "writes reported written")
	assert.ErrorIs(t, o.err, want, "Err")
	assert.ErrorIs(t, o.closeErr, want, "Close")
	assert.ErrorIs(t, o.finished, want, "Finished")
	if assert.Len(t, o.errors, 1, "\"error\" fires once") {
		assert.Equal(t, o.err, o.errors[0], "OnError got Err()")
	}
	assert.Equal(t, []string{"error", "close"}, o.events, "events")
	return ok
}

func TestAdapterFaultShortWrite(t *testing.T) {
	for _, conn := range []bool{false, true} {
		for _, mode := range []string{"serial", "burst", "corked"} {
			name := map[bool]string{false: "writer", true: "net.Conn"}[conn] + "/" + mode
			t.Run(name, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				maxAfter := 0
				for k := range afChunks {
					// The write of chunk k is short: half of it is written.
					sw := &afShortWriter{limit: k*afChunkSize + afChunkSize/2}
					var wr io.Writer = sw
					if conn {
						wr = afShortConn{afShortWriter: sw}
					}
					w := stream.FromWriter(wr, stream.Options{HighWaterMark: 256})
					o := afWriteScript(t, w, afChunks, afChunk, mode)
					okMax := k
					ok := afCheckFailed(t, o, io.ErrShortWrite, okMax)
					if mode == "serial" {
						assert.Equal(t, k, ok, "k=%d: the writes before the short one were reported written", k)
					}
					written, after := sw.state()
					var want []byte
					for i := range ok {
						want = append(want, afChunk(i)...)
					}
					if !assert.True(t, bytes.HasPrefix(written, want), "k=%d: the writes reported written reached the writer, in order", k) {
						return
					}
					if conn {
						// net.Buffers.WriteTo goes on with the next buffers
						// of its batch after a short write, as it does for
						// every writer that is not a socket: those bytes
						// reach the writer, but none is reported written.
						maxAfter = max(maxAfter, after)
					} else {
						assert.Zero(t, after, "k=%d: no Write after the short one", k)
					}
				}
				if conn {
					t.Logf("Write calls after the short one in a net.Buffers batch: at most %d", maxAfter)
				}
			})
		}
	}
	t.Run("Write", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		sw := &afShortWriter{limit: 10_000}
		w := stream.FromWriter(sw, stream.Options{HighWaterMark: 1024})
		var err error
		for i := 0; err == nil; i++ {
			require.Less(t, i, 1000, "Write kept succeeding after the short write")
			var n int
			n, err = w.Write(afChunk(i))
			if err != nil {
				assert.Less(t, n, afChunkSize, "a Write that fails accepted less than its input")
			}
		}
		assert.ErrorIs(t, err, io.ErrShortWrite, "Write after the short write")
		assert.ErrorIs(t, w.Close(), io.ErrShortWrite, "Close")
		assert.ErrorIs(t, stream.Finished(context.Background(), w), io.ErrShortWrite, "Finished")
		_, after := sw.state()
		assert.Zero(t, after, "no Write after the short one")
	})
	t.Run("Pipeline", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		data := randomBytes(1<<20, 11)
		for _, limit := range []int{0, 1, 4096, 300_000, 1<<20 - 1} {
			sw := &afShortWriter{limit: limit}
			src := &closeCounter{r: bytes.NewReader(data)}
			dst := stream.FromWriter(sw, stream.Options{})
			err := stream.Pipeline(context.Background(), dst, src)
			assert.ErrorIs(t, err, io.ErrShortWrite, "limit %d: Pipeline", limit)
			assert.ErrorIs(t, stream.Finished(context.Background(), dst), io.ErrShortWrite, "limit %d: Finished", limit)
			assert.Equal(t, int32(1), src.closes.Load(), "limit %d: the source was closed once", limit)
			written, after := sw.state()
			assert.Zero(t, after, "limit %d: no Write after the short one", limit)
			assert.True(t, bytes.Equal(data[:len(written)], written), "limit %d: the writer got a prefix of the source", limit)
		}
	})
}

// Writers that block forever and take a write deadline, or, for
// FromWriteCloser, whose Close unblocks a Write: the stream's Destroy, or
// the cancellation of Options.Context, interrupts the write.

// afBlocked is a writer on which a write of chunk bytes blocks until the
// other end reads.
type afBlocked struct {
	w       io.WriteCloser
	chunk   int
	drain   func() // starts reading the other end, to EOF
	drained chan struct{}
	close   func()
	// ownedOnly: the write can be interrupted only by closing the writer,
	// which FromWriter never does (see the test without deadline).
	ownedOnly bool
	writeErr  error // what the interrupted Write returns
}

func afBlockedKinds(t *testing.T) map[string]func() afBlocked {
	return map[string]func() afBlocked{
		"net.Pipe": func() afBlocked {
			a, b := net.Pipe()
			return afDrainable(a, b, 1024, func() { a.Close(); b.Close() })
		},
		"TCP": func() afBlocked {
			client, server := tcpPair(t)
			require.NoError(t, client.SetWriteBuffer(64<<10), "shrinking the send buffer")
			require.NoError(t, server.SetReadBuffer(64<<10), "shrinking the receive buffer")
			return afDrainable(client, server, 8<<20, func() { client.Close(); server.Close() })
		},
		"os.Pipe": func() afBlocked {
			pr, pw, err := os.Pipe()
			require.NoError(t, err, "os.Pipe")
			return afDrainable(pw, pr, 1<<20, func() { pw.Close(); pr.Close() })
		},
		"io.Pipe": func() afBlocked {
			// No deadline: FromWriteCloser closes it to unblock the write
			// (bug 7).
			pr, pw := io.Pipe()
			b := afDrainable(pw, pr, 1, func() { pw.Close(); pr.Close() })
			b.ownedOnly, b.writeErr = true, io.ErrClosedPipe
			return b
		},
	}
}

func afDrainable(w io.WriteCloser, r io.Reader, chunk int, closeAll func()) afBlocked {
	b := afBlocked{w: w, chunk: chunk, drained: make(chan struct{}), close: closeAll, writeErr: os.ErrDeadlineExceeded}
	b.drain = func() {
		go func() {
			defer close(b.drained)
			io.Copy(io.Discard, r)
		}()
	}
	return b
}

func TestAdapterFaultBlockedWriteWithDeadline(t *testing.T) {
	errCause := errors.New("operator said stop")
	faults := []struct {
		desc         string
		fault        func(w *stream.Writable, cancel context.CancelCauseFunc)
		wantErr      error // Err(); nil: none
		wantFinished error
	}{
		{"Destroy(nil)", func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(nil) }, nil, stream.ErrPrematureClose},
		{"Destroy(err)", func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(errTest) }, errTest, errTest},
		{"ctx cancelled", func(_ *stream.Writable, cancel context.CancelCauseFunc) { cancel(nil) }, context.Canceled, context.Canceled},
		{"ctx cancelled with a cause", func(_ *stream.Writable, cancel context.CancelCauseFunc) { cancel(errCause) }, errCause, errCause},
	}
	var worst time.Duration
	for kind, newBlocked := range afBlockedKinds(t) {
		for _, owned := range []bool{false, true} {
			for _, f := range faults {
				name := kind + "/" + map[bool]string{false: "FromWriter", true: "FromWriteCloser"}[owned] + "/" + f.desc
				t.Run(name, func(t *testing.T) {
					defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
					b := newBlocked()
					defer b.close()
					if b.ownedOnly && !owned {
						t.Skip("FromWriter cannot unblock a writer without a deadline: see TestAdapterFaultBlockedWriteWithoutDeadline")
					}
					ctx, cancel := context.WithCancelCause(context.Background())
					defer cancel(nil)
					opts := stream.Options{Context: ctx, HighWaterMark: 1024}
					var w *stream.Writable
					if owned {
						w = stream.FromWriteCloser(b.w, opts)
					} else {
						w = stream.FromWriter(b.w, opts)
					}
					rec := streamtest.Record(w)
					w.WriteChunk(make([]byte, b.chunk), rec.Callback("stuck"))
					w.WriteChunk([]byte("buffered"), rec.Callback("buffered"))
					require.Eventually(t, func() bool { return w.State().Writing }, waitTimeout, millisecond, "the write is in flight")

					start := time.Now()
					f.fault(w, cancel)
					requireClosed(t, w, f.desc+" with a write blocked on "+kind)
					worst = max(worst, time.Since(start))

					stuck := rec.Err("stuck")
					assert.ErrorIs(t, stuck, stream.ErrDestroyed, "the interrupted write's callback")
					assert.ErrorIs(t, stuck, b.writeErr, "the interrupted write's callback has the writer's error")
					if f.wantErr != nil {
						assert.ErrorIs(t, stuck, f.wantErr, "the interrupted write's callback has the cause")
					}
					assert.ErrorIs(t, rec.Err("buffered"), afBufferedErr(f.wantErr), "the buffered write's callback")
					if f.wantErr == nil {
						assert.NoError(t, w.Err(), "Err")
						assert.NotContains(t, afEvents(rec.Log()), "error", "no \"error\"")
					} else {
						assert.ErrorIs(t, w.Err(), f.wantErr, "Err")
						assert.ErrorIs(t, w.Close(), f.wantErr, "Close")
					}
					assert.ErrorIs(t, stream.Finished(context.Background(), w), f.wantFinished, "Finished")
					log := rec.Log()
					assert.Equal(t, "close", log[len(log)-1], "close comes last: %q", log)

					if owned {
						_, err := b.w.Write([]byte("after"))
						assert.Error(t, err, "FromWriteCloser closed the writer")
						return
					}
					// FromWriter leaves the writer usable: no deadline left.
					b.drain()
					_, err := b.w.Write([]byte("after"))
					assert.NoError(t, err, "the writer takes writes after the stream is gone")
					b.w.Close()
					recvWithin(t, b.drained, "draining the other end")
				})
			}
		}
	}
	t.Logf("Destroy or cancel to \"close\", with a write blocked: at worst %v", worst)
}

// afBlockingWriter blocks every Write until the test releases it; it takes
// no write deadline, and its Close does not unblock a Write (like a
// compressor over a stuck connection). It counts its Close calls.
type afBlockingWriter struct {
	release chan struct{}
	writing chan struct{} // closed when the first Write starts
	once    sync.Once
	closes  atomic.Int32
}

func newAfBlockingWriter() *afBlockingWriter {
	return &afBlockingWriter{release: make(chan struct{}), writing: make(chan struct{})}
}

func (b *afBlockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.writing) })
	<-b.release
	return len(p), nil
}

func (b *afBlockingWriter) Close() error {
	b.closes.Add(1)
	return nil
}

// A writer that blocks forever and takes no deadline cannot be
// interrupted: Destroy and the cancellation of Options.Context destroy the
// stream at once (State().Destroyed, buffered writes fail), but "close"
// and Done wait for the write to return, as the adapters document.
// Options.StallTimeout is the tool: the write is given up with ErrStalled
// after StallTimeout, then the Destroy step, which the adapter runs on the
// goroutine still blocked in Write, stalls in turn, so Done closes at most
// 2 x StallTimeout after the write began. The adapter's goroutine stays in
// Write until the writer returns. FromWriteCloser closes the writer at once
// when the stream is destroyed or the write stalls, which unblocks an
// io.PipeWriter (bug 7; see the test with deadlines) but not this writer,
// and never closes it twice. Runs in a synctest bubble: the times are
// exact.
func TestAdapterFaultBlockedWriteWithoutDeadline(t *testing.T) {
	const stall = time.Second
	errCause := errors.New("operator said stop")
	tests := []struct {
		desc       string
		stall      time.Duration
		fault      func(w *stream.Writable, cancel context.CancelCauseFunc)
		wantErr    error // Err() once closed; nil: none
		wantStuck  error // the blocked write's callback
		wantFinish error // Finished
	}{
		{
			desc:       "Destroy(nil), no StallTimeout: open until the write returns",
			fault:      func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(nil) },
			wantErr:    nil,
			wantStuck:  nil, // the write succeeded in the end
			wantFinish: stream.ErrPrematureClose,
		},
		{
			desc:       "ctx cancelled, no StallTimeout: open until the write returns",
			fault:      func(_ *stream.Writable, cancel context.CancelCauseFunc) { cancel(errCause) },
			wantErr:    errCause,
			wantStuck:  nil,
			wantFinish: errCause,
		},
		{
			desc:       "StallTimeout alone",
			stall:      stall,
			fault:      func(*stream.Writable, context.CancelCauseFunc) {},
			wantErr:    stream.ErrStalled,
			wantStuck:  stream.ErrStalled,
			wantFinish: stream.ErrStalled,
		},
		{
			// Destroy(nil) gave the stream no error: the stall's is the first.
			desc:       "StallTimeout, Destroy(nil)",
			stall:      stall,
			fault:      func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(nil) },
			wantErr:    stream.ErrStalled,
			wantStuck:  stream.ErrStalled,
			wantFinish: stream.ErrStalled,
		},
		{
			desc:       "StallTimeout, Destroy(err)",
			stall:      stall,
			fault:      func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(errTest) },
			wantErr:    errTest,
			wantStuck:  stream.ErrStalled,
			wantFinish: errTest,
		},
		{
			desc:       "StallTimeout, ctx cancelled",
			stall:      stall,
			fault:      func(_ *stream.Writable, cancel context.CancelCauseFunc) { cancel(errCause) },
			wantErr:    errCause,
			wantStuck:  stream.ErrStalled,
			wantFinish: errCause,
		},
	}
	for _, tt := range tests {
		for _, owned := range []bool{false, true} {
			name := map[bool]string{false: "FromWriter", true: "FromWriteCloser"}[owned] + "/" + tt.desc
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					bw := newAfBlockingWriter()
					ctx, cancel := context.WithCancelCause(context.Background())
					defer cancel(nil)
					opts := stream.Options{Context: ctx, StallTimeout: tt.stall}
					var w *stream.Writable
					if owned {
						w = stream.FromWriteCloser(bw, opts)
					} else {
						w = stream.FromWriter(bw, opts)
					}
					rec := streamtest.Record(w)
					start := time.Now()
					w.WriteChunk([]byte("blocked"), rec.Callback("stuck"))
					w.WriteChunk([]byte("buffered"), rec.Callback("buffered"))
					<-bw.writing
					tt.fault(w, cancel)
					synctest.Wait()

					if tt.stall == 0 {
						// Nothing can interrupt the write: the stream is
						// destroyed but stays open, for as long as it takes.
						time.Sleep(time.Hour)
						synctest.Wait()
						st := w.State()
						assert.True(t, st.Destroyed, "the stream is destroyed at once")
						assert.True(t, st.Writing, "the write is still in flight")
						assert.False(t, isClosed(w.Done()), "Done stays open while the write is blocked")
						// Callbacks keep their order: the buffered write's
						// waits for the blocked one's.
						assert.Equal(t, []string{}, afCallbacks(rec.Log()), "callbacks while the write is blocked")
						if owned {
							assert.Equal(t, int32(1), bw.closes.Load(), "FromWriteCloser closed the writer at the Destroy, to try to unblock it")
						}
						close(bw.release)
						<-w.Done()
					} else {
						<-w.Done()
						took := time.Since(start)
						assert.GreaterOrEqual(t, took, tt.stall, "Done closes once the write stalled")
						assert.LessOrEqual(t, took, 2*tt.stall, "Done closes at most 2 x StallTimeout after the write began")
						select {
						case <-bw.release:
							assert.Fail(t, "the writer was released")
						default:
						}
						// The adapter's goroutine is still in Write: only
						// the writer returning frees it.
						if owned {
							assert.Equal(t, int32(1), bw.closes.Load(), "FromWriteCloser closed the writer when the write stalled")
						}
						close(bw.release)
					}
					synctest.Wait()
					if tt.wantStuck == nil {
						assert.NoError(t, rec.Err("stuck"), "the blocked write's callback, once it returned")
					} else {
						assert.ErrorIs(t, rec.Err("stuck"), tt.wantStuck, "the blocked write's callback")
					}
					assert.ErrorIs(t, rec.Err("buffered"), afBufferedErr(tt.wantErr), "the buffered write's callback")
					if tt.wantErr == nil {
						assert.NoError(t, w.Err(), "Err")
					} else {
						assert.ErrorIs(t, w.Err(), tt.wantErr, "Err")
					}
					assert.ErrorIs(t, stream.Finished(context.Background(), w), tt.wantFinish, "Finished")
					if owned {
						assert.Equal(t, int32(1), bw.closes.Load(), "FromWriteCloser closed the writer once")
					} else {
						assert.Zero(t, bw.closes.Load(), "FromWriter never closes the writer")
					}
					// Returning from the bubble checks that every goroutine
					// of the stream has ended.
				})
			})
		}
	}
}

// A TCP peer that resets the connection (SetLinger(0) then Close sends a
// RST) while the stream writes: after it has read some of the data, with
// writes flowing, and while a write is blocked on a peer that never read.
// The reset reaches the producer's Write, Err, the one "error", Close and
// Finished; every callback runs once; no goroutine is left. Pipeline into
// such a stream returns the reset too.
func TestAdapterFaultTCPReset(t *testing.T) {
	isReset := func(err error) bool {
		// The write that meets the RST gets ECONNRESET; a write after it,
		// EPIPE.
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	}
	for _, readFirst := range []int{1 << 20, 0} {
		for _, owned := range []bool{false, true} {
			name := fmt.Sprintf("peer reads %d bytes then resets/%s", readFirst,
				map[bool]string{false: "FromWriter", true: "FromWriteCloser"}[owned])
			t.Run(name, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				client, server := tcpPair(t)
				defer client.Close()
				require.NoError(t, client.SetWriteBuffer(64<<10), "shrinking the send buffer")
				require.NoError(t, server.SetReadBuffer(64<<10), "shrinking the receive buffer")
				var w *stream.Writable
				if owned {
					w = stream.FromWriteCloser(client, stream.Options{HighWaterMark: 64 << 10})
				} else {
					w = stream.FromWriter(client, stream.Options{HighWaterMark: 64 << 10})
				}
				var errorsSeen []error
				var mu sync.Mutex
				w.OnError(func(err error) { mu.Lock(); errorsSeen = append(errorsSeen, err); mu.Unlock() })
				reset := make(chan struct{})
				go func() {
					defer close(reset)
					_, _ = io.CopyN(io.Discard, server, int64(readFirst))
					if readFirst == 0 {
						// Let the client's write block on the full socket
						// (the producer's loop fails the test if it never
						// does).
						for !w.State().NeedDrain {
							time.Sleep(millisecond)
						}
					}
					_ = server.SetLinger(0)
					_ = server.Close()
				}()
				cbs := make(chan error, 1<<12)
				chunks := 0
				var werr error
				for i := 0; werr == nil; i++ {
					require.Less(t, i, 1<<12, "writes kept succeeding after the reset")
					if i%2 == 0 {
						_, werr = w.Write(make([]byte, 16<<10))
						continue
					}
					chunks++
					if !w.WriteChunk(make([]byte, 16<<10), func(err error) { cbs <- err }) {
						<-w.Ready()
						werr = w.Err()
					}
				}
				recvWithin(t, reset, "the peer's reset")
				assert.True(t, isReset(werr), "the producer gets the reset: %v", werr)
				closeErr := w.Close()
				assert.True(t, isReset(closeErr), "Close reports the reset: %v", closeErr)
				assert.Equal(t, w.Err(), closeErr, "Err is Close's error")
				assert.Equal(t, closeErr, stream.Finished(context.Background(), w), "Finished")
				mu.Lock()
				if assert.Len(t, errorsSeen, 1, "\"error\" fires once") {
					assert.Equal(t, closeErr, errorsSeen[0], "OnError got the reset")
				}
				mu.Unlock()
				// Callbacks, in order (a late one may come after "close"):
				// those that got nil come first, then errors.
				failed := false
				for range chunks {
					if err := recvWithin(t, cbs, "every write's callback"); err != nil {
						failed = true
					} else {
						assert.False(t, failed, "a callback got nil after one got an error")
					}
				}
			})
		}
	}
	t.Run("Pipeline", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		client, server := tcpPair(t)
		defer client.Close()
		go func() {
			_, _ = io.CopyN(io.Discard, server, 1<<20)
			_ = server.SetLinger(0)
			_ = server.Close()
		}()
		src := &closeCounter{r: &zeroReader{left: 1 << 30}}
		err := stream.Pipeline(context.Background(), stream.FromWriteCloser(client, stream.Options{}), src)
		assert.True(t, isReset(err), "Pipeline returns the reset: %v", err)
		assert.Equal(t, int32(1), src.closes.Load(), "the source was closed once")
		assert.Less(t, src.read.Load(), int64(64<<20), "Pipeline stopped reading soon after the reset")
	})
}

var errAfFlush = errors.New("flush failed")

// afFlushWriter keeps what it is given; its Flush fails from the failAt-th
// call on (1-based; 0: never), like a bufio.Writer whose error is sticky.
type afFlushWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	flushes int
	failAt  int
}

func (f *afFlushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.Write(p)
}

func (f *afFlushWriter) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
	if f.failAt > 0 && f.flushes >= f.failAt {
		return errAfFlush
	}
	return nil
}

// afFailingWriter fails every write from its limit-th byte on.
type afFailingWriter struct {
	n, limit int
}

func (f *afFailingWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.limit {
		k := f.limit - f.n
		f.n = f.limit
		return k, errTest
	}
	f.n += len(p)
	return len(p), nil
}

// A writer whose Flush fails (an http.Flusher cannot fail; a Flush() error
// can): the error fails the write that was flushed and every later one,
// and reaches Err, OnError, Close, Finished and Pipeline.
func TestAdapterFaultFlushFails(t *testing.T) {
	t.Run("Flush() error fails at k", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		for k := range 10 {
			fw := &afFlushWriter{failAt: k + 1}
			w := stream.FromWriter(fw, stream.Options{})
			o := afWriteScript(t, w, 10, afChunk, "serial")
			ok := afCheckFailed(t, o, errAfFlush, k)
			assert.Equal(t, k, ok, "k=%d: the writes before the failed flush were reported written", k)
		}
	})
	t.Run("bufio.Writer over a failing writer", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		for _, limit := range []int{0, 100, 2000} {
			bw := bufio.NewWriterSize(&afFailingWriter{limit: limit}, 4096)
			w := stream.FromWriter(bw, stream.Options{})
			o := afWriteScript(t, w, afChunks, afChunk, "burst")
			afCheckFailed(t, o, errTest, limit/afChunkSize)
		}
	})
	t.Run("Pipeline", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		fw := &afFlushWriter{failAt: 3}
		src := &closeCounter{r: iotestHalf(randomBytes(1<<20, 12))}
		err := stream.Pipeline(context.Background(), stream.FromWriter(fw, stream.Options{}), src)
		assert.ErrorIs(t, err, errAfFlush, "Pipeline returns the flush error")
		assert.Equal(t, int32(1), src.closes.Load(), "the source was closed once")
	})
}

// iotestHalf reads p in pieces of at most 64 KiB, so that Pipeline makes
// several writes.
func iotestHalf(p []byte) io.Reader { return &afPieceReader{p: p, piece: 64 << 10} }

type afPieceReader struct {
	p     []byte
	piece int
}

func (r *afPieceReader) Read(b []byte) (int, error) {
	if len(r.p) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), r.piece)], r.p)
	r.p = r.p[n:]
	return n, nil
}

// afCloseWriter is a WriteCloser whose writes fail with writeErr (nil: they
// succeed) and whose Close fails with closeErr; it counts Close calls.
type afCloseWriter struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	writeErr error
	closeErr error
	closes   atomic.Int32
}

func (c *afCloseWriter) Write(p []byte) (int, error) {
	if c.writeErr != nil {
		return 0, c.writeErr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *afCloseWriter) Close() error {
	c.closes.Add(1)
	return c.closeErr
}

// FromWriteCloser whose Close fails: after a clean finish its error is the
// stream's ("finish", then "error" and "close"); after another error the
// first error wins and Close's is dropped (FromWriteCloser: "An error from
// Close becomes the stream's error if it had none"); after Destroy(nil) the
// stream had none, so it is Close's. The writer is closed exactly once in
// every case.
func TestAdapterFaultCloseFails(t *testing.T) {
	errClose := errors.New("close failed")
	errWrite := errors.New("write failed")
	errFinal := errors.New("final failed")
	errCause := errors.New("operator said stop")
	tests := []struct {
		desc       string
		writeErr   error
		final      error
		act        func(w *stream.Writable, cancel context.CancelCauseFunc)
		wantErr    error
		wantEvents []string
	}{
		{
			desc:       "clean finish",
			act:        func(w *stream.Writable, _ context.CancelCauseFunc) { w.End() },
			wantErr:    errClose,
			wantEvents: []string{"finish", "error close failed", "close"},
		},
		{
			desc:       "write error",
			writeErr:   errWrite,
			act:        func(w *stream.Writable, _ context.CancelCauseFunc) { w.End() },
			wantErr:    errWrite,
			wantEvents: []string{"error write failed", "close"},
		},
		{
			desc:       "Final fails",
			final:      errFinal,
			act:        func(w *stream.Writable, _ context.CancelCauseFunc) { w.End() },
			wantErr:    errFinal,
			wantEvents: []string{"error final failed", "close"},
		},
		{
			desc:       "Destroy(err)",
			act:        func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(errTest) },
			wantErr:    errTest,
			wantEvents: []string{"error test error", "close"},
		},
		{
			desc:       "Destroy(nil)",
			act:        func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(nil) },
			wantErr:    errClose,
			wantEvents: []string{"error close failed", "close"},
		},
		{
			desc:       "ctx cancelled",
			act:        func(_ *stream.Writable, cancel context.CancelCauseFunc) { cancel(errCause) },
			wantErr:    errCause,
			wantEvents: []string{"error operator said stop", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			cw := &afCloseWriter{writeErr: tt.writeErr, closeErr: errClose}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			opts := stream.Options{Context: ctx}
			if tt.final != nil {
				opts.Final = func(done stream.Callback) { done(tt.final) }
			}
			w := stream.FromWriteCloser(cw, opts)
			rec := streamtest.Record(w)
			w.WriteChunk([]byte("payload"), rec.Callback("write"))
			rec.WaitFor(t, "cb write "+streamtest.Label(tt.writeErr))
			tt.act(w, cancel)
			// The context destroys the stream from a goroutine of its own:
			// wait for it, or Close's End could finish the stream first.
			require.Eventually(t, func() bool { return w.State().Destroyed || w.State().Ended }, waitTimeout, millisecond, "the act took effect")
			closeErr := w.Close()
			assert.ErrorIs(t, closeErr, tt.wantErr, "Close")
			if tt.wantErr != errClose {
				assert.NotErrorIs(t, closeErr, errClose, "Close's error is dropped after an earlier one")
			}
			assert.Equal(t, closeErr, w.Close(), "Close again")
			assert.Equal(t, closeErr, w.Err(), "Err")
			assert.Equal(t, closeErr, stream.Finished(context.Background(), w), "Finished")
			assert.Equal(t, tt.wantEvents, afEvents(rec.Log()), "events")
			assert.Equal(t, int32(1), cw.closes.Load(), "the writer was closed once")
		})
	}
}

// afBufferedErr is what the callback of a write still buffered when the
// stream is destroyed gets: the stream's error, or ErrDestroyed if it has
// none (decisions "Errors").
func afBufferedErr(streamErr error) error {
	if streamErr == nil {
		return stream.ErrDestroyed
	}
	return streamErr
}

// afEvents keeps the events of a Recorder log, dropping callbacks.
func afEvents(log []string) []string {
	var ev []string
	for _, e := range log {
		if !strings.HasPrefix(e, "cb ") {
			ev = append(ev, e)
		}
	}
	return ev
}

// afCallbacks keeps the callbacks of a Recorder log.
func afCallbacks(log []string) []string {
	cbs := []string{}
	for _, e := range log {
		if strings.HasPrefix(e, "cb ") {
			cbs = append(cbs, e)
		}
	}
	return cbs
}
