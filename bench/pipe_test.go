package bench

import (
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/streamkit/stream"
)

// pipeChunk is the write size of BenchmarkPipe, and pipeReadBuf the buffer
// of its Read loops (io.Copy's).
const (
	pipeChunk   = 16 << 10
	pipeReadBuf = 32 << 10
)

// BenchmarkPipe moves 16 KiB writes through an in-memory pipe, the writer
// on the benchmark's goroutine and the reader on one of its own, which
// counts the bytes; one iteration is one write, so -benchtime=65536x is
// 1 GiB. MB/s runs from the first write until the reader saw EOF.
//
//	WriteChunk-WriteTo  stream.Pipe: WriteChunk (no copy, waiting on Ready
//	                    after false) into r.WriteTo (the chunks as written)
//	Write-Read          stream.Pipe: Write (a copy) into a Read loop (a copy)
//	ring                the baseline of hand-made buffered pipes: a ring
//	                    buffer of the mark's size under a mutex with two
//	                    sync.Conds (djherbis/nio's shape), Write into Read
//	io.Pipe             io.Pipe: one copy, writer and reader in lock-step
//	                    (no buffer, so no mark)
//
// Each stream.Pipe and ring case runs with a 16 KiB and a 256 KiB mark.
// Write-Read/HWM256KiB-LWM1 (not a compare row) sets a low-water mark of
// one byte: the writer resumes only once the reader has read (nearly)
// everything, as Node's "drain" at empty, where a pipe's default mark
// lets it go on once half the mark was read.
func BenchmarkPipe(b *testing.B) {
	for _, hwm := range []struct {
		name string
		n    int
	}{{"HWM16KiB", 16 << 10}, {"HWM256KiB", 256 << 10}} {
		b.Run("WriteChunk-WriteTo/"+hwm.name, func(b *testing.B) { benchPipe(b, newStreamPipe(hwm.n), true) })
		b.Run("Write-Read/"+hwm.name, func(b *testing.B) { benchPipe(b, newStreamPipe(hwm.n), false) })
		b.Run("ring/"+hwm.name, func(b *testing.B) { benchPipe(b, newRingPipe(hwm.n), false) })
	}
	b.Run("Write-Read/HWM256KiB-LWM1", func(b *testing.B) {
		benchPipe(b, newStreamPipeOpts(stream.Options{HighWaterMark: 256 << 10, LowWaterMark: 1}), false)
	})
	b.Run("io.Pipe/16KiB", func(b *testing.B) {
		r, w := io.Pipe()
		benchPipe(b, benchedPipe{r: r, w: w, end: func() error { return w.Close() }}, false)
	})
}

// benchedPipe is one of the pipes BenchmarkPipe compares.
type benchedPipe struct {
	r          io.Reader
	w          io.Writer
	end        func() error // the writer is done
	writeChunk func(p []byte) error
	writeTo    func(dst io.Writer) (int64, error)
}

func newStreamPipe(hwm int) benchedPipe {
	return newStreamPipeOpts(stream.Options{HighWaterMark: hwm})
}

func newStreamPipeOpts(opts stream.Options) benchedPipe {
	r, w := stream.Pipe(opts)
	return benchedPipe{
		r: r, w: w, end: w.Close, writeTo: r.WriteTo,
		writeChunk: func(p []byte) error {
			if !w.WriteChunk(p, nil) {
				<-w.Ready()
			}
			return nil
		},
	}
}

func newRingPipe(size int) benchedPipe {
	p := newRing(size)
	return benchedPipe{r: p, w: p, end: p.Close}
}

// benchPipe runs one case: chunked uses writeChunk and writeTo, else the
// writer's Write and a Read loop.
func benchPipe(b *testing.B, p benchedPipe, chunked bool) {
	b.ReportAllocs()
	b.SetBytes(pipeChunk)
	chunk := filled(pipeChunk)
	got := make(chan int64, 1)
	fail := make(chan error, 1)
	go func() {
		var (
			n   int64
			err error
		)
		if chunked {
			var c counter
			_, err = p.writeTo(&c)
			n = c.n
		} else {
			n, err = readAll(p.r)
		}
		if err != nil {
			fail <- err
		}
		got <- n
	}()
	allocs := startAllocs()
	start := time.Now()
	var writes int64
	for b.Loop() {
		writes++
		var err error
		if chunked {
			err = p.writeChunk(chunk)
		} else {
			_, err = p.w.Write(chunk)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := p.end(); err != nil {
		b.Fatal(err)
	}
	var n int64
	select {
	case n = <-got:
	case <-time.After(*closeTimeout):
		b.Fatalf("reader not done %v after the writer", *closeTimeout)
	}
	reportRate(b, start, writes, writes*pipeChunk)
	allocs.report(b, writes)
	select {
	case err := <-fail:
		b.Fatal(err)
	default:
	}
	checkBytes(b, n, writes*pipeChunk)
}

// readAll reads r to EOF with a pipeReadBuf buffer and counts the bytes.
func readAll(r io.Reader) (int64, error) {
	buf := make([]byte, pipeReadBuf)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// counter is an io.Writer that counts bytes.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// ring is a buffered pipe written the straightforward way: a fixed ring
// buffer under one mutex, with a sync.Cond for each side, as djherbis/nio
// and most hand-made buffered pipes are. Write blocks while the ring is
// full, Read while it is empty.
type ring struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	buf      []byte
	start, n int
	closed   bool
}

func newRing(size int) *ring {
	p := &ring{buf: make([]byte, size)}
	p.notEmpty.L = &p.mu
	p.notFull.L = &p.mu
	return p
}

var errRingClosed = errors.New("ring: write after close")

func (p *ring) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for p.n == len(p.buf) && !p.closed {
			p.notFull.Wait()
		}
		if p.closed {
			return written, errRingClosed
		}
		end := (p.start + p.n) % len(p.buf)
		room := len(p.buf) - p.n
		if end+room > len(p.buf) {
			room = len(p.buf) - end // up to the wrap; the next turn takes the rest
		}
		k := copy(p.buf[end:end+room], b)
		p.n += k
		written += k
		b = b[k:]
		p.notEmpty.Signal()
	}
	return written, nil
}

func (p *ring) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n == 0 && !p.closed {
		p.notEmpty.Wait()
	}
	if p.n == 0 {
		return 0, io.EOF
	}
	read := 0
	for read < len(b) && p.n > 0 {
		k := copy(b[read:], p.buf[p.start:min(p.start+p.n, len(p.buf))])
		p.start = (p.start + k) % len(p.buf)
		p.n -= k
		read += k
	}
	p.notFull.Signal()
	return read, nil
}

func (p *ring) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.notEmpty.Broadcast()
	p.notFull.Broadcast()
	return nil
}
