package bench

import (
	"bufio"
	"io"
	"testing"
	"time"

	"github.com/streamkit/stream"
)

// discardCounter is io.Discard that counts what it was given, so that a
// benchmark can check the sink received every byte. It has only Write, so
// FromWriter and bufio see the plain io.Writer that io.Discard is to them
// (no net.Buffers fast path either way).
type discardCounter struct {
	n int64
}

func (d *discardCounter) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}

// flushWriter is the small interface behind which BenchmarkWrite runs the
// same loop over the stream and over its bufio baseline.
type flushWriter interface {
	io.Writer
	// finish flushes everything written and waits until the destination
	// has it.
	finish(b *testing.B)
}

// streamWriter is a Writable from FromWriter.
type streamWriter struct {
	*stream.Writable
}

func (s streamWriter) finish(b *testing.B) { endAndWait(b, s.Writable) }

// bufioWriter is a bufio.Writer (4 KiB buffer, its default).
type bufioWriter struct {
	*bufio.Writer
}

func (w bufioWriter) finish(b *testing.B) {
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWrite writes 16 B with io.Writer's Write into a destination that
// discards what it gets: through FromWriter (the stream copies p, buffers,
// and a goroutine of the adapter writes batches to the destination), and
// through a bufio.Writer, the Go floor. One iteration is one Write. The
// target is ours ≥ 0.5× bufio with 0 allocs/op amortized.
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(io.Writer) flushWriter
	}{
		{"FromWriter", func(d io.Writer) flushWriter {
			return streamWriter{stream.FromWriter(d, stream.Options{})}
		}},
		{"bufio", func(d io.Writer) flushWriter { return bufioWriter{bufio.NewWriter(d)} }},
	} {
		b.Run(tc.name+"/16B", func(b *testing.B) {
			b.ReportAllocs()
			dst := &discardCounter{}
			w := tc.open(dst)
			var writes int64
			allocs := startAllocs()
			start := time.Now()
			for b.Loop() {
				writes++
				if _, err := w.Write(chunk16); err != nil {
					b.Fatal(err)
				}
			}
			w.finish(b)
			reportRate(b, start, writes, writes*16)
			allocs.report(b, writes)
			checkBytes(b, dst.n, writes*16)
		})
	}
}
