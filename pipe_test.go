package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// The interfaces DESIGN.md promises for the read end.
var (
	_ io.ReadCloser = (*stream.PipeReader)(nil)
	_ io.WriterTo   = (*stream.PipeReader)(nil)
)

// errBoom is the error the pipe tests destroy and close with.
var errBoom = errors.New("boom")

// readResult is what readAllAsync delivers.
type readResult struct {
	data []byte
	err  error
}

// readAllAsync reads r to the end on a new goroutine, with reads of at
// most size bytes, and delivers what it read and the error that ended it
// (nil at io.EOF).
func readAllAsync(r io.Reader, size int) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				ch <- readResult{got, nil}
				return
			}
			if err != nil {
				ch <- readResult{got, err}
				return
			}
		}
	}()
	return ch
}

// async2 runs fn on a new goroutine and delivers a function returning its
// results.
func async2(fn func() (int64, error)) <-chan func() (int64, error) {
	ch := make(chan func() (int64, error), 1)
	go func() {
		n, err := fn()
		ch <- func() (int64, error) { return n, err }
	}()
	return ch
}

// async runs fn on a new goroutine and delivers its error.
func async(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// newPipe makes a pipe whose ends are both closed at the end of the test.
func newPipe(t testing.TB, opts stream.Options) (*stream.PipeReader, *stream.Writable) {
	t.Helper()
	r, w := stream.Pipe(opts)
	streamtest.Cleanup(t, w)
	t.Cleanup(func() { r.Close() })
	return r, w
}

func TestPipeRoundTrip(t *testing.T) {
	r, w := newPipe(t, stream.Options{HighWaterMark: 64})
	got := readAllAsync(r, 7)
	var want bytes.Buffer
	for i := range 200 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		switch i % 3 {
		case 0:
			_, err := w.Write([]byte(line))
			require.NoError(t, err, "Write %d", i)
		case 1:
			_, err := w.WriteString(line)
			require.NoError(t, err, "WriteString %d", i)
		default:
			if !w.WriteChunk([]byte(line), nil) {
				streamtest.Recv(t, w.Ready(), "Ready after a false WriteChunk")
			}
		}
	}
	require.NoError(t, w.Close(), "Close of the write end")
	res := streamtest.Recv(t, got, "the reader to reach EOF")
	assert.NoError(t, res.err, "the reader ends at io.EOF")
	assert.Equal(t, want.String(), string(res.data), "the reader gets every byte, in order")
}

func TestPipeReadFrom(t *testing.T) {
	r, w := newPipe(t, stream.Options{HighWaterMark: 1 << 10})
	src := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
	got := readAllAsync(r, 1000)
	n, err := w.ReadFrom(bytes.NewReader(src))
	require.NoError(t, err, "ReadFrom")
	assert.Equal(t, int64(len(src)), n, "ReadFrom accepted everything")
	w.End()
	res := streamtest.Recv(t, got, "the reader to reach EOF")
	assert.NoError(t, res.err, "EOF")
	assert.Equal(t, src, res.data, "the bytes ReadFrom read")
}

// Bug of hand-made pipes: EOF sent when the writer closes, before the
// reader drained the buffer.
func TestPipeEOFOnlyAfterEverythingWasRead(t *testing.T) {
	r, w := newPipe(t, stream.Options{HighWaterMark: 1 << 20})
	var want []byte
	for i := range 100 {
		c := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		want = append(want, c...)
		assert.True(t, w.WriteChunk(c, nil), "under the mark: WriteChunk %d returns true", i)
	}
	w.End() // before the reader even started
	closed := async(w.Close)
	var got []byte
	buf := make([]byte, 3)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			assert.ErrorIs(t, err, io.EOF, "the read that ends the stream")
			break
		}
	}
	assert.Equal(t, want, got, "every byte came before EOF")
	assert.NoError(t, streamtest.Recv(t, closed, "the write end to close"), "Close of the write end")
	n, err := r.Read(buf)
	assert.Equal(t, 0, n, "nothing after EOF")
	assert.ErrorIs(t, err, io.EOF, "EOF again")
}

// Bug of hand-made pipes: a Write left blocked after the reader went away.
func TestPipeReaderCloseReleasesBlockedWriter(t *testing.T) {
	tests := []struct {
		desc  string
		close func(r *stream.PipeReader)
		want  error
	}{
		{desc: "Close", close: func(r *stream.PipeReader) { r.Close() }, want: io.ErrClosedPipe},
		{desc: "CloseWithError", close: func(r *stream.PipeReader) { r.CloseWithError(errBoom) }, want: errBoom},
		{desc: "CloseWithError(nil)", close: func(r *stream.PipeReader) { r.CloseWithError(nil) }, want: io.ErrClosedPipe},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, w := stream.Pipe(stream.Options{HighWaterMark: 16})
				var cbErr error
				w.WriteChunk(make([]byte, 16), func(err error) { cbErr = err })
				wrote := async(func() error { _, err := w.Write(make([]byte, 100)); return err })
				synctest.Wait()
				select {
				case err := <-wrote:
					t.Fatalf("Write returned %v on a full pipe nobody reads", err)
				default:
				}
				tt.close(r)
				err := <-wrote
				assert.ErrorIs(t, err, tt.want, "the blocked Write returns the reader's error")
				assert.ErrorIs(t, err, stream.ErrDestroyed, "and the write end is destroyed")
				assert.ErrorIs(t, w.Close(), tt.want, "Close of the write end")
				assert.ErrorIs(t, w.Err(), tt.want, "Err of the write end")
				assert.ErrorIs(t, cbErr, tt.want, "the unread chunk's callback gets the error")
				assert.ErrorIs(t, cbErr, stream.ErrDestroyed, "matching ErrDestroyed too")
				n, err := r.Read(make([]byte, 10))
				assert.Equal(t, 0, n, "nothing is read after Close")
				assert.ErrorIs(t, err, io.ErrClosedPipe, "a Read after Close")
			})
		})
	}
}

// Bug of hand-made pipes: a reader blocked on an empty pipe that nothing
// wakes when the other side closes.
func TestPipeCloseWakesBlockedReader(t *testing.T) {
	tests := []struct {
		desc  string
		close func(r *stream.PipeReader, w *stream.Writable)
		want  error // nil: io.EOF
	}{
		{desc: "End", close: func(_ *stream.PipeReader, w *stream.Writable) { w.End() }},
		{desc: "Destroy(err)", close: func(_ *stream.PipeReader, w *stream.Writable) { w.Destroy(errBoom) }, want: errBoom},
		{desc: "Destroy(nil)", close: func(_ *stream.PipeReader, w *stream.Writable) { w.Destroy(nil) }, want: stream.ErrDestroyed},
		{desc: "reader Close", close: func(r *stream.PipeReader, _ *stream.Writable) { r.Close() }, want: io.ErrClosedPipe},
	}
	for _, tt := range tests {
		for _, writeTo := range []bool{false, true} {
			name := tt.desc + "/Read"
			if writeTo {
				name = tt.desc + "/WriteTo"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					r, w := stream.Pipe(stream.Options{})
					var got bytes.Buffer
					read := async(func() error {
						if writeTo {
							_, err := r.WriteTo(&got)
							return err
						}
						res := <-readAllAsync(r, 10)
						got.Write(res.data)
						return res.err
					})
					w.WriteChunk([]byte("hello"), nil)
					synctest.Wait() // the reader read hello and waits for more
					tt.close(r, w)
					err := <-read
					if tt.want == nil {
						assert.NoError(t, err, "the reader reaches EOF")
					} else {
						assert.ErrorIs(t, err, tt.want, "the reader gets the error")
					}
					assert.Equal(t, "hello", got.String(), "what was written before")
					w.Destroy(nil)
					<-w.Done()
				})
			})
		}
	}
}

// Bug of hand-made pipes: Write keeps p, which the caller reuses.
func TestPipeWriteDoesNotRetainP(t *testing.T) {
	r, w := newPipe(t, stream.Options{HighWaterMark: 1 << 10})
	p := []byte("first")
	_, err := w.Write(p)
	require.NoError(t, err, "Write")
	copy(p, "XXXXX")
	_, err = w.Write(p)
	require.NoError(t, err, "second Write")
	copy(p, "YYYYY")
	w.End()
	res := streamtest.Recv(t, readAllAsync(r, 3), "the reader to reach EOF")
	assert.NoError(t, res.err, "EOF")
	assert.Equal(t, "firstXXXXX", string(res.data), "the bytes as they were at each Write")
}

// Bug of hand-made pipes: a writer ahead of its reader fills memory.
func TestPipeBoundsUnreadBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const hwm = 4 << 10
		r, w := stream.Pipe(stream.Options{HighWaterMark: hwm})
		src := bytes.Repeat([]byte("0123456789"), 10<<10) // 100 KiB, 25 marks
		wrote := async(func() error { _, err := w.Write(src); return err })
		synctest.Wait()
		st := w.State()
		assert.True(t, st.NeedDrain, "the writer is pushed back")
		assert.LessOrEqual(t, st.Length, 2*hwm, "unread bytes stay within a mark and a piece: %+v", st)
		select {
		case err := <-wrote:
			t.Fatalf("Write of 25 marks returned %v with nothing read", err)
		default:
		}

		// Each short read lets the writer go on only once everything
		// handed over was read: the bound holds all along.
		var got []byte
		buf := make([]byte, 1000)
		for len(got) < len(src) {
			n, err := r.Read(buf)
			require.NoError(t, err, "Read at %d", len(got))
			got = append(got, buf[:n]...)
			synctest.Wait()
			assert.LessOrEqual(t, w.State().Length, 2*hwm, "unread bytes at %d", len(got))
		}
		assert.NoError(t, <-wrote, "the Write completes once read")
		assert.Equal(t, src, got, "the bytes")
		assert.True(t, w.WriteChunk([]byte("x"), nil), "an empty pipe takes writes again")
		r.Close()
		<-w.Done()
	})
}

// By default a pipe's "drain" comes once the reader has read it down to
// half the mark (not to empty, as for other streams), also within a chunk.
func TestPipeWriteChunkBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{HighWaterMark: 10})
		assert.True(t, w.WriteChunk([]byte("123456"), nil), "6 of 10")
		assert.False(t, w.WriteChunk([]byte("7890"), nil), "10 of 10: false")
		ready := w.Ready()
		buf := make([]byte, 3)
		n, err := r.Read(buf)
		require.NoError(t, err, "Read")
		assert.Equal(t, "123", string(buf[:n]), "the first part")
		synctest.Wait()
		select {
		case <-ready:
			t.Fatal("drain with 7 bytes unread, above half the mark")
		default:
		}
		n, err = r.Read(buf)
		require.NoError(t, err, "second Read")
		assert.Equal(t, "456", string(buf[:n]), "the rest of the first chunk")
		synctest.Wait()
		select {
		case <-ready:
		default:
			t.Fatal("no drain with 4 bytes unread, half the mark or less")
		}
		assert.Equal(t, 4, w.State().Length, "Length counts unread bytes")
		n, err = r.Read(make([]byte, 10))
		require.NoError(t, err, "third Read")
		assert.Equal(t, 4, n, "the second chunk")
		assert.Equal(t, 0, w.State().Length, "nothing unread")
		r.Close()
		<-w.Done()
	})
}

// A chunk's callback runs once the reader read all of it (and the chunks
// handed over with it), never inside Read.
func TestPipeCallbackAfterConsumption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{})
		var ran atomic.Int32
		w.WriteChunk([]byte("abcdef"), func(err error) {
			assert.NoError(t, err, "callback of a chunk read in full")
			ran.Add(1)
		})
		synctest.Wait()
		assert.Zero(t, ran.Load(), "no callback before a read")
		buf := make([]byte, 4)
		n, _ := r.Read(buf)
		assert.Equal(t, "abcd", string(buf[:n]), "first part")
		synctest.Wait()
		assert.Zero(t, ran.Load(), "no callback with 2 bytes unread")
		n, _ = r.Read(buf)
		assert.Equal(t, "ef", string(buf[:n]), "the rest")
		synctest.Wait()
		assert.Equal(t, int32(1), ran.Load(), "the callback ran once the chunk was read")
		r.Close()
		<-w.Done()
	})
}

// Length counts the bytes not yet read, also within a chunk the reader is
// reading: with a low-water mark a writer goes on once the reader has read
// down to it, before the chunk's callback runs.
func TestPipeDrainWithinAChunk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{HighWaterMark: 8, LowWaterMark: 4})
		var ran atomic.Int32
		assert.False(t, w.WriteChunk([]byte("0123456789"), func(err error) {
			assert.NoError(t, err, "callback of the chunk read in full")
			ran.Add(1)
		}), "10 bytes: past the mark")
		ready := w.Ready()
		wrote := async(func() error { _, err := w.Write([]byte("abc")); return err })
		buf := make([]byte, 5)
		n, err := r.Read(buf)
		require.NoError(t, err, "Read")
		assert.Equal(t, "01234", string(buf[:n]), "the first part of the chunk")
		synctest.Wait()
		select {
		case <-ready:
			t.Fatal("drain with 5 bytes unread, above the low-water mark")
		default:
		}
		assert.Equal(t, 5, w.State().Length, "Length: the bytes not read yet")

		n, err = r.Read(buf[:1])
		require.NoError(t, err, "second Read")
		assert.Equal(t, "5", string(buf[:n]), "one more byte")
		streamtest.Recv(t, ready, `"drain" at 4 bytes unread, within the chunk`)
		require.NoError(t, streamtest.Recv(t, wrote, "the blocked Write"), "the blocked Write goes on")
		synctest.Wait()
		assert.Zero(t, ran.Load(), "no callback with 4 bytes of the chunk unread")
		assert.Equal(t, 7, w.State().Length, "the rest of the chunk and the Write")

		got, err := io.ReadAll(io.LimitReader(r, 7))
		require.NoError(t, err, "reading the rest")
		assert.Equal(t, "6789abc", string(got), "the rest, in order")
		synctest.Wait()
		assert.Equal(t, int32(1), ran.Load(), "the callback ran once the chunk was read")
		assert.Zero(t, w.State().Length, "nothing unread")
		r.Close()
		<-w.Done()
	})
}

// A Write waiting for the reader to make room returns at once when the
// write end is ended meanwhile.
func TestPipeEndReleasesBlockedWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{HighWaterMark: 4})
		assert.False(t, w.WriteChunk([]byte("0123456789"), nil), "past the mark")
		type result struct {
			n   int
			err error
		}
		wrote := make(chan result, 1)
		go func() {
			n, err := w.Write(bytes.Repeat([]byte("x"), 1000))
			wrote <- result{n, err}
		}()
		synctest.Wait()
		select {
		case res := <-wrote:
			t.Fatalf("Write returned %+v with the pipe full", res)
		default:
		}
		w.End()
		res := <-wrote
		assert.ErrorIs(t, res.err, stream.ErrWriteAfterEnd, "the blocked Write fails: the stream ended")
		assert.Zero(t, res.n, "nothing of it accepted")
		got, err := io.ReadAll(r)
		require.NoError(t, err, "reading to EOF")
		assert.Equal(t, "0123456789", string(got), "what was accepted before End")
		<-w.Done()
	})
}

// A Write into an empty pipe whose reader waits in Read copies into the
// reader's buffer: the pipe holds nothing afterwards, so the writer is not
// pushed back by bytes already in the reader's hands. (Writes of up to 512
// bytes take the stream's fast path instead, as a chunk in flight.)
func TestPipeWriteIntoWaitingRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{HighWaterMark: 100})
		src := bytes.Repeat([]byte("0123456789"), 100)
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 2000)
			n, err := r.Read(buf)
			assert.NoError(t, err, "Read")
			got <- string(buf[:n])
		}()
		synctest.Wait() // the reader waits
		n, err := w.Write(src)
		require.NoError(t, err, "Write")
		assert.Equal(t, len(src), n, "all of it")
		st := w.State()
		assert.Zero(t, st.Length, "nothing left in the pipe: %+v", st)
		assert.False(t, st.NeedDrain, "no drain needed: %+v", st)
		assert.True(t, w.WriteChunk([]byte("x"), nil), "the pipe takes more at once")
		assert.Equal(t, string(src), <-got, "the reader got the Write")

		buf := make([]byte, 4)
		k, err := r.Read(buf)
		require.NoError(t, err, "second Read")
		assert.Equal(t, "x", string(buf[:k]), "then what came after")
		w.End()
		_, err = r.Read(buf)
		assert.ErrorIs(t, err, io.EOF, "EOF after End")
		<-w.Done()
	})
}

// A callback that writes to the same pipe, blocking on its mark, must not
// deadlock the reader whose Read completed the chunk: callbacks never run
// on the reader's goroutine inside Read or WriteTo.
func TestPipeCallbackWritingToItsPipe(t *testing.T) {
	for _, writeTo := range []bool{false, true} {
		t.Run(fmt.Sprintf("WriteTo=%v", writeTo), func(t *testing.T) {
			r, w := newPipe(t, stream.Options{HighWaterMark: 8})
			second := make(chan error, 1)
			w.WriteChunk([]byte("first..."), func(err error) {
				// Two Writes of 2 marks: the second blocks until the reader
				// has read the first.
				_, werr := w.Write(bytes.Repeat([]byte("s"), 16))
				if werr == nil {
					_, werr = w.Write(bytes.Repeat([]byte("s"), 16))
				}
				w.End()
				second <- werr
			})
			var got []byte
			var err error
			if writeTo {
				var buf bytes.Buffer
				_, err = streamtest.Recv(t, async2(func() (int64, error) { return r.WriteTo(&buf) }), "WriteTo to return")()
				got = buf.Bytes()
			} else {
				res := streamtest.Recv(t, readAllAsync(r, 5), "the reader to reach EOF")
				got, err = res.data, res.err
			}
			assert.NoError(t, err, "the reader reaches EOF")
			assert.Equal(t, "first..."+strings.Repeat("s", 32), string(got), "both writes")
			assert.NoError(t, streamtest.Recv(t, second, "the callback's Write"), "the callback's Write")
		})
	}
}

func TestPipeDestroyFailsReadAtOnce(t *testing.T) {
	r, w := newPipe(t, stream.Options{HighWaterMark: 1 << 10})
	var cbErr error
	cbDone := make(chan struct{})
	w.WriteChunk([]byte("unread bytes"), func(err error) { cbErr = err; close(cbDone) })
	w.Destroy(errBoom)
	n, err := r.Read(make([]byte, 100))
	assert.Equal(t, 0, n, "nothing is read once destroyed, even with bytes unread")
	assert.ErrorIs(t, err, errBoom, "the destroying error")
	streamtest.Recv(t, cbDone, "the unread chunk's callback")
	assert.ErrorIs(t, cbErr, errBoom, "the unread chunk's callback gets the error")
	assert.ErrorIs(t, cbErr, stream.ErrDestroyed, "matching ErrDestroyed")
	streamtest.WaitDone(t, w)
	_, err = r.WriteTo(io.Discard)
	assert.ErrorIs(t, err, errBoom, "WriteTo too")
}

func TestPipeFinal(t *testing.T) {
	t.Run("succeeds", func(t *testing.T) {
		var finalRan atomic.Bool
		r, w := newPipe(t, stream.Options{Final: func(done stream.Callback) { finalRan.Store(true); done(nil) }})
		w.WriteChunk([]byte("data"), nil)
		w.End()
		res := streamtest.Recv(t, readAllAsync(r, 10), "EOF")
		assert.NoError(t, res.err, "EOF after Final succeeded")
		assert.True(t, finalRan.Load(), "Final ran before EOF")
		assert.NoError(t, w.Close(), "Close of the write end")
	})
	t.Run("fails", func(t *testing.T) {
		r, w := newPipe(t, stream.Options{Final: func(done stream.Callback) { done(errBoom) }})
		w.WriteChunk([]byte("data"), nil)
		w.End()
		res := streamtest.Recv(t, readAllAsync(r, 10), "the reader to end")
		assert.ErrorIs(t, res.err, errBoom, "Final's error, not EOF")
		assert.Equal(t, "data", string(res.data), "the data before")
		assert.ErrorIs(t, w.Close(), errBoom, "Close of the write end")
	})
	t.Run("Destroy hook", func(t *testing.T) {
		var hookErr atomic.Pointer[error]
		r, w := newPipe(t, stream.Options{Destroy: func(err error, done stream.Callback) { hookErr.Store(&err); done(nil) }})
		r.CloseWithError(errBoom)
		streamtest.WaitDone(t, w)
		require.NotNil(t, hookErr.Load(), "the user's Destroy hook ran")
		assert.ErrorIs(t, *hookErr.Load(), errBoom, "with the stream's error")
	})
}

func TestPipeContext(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r, w := newPipe(t, stream.Options{Context: ctx})
	read := readAllAsync(r, 10)
	w.WriteChunk([]byte("x"), nil)
	cancel(errBoom)
	res := streamtest.Recv(t, read, "the reader to end")
	assert.ErrorIs(t, res.err, errBoom, "the context's cause")
	streamtest.WaitDone(t, w)
}

// Ported from io.Pipe's tests: a write of nothing, and reads into nothing.
func TestPipeEmpty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{})
		n, err := w.Write(nil)
		assert.Equal(t, 0, n, "Write(nil)")
		assert.NoError(t, err, "Write(nil)")
		var cbRan bool
		w.WriteChunk([]byte{}, func(err error) { cbRan = err == nil })
		n, err = r.Read(nil)
		assert.Equal(t, 0, n, "Read(nil)")
		assert.NoError(t, err, "Read(nil) does not wait and fails nothing")
		read := async(func() error {
			buf := make([]byte, 10)
			n, err := r.Read(buf)
			if n != 1 || buf[0] != 'z' {
				return fmt.Errorf("read %q, want z", buf[:n])
			}
			return err
		})
		synctest.Wait()
		assert.True(t, cbRan, "an empty chunk reaches the reader and completes")
		select {
		case err := <-read:
			t.Fatalf("Read returned (%v) on a pipe with only an empty chunk", err)
		default:
		}
		w.WriteChunk([]byte("z"), nil)
		assert.NoError(t, <-read, "Read returns the first byte after the empty chunk")
		w.End()
		n, err = r.Read(make([]byte, 1))
		assert.Equal(t, 0, n, "at the end")
		assert.ErrorIs(t, err, io.EOF, "EOF")
		n, err = r.Read(nil)
		assert.ErrorIs(t, err, io.EOF, "Read(nil) at the end reports EOF")
		assert.Equal(t, 0, n, "Read(nil) at the end")
		<-w.Done()
	})
}

// Ported from io.Pipe's tests: close from either side, twice, with
// errors in both directions; the first error sticks.
func TestPipeCloseTwice(t *testing.T) {
	r, w := newPipe(t, stream.Options{})
	assert.NoError(t, r.CloseWithError(errBoom), "CloseWithError")
	assert.NoError(t, r.CloseWithError(errors.New("second")), "CloseWithError again")
	assert.NoError(t, r.Close(), "Close after CloseWithError")
	assert.ErrorIs(t, w.Close(), errBoom, "the write end keeps the first error")
	_, err := w.Write([]byte("late"))
	assert.ErrorIs(t, err, errBoom, "a Write after the reader closed")
	assert.ErrorIs(t, err, stream.ErrDestroyed, "a Write after the reader closed")
}

// Ported from io.Pipe's tests: the reader closes after EOF.
func TestPipeCloseAfterEOF(t *testing.T) {
	r, w := newPipe(t, stream.Options{})
	w.WriteChunk([]byte("all"), nil)
	closed := async(w.Close)
	res := streamtest.Recv(t, readAllAsync(r, 10), "EOF")
	assert.NoError(t, res.err, "EOF")
	assert.NoError(t, streamtest.Recv(t, closed, "the write end to close"), "the write end finished")
	assert.NoError(t, r.Close(), "Close of the read end")
	assert.NoError(t, w.Close(), "the write end still reports its clean finish")
	assert.NoError(t, w.Err(), "no error on the write end")
	_, err := r.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.ErrClosedPipe, "a Read after Close")
}

// Ported from io.Pipe's tests: reads and writes from many goroutines at
// once. Each Write is contiguous and every byte arrives exactly once.
func TestPipeConcurrent(t *testing.T) {
	const (
		writers = 8
		lines   = 200
		readers = 4
	)
	r, w := newPipe(t, stream.Options{HighWaterMark: 256})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				line := fmt.Sprintf("writer %d line %03d\n", g, i)
				if i%2 == 0 {
					_, err := w.Write([]byte(line))
					assert.NoError(t, err, "Write")
				} else if !w.WriteChunk([]byte(line), nil) {
					<-w.Ready()
				}
			}
		})
	}
	var mu sync.Mutex
	var got []string
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			buf := make([]byte, 64) // at least a line: Read takes whole chunks of a line
			for {
				n, err := r.Read(buf)
				if n > 0 {
					mu.Lock()
					got = append(got, string(buf[:n]))
					mu.Unlock()
				}
				if err != nil {
					assert.ErrorIs(t, err, io.EOF, "readers end at EOF")
					return
				}
			}
		})
	}
	wg.Wait()
	w.End()
	rg.Wait()
	total := 0
	for _, s := range got {
		total += len(s)
	}
	assert.Equal(t, writers*lines*len("writer 0 line 000\n"), total, "every byte read exactly once")
	assert.NoError(t, w.Close(), "Close of the write end")
}

func TestPipeWriteToConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listen")
	defer ln.Close()
	received := make(chan readResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- readResult{err: err}
			return
		}
		defer c.Close()
		data, err := io.ReadAll(c)
		received <- readResult{data, err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err, "dial")

	r, w := newPipe(t, stream.Options{HighWaterMark: 64 << 10})
	var want []byte
	go func() {
		for i := range 64 {
			c := bytes.Repeat([]byte{byte('a' + i%26)}, 4<<10)
			want = append(want, c...)
			if !w.WriteChunk(c, nil) {
				<-w.Ready()
			}
		}
		w.End()
	}()
	n, err := r.WriteTo(conn)
	assert.NoError(t, err, "WriteTo ends at EOF without an error")
	conn.Close()
	res := streamtest.Recv(t, received, "the server to read everything")
	require.NoError(t, res.err, "server")
	assert.Equal(t, int64(len(want)), n, "WriteTo's count")
	assert.Equal(t, want, res.data, "the server got every byte in order")
}

// WriteTo hands dst the writer's own slices.
func TestPipeWriteToNoCopy(t *testing.T) {
	r, w := newPipe(t, stream.Options{})
	chunk := []byte("the chunk itself")
	w.WriteChunk(chunk, nil)
	w.End()
	var seen []byte
	_, err := r.WriteTo(writerFunc(func(p []byte) (int, error) { seen = p; return len(p), nil }))
	require.NoError(t, err, "WriteTo")
	require.Len(t, seen, len(chunk), "one Write of the chunk")
	assert.Same(t, &chunk[0], &seen[0], "dst got the chunk's memory, not a copy")
}

// An error of WriteTo's writer leaves the rest unread, for Read.
func TestPipeWriteToWriterError(t *testing.T) {
	r, w := newPipe(t, stream.Options{})
	var cbErr error
	cbDone := make(chan struct{})
	w.WriteChunk([]byte("0123456789"), func(err error) { cbErr = err; close(cbDone) })
	n, err := r.WriteTo(writerFunc(func(p []byte) (int, error) { return 4, errBoom }))
	assert.ErrorIs(t, err, errBoom, "dst's error")
	assert.Equal(t, int64(4), n, "what dst took")
	buf := make([]byte, 10)
	assert.Equal(t, 6, w.State().Length, "Length counts only the bytes dst did not take")
	k, err := r.Read(buf)
	require.NoError(t, err, "Read after WriteTo failed")
	assert.Equal(t, "456789", string(buf[:k]), "the bytes dst did not take")
	streamtest.Recv(t, cbDone, "the chunk's callback")
	assert.NoError(t, cbErr, "the chunk was read in full")

	w.WriteChunk([]byte("abc"), nil)
	n, err = r.WriteTo(writerFunc(func(p []byte) (int, error) { return 1, nil }))
	assert.ErrorIs(t, err, io.ErrShortWrite, "a short write without an error")
	assert.Equal(t, int64(1), n, "what dst took")
	k, err = r.Read(buf)
	require.NoError(t, err, "Read after the short write")
	assert.Equal(t, "bc", string(buf[:k]), "the bytes dst did not take")
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestPipeNegativeHighWaterMarkPanics(t *testing.T) {
	assert.PanicsWithValue(t, "stream: NewWritable: negative Options.HighWaterMark -1", func() {
		stream.Pipe(stream.Options{HighWaterMark: -1})
	}, "a negative mark is a programmer error")
}

// Wait on the write end returns once the reader has read the pipe down to
// half the mark, and with the reader's error once it closed.
func TestPipeWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{HighWaterMark: 8})
		ctx := context.Background()
		assert.NoError(t, w.Wait(ctx), "an empty pipe needs no drain")
		assert.False(t, w.WriteChunk([]byte("0123456789"), nil), "past the mark")
		waited := async(func() error { return w.Wait(ctx) })
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("Wait returned %v with 10 bytes unread", err)
		default:
		}
		buf := make([]byte, 4)
		_, err := r.Read(buf)
		require.NoError(t, err, "Read")
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("Wait returned %v with 6 bytes unread", err)
		default:
		}
		_, err = io.ReadFull(r, make([]byte, 2))
		require.NoError(t, err, "reading 2 more")
		assert.NoError(t, <-waited, "Wait returns at 4 bytes unread, half the mark")
		_, err = io.ReadFull(r, make([]byte, 4))
		require.NoError(t, err, "reading the rest")

		assert.False(t, w.WriteChunk([]byte("0123456789"), nil), "past the mark again")
		waited = async(func() error { return w.Wait(ctx) })
		synctest.Wait()
		r.CloseWithError(errBoom)
		err = <-waited
		assert.ErrorIs(t, err, errBoom, "Wait returns the reader's error")
		assert.ErrorIs(t, err, stream.ErrDestroyed, "matching ErrDestroyed")
		<-w.Done()
	})
}

// Flush on the write end returns once the reader has consumed everything
// written before it, and the chunks handed over with the last of those.
func TestPipeFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{HighWaterMark: 1 << 10})
		ctx := context.Background()
		_, err := w.Write([]byte("written before Flush, "))
		require.NoError(t, err, "Write")
		w.WriteChunk([]byte("and a chunk"), nil)
		flushed := async(func() error { return w.Flush(ctx) })
		synctest.Wait()
		select {
		case err := <-flushed:
			t.Fatalf("Flush returned %v with nothing read", err)
		default:
		}
		w.WriteChunk([]byte(", after"), nil) // not waited for
		_, err = io.ReadFull(r, make([]byte, len("written before Flush, ")))
		require.NoError(t, err, "reading the Write")
		synctest.Wait()
		select {
		case err := <-flushed:
			t.Fatalf("Flush returned %v with the chunk unread", err)
		default:
		}
		_, err = io.ReadFull(r, make([]byte, len("and a chunk")))
		require.NoError(t, err, "reading the chunk")
		// The chunk was handed over with the one written after Flush: they
		// complete together.
		synctest.Wait()
		select {
		case err := <-flushed:
			t.Fatalf("Flush returned %v before the chunk handed over with the last one was read", err)
		default:
		}
		_, err = io.ReadFull(r, make([]byte, len(", after")))
		require.NoError(t, err, "reading the chunk after Flush")
		assert.NoError(t, <-flushed, "Flush returns once the reader consumed what was written before it")

		assert.NoError(t, w.Flush(ctx), "nothing unread: Flush returns at once")
		w.WriteChunk([]byte("never read"), nil)
		flushed = async(func() error { return w.Flush(ctx) })
		synctest.Wait()
		r.Close()
		err = <-flushed
		assert.ErrorIs(t, err, io.ErrClosedPipe, "Flush returns the reader's error when it closes")
		<-w.Done()
	})
}

func TestPipeReaderZeroValuePanics(t *testing.T) {
	var r stream.PipeReader
	const want = "stream: PipeReader not made by Pipe"
	assert.PanicsWithValue(t, want, func() { r.Read(make([]byte, 1)) }, "Read")
	assert.PanicsWithValue(t, want, func() { r.WriteTo(io.Discard) }, "WriteTo")
	assert.PanicsWithValue(t, want, func() { r.Close() }, "Close")
}

// With MaxBatch 1 the reader takes one chunk at a time, so each callback
// runs as soon as its own chunk was read.
func TestPipeMaxBatchOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, w := stream.Pipe(stream.Options{MaxBatch: 1})
		var ran []string
		cb := func(name string) stream.Callback {
			return func(err error) {
				if err == nil {
					ran = append(ran, name)
				}
			}
		}
		w.WriteChunk([]byte("x"), cb("x")) // in flight
		w.WriteChunk([]byte("a"), cb("a"))
		w.WriteChunk([]byte("b"), cb("b"))
		buf := make([]byte, 1)
		for _, want := range []string{"x", "a"} {
			_, err := io.ReadFull(r, buf)
			require.NoError(t, err, "Read")
			assert.Equal(t, want, string(buf), "the chunks in order")
			synctest.Wait()
		}
		assert.Equal(t, []string{"x", "a"}, ran, "a's callback ran (with nil) while b is unread")
		r.Close()
		<-w.Done()
	})
}

// A panic of WriteTo's writer leaves the chunks unread and the pipe
// usable: a Read gets them, and both ends close.
func TestPipeWriteToWriterPanics(t *testing.T) {
	r, w := newPipe(t, stream.Options{})
	w.WriteChunk([]byte("kept"), nil)
	assert.PanicsWithValue(t, "dst", func() {
		r.WriteTo(writerFunc(func(p []byte) (int, error) { panic("dst") }))
	}, "the writer's panic goes on up")
	buf := make([]byte, 10)
	n, err := r.Read(buf)
	require.NoError(t, err, "Read after the panic")
	assert.Equal(t, "kept", string(buf[:n]), "the chunk is still there, unread")
	w.End()
	n, err = r.Read(buf)
	assert.Equal(t, 0, n, "nothing more")
	assert.ErrorIs(t, err, io.EOF, "EOF")
	assert.NoError(t, w.Close(), "the write end finishes")
}
