package stream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
)

// runPipeline runs Pipeline on a goroutine and returns its result channel.
func runPipeline(ctx context.Context, dst *stream.Writable, srcs ...io.Reader) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- stream.Pipeline(ctx, dst, srcs...) }()
	return ch
}

func TestPipelineCopiesSourcesInOrderIntoAFile(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	big := randomBytes(3<<20+123, 1)
	fileData := randomBytes(1<<20+7, 2)
	srcPath := filepath.Join(dir, "src")
	require.NoError(t, os.WriteFile(srcPath, fileData, 0o600), "writing the source file")
	srcFile, err := os.Open(srcPath)
	require.NoError(t, err, "opening the source file")

	tiny := &closeCounter{r: iotest.OneByteReader(strings.NewReader("one byte at a time"))}
	srcs := []io.Reader{
		strings.NewReader("alpha,"),
		srcFile,
		tiny,
		bytes.NewReader(big),
		strings.NewReader(""),
		iotest.HalfReader(strings.NewReader(",omega")),
	}
	want := bytes.Join([][]byte{[]byte("alpha,"), fileData, []byte("one byte at a time"), big, []byte(",omega")}, nil)

	dstPath := filepath.Join(dir, "dst")
	dst, err := stream.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600, stream.Options{})
	require.NoError(t, err, "OpenFile")

	require.NoError(t, stream.Pipeline(context.Background(), dst, srcs...), "Pipeline of six sources")
	assert.True(t, dst.State().Finished, "dst finished")
	got, err := os.ReadFile(dstPath)
	require.NoError(t, err, "reading the copy")
	assert.True(t, bytes.Equal(want, got), "copy is byte-for-byte the sources in order (got %d bytes, want %d)", len(got), len(want))
	assert.ErrorIs(t, srcFile.Close(), os.ErrClosed, "Pipeline closed the *os.File source")
	assert.Equal(t, int32(1), tiny.closes.Load(), "Pipeline closed the io.Closer source once")
}

func TestPipelineWithoutSourcesEndsDst(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sink := newMemSink()
	dst := stream.NewWritable(sink.write, stream.Options{})
	require.NoError(t, stream.Pipeline(context.Background(), dst), "Pipeline with no source")
	assert.True(t, dst.State().Finished, "dst finished")
	assert.Empty(t, sink.bytes(), "nothing written")
}

func TestPipelineReadErrorDestroysDstAndClosesSources(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	first := &closeCounter{r: strings.NewReader("first,")}
	failing := &closeCounter{r: &failAfterReader{data: []byte("partial"), err: errTest}}
	never := &closeCounter{r: strings.NewReader("never read")}
	sink := newMemSink()
	dst := stream.NewWritable(sink.write, stream.Options{})

	err := stream.Pipeline(context.Background(), dst, first, failing, never)
	require.ErrorIs(t, err, errTest, "Pipeline returns the read error")
	assert.Contains(t, err.Error(), "source 1", "the error names the failing source")
	select {
	case <-dst.Done():
	default:
		assert.Fail(t, "Pipeline returned before dst closed")
	}
	assert.ErrorIs(t, dst.Err(), errTest, "dst was destroyed with the read error")
	assert.False(t, dst.State().Finished, "dst did not finish")
	assert.Zero(t, never.read.Load(), "the source after the failing one was not read")
	for i, c := range []*closeCounter{first, failing, never} {
		assert.Equal(t, int32(1), c.closes.Load(), "source %d closed once", i)
	}
	assert.True(t, bytes.HasPrefix([]byte("first,partial"), sink.bytes()), "what reached the sink is a prefix of the sources: %q", sink.bytes())
}

func TestPipelineSinkErrorStopsReadingEarly(t *testing.T) {
	const size = 1 << 30 // read to the end, this would take seconds
	const bound = 4 << 20
	tests := []struct {
		desc    string
		giveDst func(t *testing.T) *stream.Writable
		wantErr error
	}{
		{
			desc: "sink fails its first write",
			giveDst: func(t *testing.T) *stream.Writable {
				sink := newMemSink()
				sink.fail = errTest
				return stream.NewWritable(sink.write, stream.Options{})
			},
			wantErr: errTest,
		},
		{
			desc: "sink fails its third write",
			giveDst: func(t *testing.T) *stream.Writable {
				calls := 0
				return stream.NewWritable(func(chunk []byte, done stream.Callback) {
					calls++
					if calls == 3 {
						done(errTest)
						return
					}
					done(nil)
				}, stream.Options{})
			},
			wantErr: errTest,
		},
		{
			desc: "file on a full device (/dev/full)",
			giveDst: func(t *testing.T) *stream.Writable {
				dst, err := stream.OpenFile("/dev/full", os.O_WRONLY, 0, stream.Options{})
				if errors.Is(err, os.ErrNotExist) {
					t.Skip("no /dev/full on this system")
				}
				require.NoError(t, err, "opening /dev/full")
				return dst
			},
			wantErr: syscall.ENOSPC,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			src := &zeroReader{left: size}
			closer := &closeCounter{r: src}
			dst := tt.giveDst(t)
			err := recvWithin(t, runPipeline(context.Background(), dst, closer), "Pipeline into a failing sink")
			require.ErrorIs(t, err, tt.wantErr, "Pipeline returns the sink's error")
			assert.ErrorIs(t, dst.Err(), tt.wantErr, "dst's error")
			assert.LessOrEqual(t, src.read.Load(), int64(bound), "bytes read before Pipeline stopped, of a %d-byte source", size)
			assert.Equal(t, int32(1), closer.closes.Load(), "the source was closed")
		})
	}
}

func TestPipelineContextCancelUnblocksAPendingRead(t *testing.T) {
	errCause := errors.New("operator said stop")
	tests := []struct {
		desc    string
		cancel  func(context.CancelCauseFunc)
		wantErr []error
	}{
		{"cancel", func(c context.CancelCauseFunc) { c(nil) }, []error{context.Canceled}},
		{"cancel with a cause", func(c context.CancelCauseFunc) { c(errCause) }, []error{errCause}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			pr, pw, err := os.Pipe()
			require.NoError(t, err, "os.Pipe")
			defer pw.Close()
			other := &closeCounter{r: strings.NewReader("after the pipe")}
			sink := newMemSink()
			dst := stream.NewWritable(sink.write, stream.Options{})
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)

			res := runPipeline(ctx, dst, pr, other)
			_, err = pw.Write(randomBytes(64<<10, 3))
			require.NoError(t, err, "writing into the pipe")
			recvWithin(t, sink.first, "first bytes at the sink")
			// The pipe stays open and empty: Pipeline is now blocked in Read
			// or about to be.
			tt.cancel(cancel)
			err = recvWithin(t, res, "Pipeline to return after cancel")
			for _, want := range tt.wantErr {
				assert.ErrorIs(t, err, want, "Pipeline's error")
				assert.ErrorIs(t, dst.Err(), want, "dst destroyed with the cause")
			}
			assert.ErrorIs(t, pr.Close(), os.ErrClosed, "Pipeline closed the pipe to unblock Read")
			assert.Equal(t, int32(1), other.closes.Load(), "the unread source was closed")
			assert.Zero(t, other.read.Load(), "the unread source was not read")
		})
	}
}

func TestPipelineStopsWhenDstIsDestroyedElsewhere(t *testing.T) {
	tests := []struct {
		desc    string
		give    error
		wantErr error
	}{
		{"Destroy(nil)", nil, stream.ErrPrematureClose},
		{"Destroy(err)", errTest, errTest},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			pr, pw, err := os.Pipe()
			require.NoError(t, err, "os.Pipe")
			defer pw.Close()
			sink := newMemSink()
			dst := stream.NewWritable(sink.write, stream.Options{})
			res := runPipeline(context.Background(), dst, pr)
			_, err = pw.Write([]byte("some bytes"))
			require.NoError(t, err, "writing into the pipe")
			recvWithin(t, sink.first, "first bytes at the sink")
			dst.Destroy(tt.give)
			err = recvWithin(t, res, "Pipeline to return after dst was destroyed")
			assert.ErrorIs(t, err, tt.wantErr, "Pipeline's error")
			assert.ErrorIs(t, pr.Close(), os.ErrClosed, "Pipeline closed the pipe to unblock Read")
		})
	}
}

func TestPipelineClosesCloserSourcesInEveryCase(t *testing.T) {
	tests := []struct {
		desc    string
		setup   func(dst *stream.Writable, cancel context.CancelFunc)
		srcs    func() []io.Reader
		sinkErr error
		wantErr error
	}{
		{
			desc:    "success",
			setup:   func(*stream.Writable, context.CancelFunc) {},
			srcs:    func() []io.Reader { return []io.Reader{strings.NewReader("a"), strings.NewReader("b")} },
			wantErr: nil,
		},
		{
			desc:  "read error",
			setup: func(*stream.Writable, context.CancelFunc) {},
			srcs: func() []io.Reader {
				return []io.Reader{strings.NewReader("a"), &failAfterReader{data: []byte("b"), err: errTest}}
			},
			wantErr: errTest,
		},
		{
			desc:    "sink error",
			setup:   func(*stream.Writable, context.CancelFunc) {},
			srcs:    func() []io.Reader { return []io.Reader{strings.NewReader("a"), strings.NewReader("b")} },
			sinkErr: errTest,
			wantErr: errTest,
		},
		{
			desc:    "ctx cancelled before the call",
			setup:   func(_ *stream.Writable, cancel context.CancelFunc) { cancel() },
			srcs:    func() []io.Reader { return []io.Reader{strings.NewReader("a"), strings.NewReader("b")} },
			wantErr: context.Canceled,
		},
		{
			desc:    "dst already destroyed",
			setup:   func(dst *stream.Writable, _ context.CancelFunc) { dst.Destroy(errTest) },
			srcs:    func() []io.Reader { return []io.Reader{strings.NewReader("a"), strings.NewReader("b")} },
			wantErr: errTest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			sink := newMemSink()
			sink.fail = tt.sinkErr
			dst := stream.NewWritable(sink.write, stream.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.setup(dst, cancel)
			var closers []*closeCounter
			var srcs []io.Reader
			for _, r := range tt.srcs() {
				c := &closeCounter{r: r}
				closers = append(closers, c)
				srcs = append(srcs, c)
			}
			err := recvWithin(t, runPipeline(ctx, dst, srcs...), "Pipeline")
			if tt.wantErr == nil {
				assert.NoError(t, err, "Pipeline")
			} else {
				assert.ErrorIs(t, err, tt.wantErr, "Pipeline")
			}
			for i, c := range closers {
				assert.Equal(t, int32(1), c.closes.Load(), "source %d closed exactly once", i)
			}
		})
	}
}

// closeFails is a source whose Close fails.
type closeFails struct{ io.Reader }

func (closeFails) Close() error { return errTest }

func TestPipelineSourceCloseErrorFailsIt(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sink := newMemSink()
	dst := stream.NewWritable(sink.write, stream.Options{})
	after := &closeCounter{r: strings.NewReader("after")}
	err := stream.Pipeline(context.Background(), dst, closeFails{strings.NewReader("data")}, after)
	assert.ErrorIs(t, err, errTest, "Pipeline reports the source's Close error")
	assert.ErrorIs(t, dst.Err(), errTest, "dst destroyed with it")
	assert.Equal(t, int32(1), after.closes.Load(), "the next source was closed too")
}

// The memory Pipeline holds is bounded by its two read buffers, whatever
// the size of the source, with a slow (asynchronous) sink and a small
// high-water mark.
func TestPipelineMemoryStaysBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	size := int64(256 << 20)
	if testing.Short() {
		size = 32 << 20
	}
	const bound = 2 << 20 // two read buffers of at most 1 MiB
	var sunk atomic64
	var worst int64
	src := &probeReader{left: size, probe: func(read int64) {
		if d := read - sunk.load(); d > worst {
			worst = d
		}
	}}
	dst := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		go func() {
			sunk.add(int64(len(chunk)))
			done(nil)
		}()
	}, stream.Options{HighWaterMark: 16 << 10})
	require.NoError(t, stream.Pipeline(context.Background(), dst, src), "Pipeline into a slow sink")
	assert.Equal(t, size, sunk.load(), "every byte reached the sink")
	assert.LessOrEqual(t, worst, int64(bound), "bytes read but not yet written, at worst")
	t.Logf("at worst %d KiB read ahead of the sink", worst>>10)
}

// probeReader reads zeros and calls probe with the total read before each
// Read.
type probeReader struct {
	left, read int64
	probe      func(read int64)
}

func (r *probeReader) Read(p []byte) (int, error) {
	r.probe(r.read)
	if r.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left))
	clear(p[:n])
	r.left -= int64(n)
	r.read += int64(n)
	return n, nil
}
