package stream_test

import (
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/streamkit/stream"
)

// FuzzPipe runs a writer script and a reader script on their own
// goroutines against one Pipe and checks the outcome against a byte-slice
// model: what the reader gets is always a prefix of what the writer
// wrote, byte for byte (a Write's p is overwritten once Write returns, so
// a retained p shows); io.EOF comes only after End, with every accepted
// byte read, and then both ends report success; an error reaches the
// reader only if someone destroyed or closed; each WriteChunk callback
// runs exactly once, with nil only once the reader got every byte of its
// chunk; and both ends close with no goroutine left (the test runs in a
// synctest bubble, which also fails on a deadlock: a Write left blocked, a
// reader nobody wakes).
//
// Input layout: byte 0 picks the high-water mark, byte 1 the options (bit 0
// Final, bit 1 the reader ends with WriteTo), then operations of two bytes,
// kind and argument: kinds below 0x80 are the writer's, the others the
// reader's (see pipeOp).
func FuzzPipe(f *testing.F) {
	for _, seed := range [][]byte{
		{1, 0, 0, 10, 1, 20, 2, 5, 0x80, 3, 0x80, 50},
		{0, 1, 0, 200, 0, 200, 0x80, 1, 0x80, 1, 0x80, 255},
		{2, 2, 1, 255, 1, 255, 3, 4, 0x80, 7},
		{1, 0, 0, 100, 0x81, 0, 1, 100, 1, 100},
		{1, 0, 0, 100, 0, 100, 5, 0, 0x80, 3},
		{3, 0, 1, 30, 6, 0, 0x80, 8, 0x82, 0},
		{0, 3, 4, 0, 0, 0, 1, 0, 0x80, 0, 0x80, 1},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) { runPipeScript(t, data) })
	})
}

// Writer ops: kind%8 of the kinds below 0x80. Reader ops: kind%4 of the
// others.
const (
	pipeWriteChunk  = iota // WriteChunk of arg bytes with a callback, waiting on Ready after false
	pipeWrite              // Write of arg*4 bytes
	pipeWriteString        // WriteString of arg bytes
	pipeCorked             // Cork, arg%4+1 WriteChunks of 16 bytes (results ignored), Uncork
	pipeWriteNil           // WriteChunk of arg bytes, no callback
	pipeDestroyErr         // Destroy(errWriter); the writer's script stops
	pipeDestroyNil         // Destroy(nil); stops
	pipeEnd                // End; stops
)

const (
	pipeRead      = iota // Read into arg%97+1 bytes
	pipeClose            // Close; the reader's script stops
	pipeCloseErr         // CloseWithError(errReader); stops
	pipeReadEmpty        // Read(nil)
)

var (
	errWriter = errors.New("writer's error")
	errReader = errors.New("reader's error")
)

var pipeHWMs = [...]int{1, 7, 64, 1000, 16 << 10}

// pipeByte is the byte at offset i of everything the writer writes.
func pipeByte(i int) byte { return byte(i*7 + i>>8) }

func runPipeScript(t *testing.T, data []byte) {
	if len(data) < 2 {
		return
	}
	hwm, flags, ops := pipeHWMs[int(data[0])%len(pipeHWMs)], data[1], data[2:]
	opts := stream.Options{HighWaterMark: hwm}
	if flags&1 != 0 {
		opts.Final = func(done stream.Callback) { done(nil) }
	}
	var writerOps, readerOps [][2]byte
	for i := 0; i+1 < len(ops); i += 2 {
		op := [2]byte{ops[i], ops[i+1]}
		if op[0] < 0x80 {
			writerOps = append(writerOps, op)
		} else {
			readerOps = append(readerOps, op)
		}
	}
	r, w := stream.Pipe(opts)

	// The writer.
	type chunkRec struct {
		end   int // offset just after the chunk
		calls int
		err   error
	}
	var (
		mu       sync.Mutex // guards chunks: callbacks run on other goroutines
		chunks   []*chunkRec
		off      int // bytes attempted
		ended    bool
		stopErr  error // the Destroy error, or errWriter... for the checks
		stopped  bool  // a Destroy ran
		closeErr error
	)
	next := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = pipeByte(off + i)
		}
		off += n
		return p
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
	script:
		for _, op := range writerOps {
			arg := int(op[1])
			switch op[0] % 8 {
			case pipeWriteChunk:
				rec := &chunkRec{}
				p := next(arg)
				rec.end = off
				mu.Lock()
				chunks = append(chunks, rec)
				mu.Unlock()
				if !w.WriteChunk(p, func(err error) {
					mu.Lock()
					rec.calls++
					rec.err = err
					mu.Unlock()
				}) {
					<-w.Ready()
				}
			case pipeWrite:
				p := next(arg * 4)
				n, err := w.Write(p)
				for i := range p {
					p[i] = 0xFF // Write must not keep p
				}
				if err == nil && n != len(p) {
					t.Errorf("Write returned %d of %d without an error", n, len(p))
				}
				off -= len(p) - n // what was not accepted was not written
				if err != nil {
					break script // later bytes would not match the offsets
				}
			case pipeWriteString:
				p := next(arg)
				n, err := w.WriteString(string(p))
				off -= len(p) - n
				if err != nil {
					break script
				}
			case pipeCorked:
				w.Cork()
				for range arg%4 + 1 {
					w.WriteChunk(next(16), nil)
				}
				w.Uncork()
				<-w.Ready()
			case pipeWriteNil:
				if !w.WriteChunk(next(arg), nil) {
					<-w.Ready()
				}
			case pipeDestroyErr:
				stopErr, stopped = errWriter, true
				w.Destroy(errWriter)
				break script
			case pipeDestroyNil:
				stopErr, stopped = stream.ErrDestroyed, true
				w.Destroy(nil)
				break script
			case pipeEnd:
				break script
			}
		}
		if !stopped {
			ended = true
		}
		closeErr = w.Close()
	}()

	// The reader, on this goroutine.
	var (
		got       []byte
		readErr   error
		closedBy  error // the reader's close error, if it closed
		buf       = make([]byte, 256)
		readerEOF bool
	)
	read := func(n int) bool {
		k, err := r.Read(buf[:n])
		got = append(got, buf[:k]...)
		if err != nil {
			readErr = err
			readerEOF = err == io.EOF
			return false
		}
		return true
	}
readScript:
	for _, op := range readerOps {
		switch op[0] % 4 {
		case pipeRead:
			if !read(int(op[1])%97 + 1) {
				break readScript
			}
		case pipeClose:
			closedBy = io.ErrClosedPipe
			r.Close()
			break readScript
		case pipeCloseErr:
			closedBy = errReader
			r.CloseWithError(errReader)
			break readScript
		case pipeReadEmpty:
			if n, err := r.Read(nil); n != 0 {
				t.Errorf("Read(nil) = %d, %v", n, err)
			}
		}
	}
	if closedBy == nil && readErr == nil {
		if flags&2 != 0 {
			var sink bytesSink
			_, readErr = r.WriteTo(&sink)
			got = append(got, sink.b...)
			if readErr == nil {
				readErr, readerEOF = io.EOF, true
			}
		} else {
			for read(len(buf)) {
			}
		}
	}
	r.Close()
	<-writerDone
	<-w.Done()

	for i, b := range got {
		if b != pipeByte(i) {
			t.Fatalf("byte %d read is %#x, want %#x (read %d bytes)", i, b, pipeByte(i), len(got))
		}
	}
	if len(got) > off {
		t.Fatalf("read %d bytes, %d were written", len(got), off)
	}
	switch {
	case readerEOF:
		if !ended {
			t.Fatalf("io.EOF without End")
		}
		if len(got) != off {
			t.Fatalf("io.EOF after %d bytes of %d", len(got), off)
		}
		if closeErr != nil {
			t.Fatalf("the reader got everything and EOF, but the write end's Close returned %v", closeErr)
		}
	case readErr != nil:
		if !errors.Is(readErr, stopErr) || stopErr == nil {
			t.Fatalf("Read failed with %v, the writer stopped with %v", readErr, stopErr)
		}
	case closedBy == nil:
		t.Fatalf("the reader stopped with no error and no Close")
	}
	if closedBy == nil && !stopped && !readerEOF {
		t.Fatalf("nobody destroyed or closed, yet no EOF (read error %v)", readErr)
	}
	if stopped && closeErr == nil {
		t.Fatalf("the writer destroyed its end, yet Close returned nil")
	}
	synctest.Wait() // the callbacks of writes made after close run after Done
	mu.Lock()
	defer mu.Unlock()
	for i, c := range chunks {
		if c.calls != 1 {
			t.Fatalf("callback of chunk %d ran %d times", i, c.calls)
		}
		if c.err == nil && c.end > len(got) {
			t.Fatalf("chunk %d (up to byte %d) succeeded with only %d bytes read", i, c.end, len(got))
		}
	}
}

// bytesSink collects what WriteTo writes, copying it: the chunks go back
// to the writer once written.
type bytesSink struct{ b []byte }

func (s *bytesSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}
