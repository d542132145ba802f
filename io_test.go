package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// writeMethods are the ways to hand data to a stream, as one signature: the
// number of bytes accepted and the error (a WriteChunk reports the error its
// callback got, and 0).
var writeMethods = []struct {
	desc  string
	write func(t *testing.T, w *stream.Writable, p string) (int64, error)
}{
	{
		desc: "Write",
		write: func(_ *testing.T, w *stream.Writable, p string) (int64, error) {
			n, err := w.Write([]byte(p))
			return int64(n), err
		},
	},
	{
		desc: "WriteString",
		write: func(_ *testing.T, w *stream.Writable, p string) (int64, error) {
			n, err := w.WriteString(p)
			return int64(n), err
		},
	},
	{
		desc: "ReadFrom",
		write: func(_ *testing.T, w *stream.Writable, p string) (int64, error) {
			return w.ReadFrom(strings.NewReader(p))
		},
	},
	{
		desc: "WriteChunk",
		write: func(t *testing.T, w *stream.Writable, p string) (int64, error) {
			errc := make(chan error, 1)
			assert.False(t, w.WriteChunk([]byte(p), func(err error) { errc <- err }), "WriteChunk result")
			return 0, streamtest.Recv(t, errc, "the WriteChunk callback")
		},
	},
}

// io.Writer, io.StringWriter and io.ReaderFrom (also through io.Copy) accept
// all their input and deliver the same bytes, in order.
func TestWriteMethodsDeliverAllBytes(t *testing.T) {
	data := strings.Repeat("0123456789abcdef", 5000) // 80000 bytes: several pieces
	tests := []struct {
		desc  string
		data  string
		write func(w *stream.Writable, data string) (int64, error)
	}{
		{
			desc: "Write",
			data: data,
			write: func(w *stream.Writable, data string) (int64, error) {
				n, err := w.Write([]byte(data))
				return int64(n), err
			},
		},
		{
			desc: "WriteString",
			data: data,
			write: func(w *stream.Writable, data string) (int64, error) {
				n, err := w.WriteString(data)
				return int64(n), err
			},
		},
		{
			desc: "ReadFrom",
			data: data,
			write: func(w *stream.Writable, data string) (int64, error) {
				return w.ReadFrom(strings.NewReader(data))
			},
		},
		{
			desc: "io.Copy from a one-byte reader",
			data: data[:5000],
			write: func(w *stream.Writable, data string) (int64, error) {
				return io.Copy(w, iotest.OneByteReader(strings.NewReader(data)))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Writes...)
			w, _ := open(t, sink, stream.Options{HighWaterMark: 4096, Writev: sink.Writev})

			n, err := tt.write(w, tt.data)
			require.NoError(t, err, "%s", tt.desc)
			require.NoError(t, w.Close(), "Close")

			got := sink.Data()
			assert.Equal(t, int64(len(tt.data)), n, "bytes accepted")
			assert.Equal(t, len(tt.data), len(got), "bytes the sink got")
			assert.True(t, got == tt.data, "the sink got the data, in order")
		})
	}
}

// DESIGN "Producer side" and STYLE 3: Write and ReadFrom copy their input.
// Mutating p after Write returned, or a reader reusing ReadFrom's buffer,
// does not change what the sink gets, even for chunks still buffered.
func TestWriteCopiesInput(t *testing.T) {
	tests := []struct {
		desc  string
		write func(t *testing.T, w *stream.Writable) string // returns what the sink must get
	}{
		{
			desc: "Write",
			write: func(t *testing.T, w *stream.Writable) string {
				p, q := []byte("first"), []byte("second")
				_, err := w.Write(p)
				require.NoError(t, err, "Write first")
				_, err = w.Write(q)
				require.NoError(t, err, "Write second")
				copy(p, "XXXXX")
				copy(q, "YYYYYY")
				return "firstsecond"
			},
		},
		{
			desc: "ReadFrom",
			write: func(t *testing.T, w *stream.Writable) string {
				var want strings.Builder
				for i := range 300 {
					fmt.Fprintf(&want, "chunk %03d|", i)
				}
				n, err := w.ReadFrom(iotest.OneByteReader(strings.NewReader(want.String())))
				require.NoError(t, err, "ReadFrom")
				require.Equal(t, int64(want.Len()), n, "bytes read")
				return want.String()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Writes...)
			w, _ := open(t, sink, stream.Options{Writev: sink.Writev})

			want := tt.write(t, w) // the first chunk is held, the rest buffered
			first := sink.Next(t)
			sink.SetMode(streamtest.Sync, streamtest.Writes...)
			first.Done(nil)
			require.NoError(t, w.Close(), "Close")

			assert.Equal(t, want, sink.Data(), "bytes the sink got")
		})
	}
}

// DESIGN "Producer side" and decisions "Write / WriteString / ReadFrom":
// Write blocks while the stream needs a drain, so however large p is and
// however slow the sink, Length stays below HighWaterMark + 1 MiB.
func TestWriteMemoryBounded(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 8 << 20
	}
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i * 7 / 3)
	}
	tests := []struct {
		desc string
		hwm  int
	}{
		{desc: "default high-water mark", hwm: 0},
		{desc: "4 MiB high-water mark", hwm: 4 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var (
				w         *stream.Writable
				mu        sync.Mutex
				maxLength int
			)
			sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Writes...)
			sink.OnCall(func(*streamtest.Call) {
				l := w.State().Length
				mu.Lock()
				maxLength = max(maxLength, l)
				mu.Unlock()
			})
			w, _ = open(t, sink, stream.Options{HighWaterMark: tt.hwm, Writev: sink.Writev})

			n, err := w.Write(p)
			require.NoError(t, err, "Write")
			require.NoError(t, w.Close(), "Close")

			assert.Equal(t, len(p), n, "bytes accepted")
			assert.True(t, bytes.Equal(p, []byte(sink.Data())), "the sink got p (%d bytes of %d)", len(sink.Data()), len(p))
			mu.Lock()
			defer mu.Unlock()
			limit := w.State().HighWaterMark + 1<<20
			assert.LessOrEqual(t, maxLength, limit, "largest Length seen by the sink")
		})
	}
}

// DESIGN "Details": a Write blocked on backpressure is woken when the stream
// ends, errors or is destroyed, and returns n < len(p) with the error a
// write would get at that point.
func TestBlockedWriteWoken(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc   string
		act    func(w *stream.Writable, inFlight *streamtest.Call)
		wantIs []error
	}{
		{
			desc:   "Destroy(err)",
			act:    func(w *stream.Writable, _ *streamtest.Call) { w.Destroy(boom) },
			wantIs: []error{stream.ErrDestroyed, boom},
		},
		{
			desc:   "Destroy(nil)",
			act:    func(w *stream.Writable, _ *streamtest.Call) { w.Destroy(nil) },
			wantIs: []error{stream.ErrDestroyed},
		},
		{
			desc:   "End",
			act:    func(w *stream.Writable, _ *streamtest.Call) { w.End() },
			wantIs: []error{stream.ErrWriteAfterEnd},
		},
		{
			desc:   "sink error",
			act:    func(_ *stream.Writable, inFlight *streamtest.Call) { inFlight.Done(boom) },
			wantIs: []error{boom},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Writes...)
			w, _ := open(t, sink, stream.Options{HighWaterMark: 4096, Writev: sink.Writev})
			p := make([]byte, 1<<20)
			type result struct {
				n   int
				err error
			}
			results := make(chan result, 1)
			go func() {
				n, err := w.Write(p)
				results <- result{n, err}
			}()

			// Once the first piece is in flight Length has reached the
			// high-water mark: Write is blocked, or about to block.
			inFlight := sink.Next(t)
			tt.act(w, inFlight)
			res := streamtest.Recv(t, results, "the blocked Write to return")

			assert.Less(t, res.n, len(p), "bytes accepted")
			assert.GreaterOrEqual(t, res.n, len(inFlight.Data()), "bytes accepted include the piece in flight")
			for _, want := range tt.wantIs {
				assert.ErrorIs(t, res.err, want, "Write error")
			}
		})
	}
}

// Brief "sticky error" (DESIGN "Producer side", STYLE 16): after a sink
// error every later Write, WriteString, ReadFrom and WriteChunk returns the
// stream's error (matching ErrDestroyed and the sink error) and accepts
// nothing; twice in a row.
func TestStickyErrorAfterSinkError(t *testing.T) {
	boom := errors.New("boom")
	for _, m := range writeMethods {
		t.Run(m.desc, func(t *testing.T) {
			sink := streamtest.NewSink().FailCall(streamtest.Write, 1, boom)
			w, _ := open(t, sink, stream.Options{})
			w.WriteChunk(chunk("a"), nil)
			streamtest.WaitDone(t, w)

			for i := range 2 {
				n, err := m.write(t, w, "more")
				assert.Zero(t, n, "%s #%d: bytes accepted", m.desc, i+1)
				assert.ErrorIs(t, err, boom, "%s #%d: error", m.desc, i+1)
				assert.ErrorIs(t, err, stream.ErrDestroyed, "%s #%d: error", m.desc, i+1)
			}
			assert.Equal(t, []string{"write a"}, sink.Log(), "sink calls")
		})
	}
}

// DESIGN "Details" (late writes; spec H1, H6, H7, H8) and decisions
// "Errors": what a write made after End, Destroy or an error gets, through
// every write method. After End (whatever else happened): ErrWriteAfterEnd.
// Else after Destroy(err) or a sink error: ErrDestroyed and that error.
// After Destroy(nil): ErrDestroyed. Nothing is accepted.
func TestLateWrites(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc    string
		setup   func(t *testing.T, w *stream.Writable, sink *streamtest.Sink)
		wantIs  []error
		wantErr error // the stream's Err once closed
	}{
		{
			desc: "after a clean close",
			setup: func(t *testing.T, w *stream.Writable, _ *streamtest.Sink) {
				require.NoError(t, w.Close(), "Close")
			},
			wantIs:  []error{stream.ErrWriteAfterEnd},
			wantErr: nil,
		},
		{
			desc:    "after Destroy(nil)",
			setup:   func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) { w.Destroy(nil) },
			wantIs:  []error{stream.ErrDestroyed},
			wantErr: nil,
		},
		{
			desc:    "after Destroy(err)",
			setup:   func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) { w.Destroy(boom) },
			wantIs:  []error{stream.ErrDestroyed, boom},
			wantErr: boom,
		},
		{
			desc: "after a sink error",
			setup: func(_ *testing.T, w *stream.Writable, sink *streamtest.Sink) {
				sink.FailCall(streamtest.Write, 1, boom)
				w.WriteChunk(chunk("a"), nil)
			},
			wantIs:  []error{stream.ErrDestroyed, boom},
			wantErr: boom,
		},
		{
			desc: "after End, then Destroy(err)",
			setup: func(_ *testing.T, w *stream.Writable, sink *streamtest.Sink) {
				sink.SetMode(streamtest.Hold, streamtest.Final) // so that End does not finish first
				w.End()
				w.Destroy(boom)
			},
			wantIs:  []error{stream.ErrWriteAfterEnd},
			wantErr: boom,
		},
		{
			desc: "after Destroy(err), then End",
			setup: func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) {
				w.Destroy(boom)
				w.End()
			},
			wantIs:  []error{stream.ErrDestroyed, boom},
			wantErr: boom,
		},
		{
			desc: "after Destroy(nil), then End",
			setup: func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink) {
				w.Destroy(nil)
				w.End()
			},
			wantIs:  []error{stream.ErrWriteAfterEnd},
			wantErr: nil,
		},
	}
	for _, tt := range tests {
		for _, m := range writeMethods {
			t.Run(tt.desc+"/"+m.desc, func(t *testing.T) {
				sink := streamtest.NewSink()
				w, _ := open(t, sink, stream.Options{Final: sink.Final})
				tt.setup(t, w, sink)

				n, err := m.write(t, w, "late")

				assert.Zero(t, n, "bytes accepted")
				for _, want := range tt.wantIs {
					assert.ErrorIs(t, err, want, "error of the late %s", m.desc)
				}
				sink.Release()
				streamtest.WaitDone(t, w)
				assert.ErrorIs(t, w.Err(), tt.wantErr, "Err once closed")
				assert.NotContains(t, sink.Data(), "late", "bytes of the late write reached the sink")
			})
		}
	}
}

// io.Writer: writing nothing accepts nothing and is no error.
func TestWriteEmpty(t *testing.T) {
	w, _ := open(t, streamtest.NewSink(), stream.Options{})

	n, err := w.Write(nil)
	assert.Zero(t, n, "Write(nil) bytes")
	assert.NoError(t, err, "Write(nil)")
	n, err = w.WriteString("")
	assert.Zero(t, n, "WriteString(\"\") bytes")
	assert.NoError(t, err, "WriteString(\"\")")
	assert.NoError(t, w.Close(), "Close")
}

// io.ReaderFrom: ReadFrom returns a read error other than io.EOF, with the
// bytes read before it.
func TestReadFromReadError(t *testing.T) {
	boom := errors.New("boom")
	sink := streamtest.NewSink()
	w, _ := open(t, sink, stream.Options{})

	n, err := w.ReadFrom(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)))

	assert.ErrorIs(t, err, boom, "ReadFrom error")
	assert.Equal(t, int64(3), n, "bytes read before the error")
}
