package stream_test

import (
	"io"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// The interfaces DESIGN.md promises, checked at compile time.
var (
	_ io.Writer       = (*stream.Writable)(nil)
	_ io.StringWriter = (*stream.Writable)(nil)
	_ io.ReaderFrom   = (*stream.Writable)(nil)
	_ io.WriteCloser  = (*stream.Writable)(nil)
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open creates a stream over sink's Write with opts, records its events, and
// makes sure it is closed at the end of the test (held sink calls released).
func open(t testing.TB, sink *streamtest.Sink, opts stream.Options) (*stream.Writable, *streamtest.Recorder) {
	t.Helper()
	w := stream.NewWritable(sink.Write, opts)
	streamtest.Cleanup(t, w, sink)
	return w, streamtest.Record(w)
}

// closeAsync calls w.Close on a new goroutine and delivers its result.
func closeAsync(w *stream.Writable) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- w.Close() }()
	return ch
}

// chunk is shorthand for []byte(s).
func chunk(s string) []byte { return []byte(s) }
