package stream_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
)

// waitTimeout bounds every wait of these tests: long enough for a loaded CI
// machine, short enough that a missing feature fails rather than hangs.
const waitTimeout = 10 * time.Second

// requireClosed waits for w to close, failing the test after waitTimeout.
func requireClosed(t testing.TB, w *stream.Writable, msg string) {
	t.Helper()
	select {
	case <-w.Done():
	case <-time.After(waitTimeout):
		require.FailNow(t, "stream did not close: "+msg, "state %+v", w.State())
	}
}

// recvWithin receives from ch, failing the test after waitTimeout.
func recvWithin[T any](t testing.TB, ch <-chan T, msg string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		require.FailNow(t, "timed out waiting: "+msg)
		panic("unreachable")
	}
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		p[i] = byte(r.Uint32())
	}
	return p
}

// memSink is a WriteFunc that keeps what it receives; it completes each
// write on a goroutine of its own, as a real asynchronous sink would.
type memSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	n     atomic.Int64
	first chan struct{} // closed at the first byte received
	once  sync.Once
	fail  error // if set, every write fails with it
}

func newMemSink() *memSink { return &memSink{first: make(chan struct{})} }

func (s *memSink) write(chunk []byte, done stream.Callback) {
	s.mu.Lock()
	s.buf.Write(chunk)
	s.mu.Unlock()
	s.n.Add(int64(len(chunk)))
	if len(chunk) > 0 {
		s.once.Do(func() { close(s.first) })
	}
	go done(s.fail)
}

func (s *memSink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// closeCounter wraps a reader as an io.ReadCloser that counts its Close
// calls and the bytes read. Close is safe to call while Read runs.
type closeCounter struct {
	r      io.Reader
	read   atomic.Int64
	closes atomic.Int32
}

func (c *closeCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *closeCounter) Close() error {
	c.closes.Add(1)
	return nil
}

// zeroReader reads size zero bytes, counting them.
type zeroReader struct {
	left int64
	read atomic.Int64
}

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.left))
	clear(p[:n])
	z.left -= int64(n)
	z.read.Add(int64(n))
	return n, nil
}

// failAfterReader returns data, then fails with err.
type failAfterReader struct {
	data []byte
	err  error
}

func (f *failAfterReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

var errTest = errors.New("test error")

const millisecond = time.Millisecond

type atomic64 struct{ v atomic.Int64 }

func (a *atomic64) add(d int64) { a.v.Add(d) }
func (a *atomic64) load() int64 { return a.v.Load() }
