//go:build unix

package stream

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The non-blocking first attempt on sockets (trySocket): an idle socket
// takes a chunk inside the sink call, a full one leaves it to the adapter's
// goroutine, and a reset reaches the write that met it.

// tryWait bounds the waits of these tests.
const tryWait = 10 * time.Second

// seqChunks returns count chunks of size bytes, each holding its index
// in every 8-byte word, so that a lost or reordered chunk shows.
func seqChunks(count, size int) [][]byte {
	chunks := make([][]byte, count)
	for i := range chunks {
		c := make([]byte, size)
		for j := 0; j+8 <= size; j += 8 {
			binary.LittleEndian.PutUint64(c[j:], uint64(i))
		}
		chunks[i] = c
	}
	return chunks
}

// readSum is the length and SHA-256 of what a peer read.
type readSum struct {
	n   int64
	sum [sha256.Size]byte
}

// drainTo reads conn to EOF in the background and delivers what it read.
func drainTo(conn net.Conn) <-chan readSum {
	got := make(chan readSum, 1)
	go func() {
		h := sha256.New()
		n, _ := io.Copy(h, conn)
		got <- readSum{n, [sha256.Size]byte(h.Sum(nil))}
	}()
	return got
}

func sumOf(chunks [][]byte) readSum {
	h := sha256.New()
	var n int64
	for _, c := range chunks {
		h.Write(c)
		n += int64(len(c))
	}
	return readSum{n, [sha256.Size]byte(h.Sum(nil))}
}

// recvTry receives from ch, failing the test after tryWait.
func recvTry[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(tryWait):
		require.FailNow(t, "timed out waiting for "+what)
		panic("unreachable")
	}
}

// checkRead checks that the peer read exactly chunks, in order.
func checkRead(t *testing.T, got <-chan readSum, chunks [][]byte) {
	t.Helper()
	want, r := sumOf(chunks), recvTry(t, got, "the server to reach EOF")
	assert.Equal(t, want.n, r.n, "bytes the server read")
	assert.Equal(t, want.sum, r.sum, "SHA-256 of what the server read: every chunk, in order")
}

func TestFromWriterTCPIdleSocketWritesInline(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	client, server := tcpPairInternal(t)
	defer server.Close()
	got := drainTo(server)
	s := newWriterSink(client, client, Options{})
	w := s.stream
	// 50 chunks of a quarter of the default mark, the shortest tried
	// inline: 200 KiB, far less than the socket buffers.
	chunks := seqChunks(50, DefaultHighWaterMark/4)
	for i, c := range chunks {
		called := make(chan error, 1)
		ok := w.WriteChunk(c, func(err error) { called <- err })
		// Inline, the sink call has completed when WriteChunk returns: no
		// write in flight, nothing buffered. Handed to a goroutine, the
		// call would still be pending (or the counter would not move).
		st := w.State()
		require.False(t, st.Writing, "chunk %d: a write in flight after WriteChunk returned", i)
		require.Zero(t, st.Length, "chunk %d: bytes buffered after WriteChunk returned", i)
		require.True(t, ok, "chunk %d: WriteChunk's result", i)
		require.Equal(t, int64(i+1), s.inline.Load(), "chunk %d: writes completed inline", i)
		require.NoError(t, recvTry(t, called, "a callback"), "chunk %d: callback", i)
	}
	// A shorter chunk goes to the goroutine, so that others can pile up
	// behind it.
	short := seqChunks(1, DefaultHighWaterMark/4-8)[0]
	called := make(chan error, 1)
	w.WriteChunk(short, func(err error) { called <- err })
	require.NoError(t, recvTry(t, called, "the short chunk's callback"), "the short chunk's callback")
	assert.Equal(t, int64(len(chunks)), s.inline.Load(), "writes completed inline, after a chunk under a quarter of the mark")
	require.NoError(t, w.Close(), "Close")
	checkRead(t, got, append(chunks, short))
	assert.Zero(t, s.batches.Load(), "Writev calls: nothing ever piled up")
}

// A peer that does not read fills the socket: the first attempt then
// leaves the chunk (or its rest) to the goroutine, the chunks written
// meanwhile pile up and go out as writev batches once the peer reads, and
// every byte arrives in order.
func TestFromWriterTCPFullSocketFallsBackToTheGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	client, server := tcpPairInternal(t)
	defer server.Close()
	require.NoError(t, client.(*net.TCPConn).SetWriteBuffer(64<<10), "shrinking the send buffer")
	require.NoError(t, server.(*net.TCPConn).SetReadBuffer(64<<10), "shrinking the receive buffer")
	s := newWriterSink(client, client, Options{HighWaterMark: 256 << 10})
	w := s.stream
	chunks := seqChunks(128, 64<<10) // 8 MiB in chunks of a quarter of the mark
	produced := make(chan error, 1)
	go func() {
		for _, c := range chunks {
			if !w.WriteChunk(c, nil) {
				<-w.Ready()
			}
		}
		produced <- w.Err()
	}()
	deadline := time.Now().Add(tryWait)
	for st := w.State(); !st.Writing || !st.NeedDrain; st = w.State() {
		require.True(t, time.Now().Before(deadline), "the stream did not back up behind a peer that does not read: %+v", st)
		time.Sleep(time.Millisecond)
	}
	assert.Positive(t, s.inline.Load(), "writes completed inline before the socket filled")
	// A write in flight while WriteChunk has returned: the goroutine has it.

	got := drainTo(server)
	require.NoError(t, recvTry(t, produced, "the producer, once the peer reads"), "the producer")
	require.NoError(t, w.Close(), "Close")
	checkRead(t, got, chunks)
	assert.Positive(t, s.batches.Load(), "Writev calls of the chunks that piled up")
	assert.Equal(t, s.batches.Load(), s.vectoredCalls.Load(), "every batch went out as one net.Buffers.WriteTo")
	t.Logf("%d chunks: %d written inline, %d Writev calls", len(chunks), s.inline.Load(), s.batches.Load())
}

// A peer that resets the connection while the socket has room: the write
// that meets the reset fails inline, with the error net.Conn.Write would
// give, and only its callback and the later writes get it.
func TestFromWriterTCPResetFailsTheInlineWrite(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	client, server := tcpPairInternal(t)
	s := newWriterSink(client, nil, Options{HighWaterMark: 4}) // every chunk is tried inline
	defer client.Close()
	w := s.stream
	const before = 64 << 10
	read := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, server, before)
		if err == nil {
			err = server.(*net.TCPConn).SetLinger(0) // Close sends a RST
		}
		if cerr := server.Close(); err == nil {
			err = cerr
		}
		read <- err
	}()
	write := func(c []byte) error {
		called := make(chan error, 1)
		w.WriteChunk(c, func(err error) { called <- err })
		return recvTry(t, called, "a write's callback")
	}
	for _, c := range seqChunks(before/1024, 1024) {
		require.NoError(t, write(c), "a write before the reset")
	}
	require.NoError(t, recvTry(t, read, "the peer's reset"), "the peer reading, then resetting")

	// The RST may take a moment to be processed: writes succeed until then.
	var err error
	inlineBefore := s.inline.Load()
	writes := 0
	for err == nil {
		require.Less(t, writes, 1000, "writes kept succeeding after the reset")
		writes++
		err = write([]byte("after the reset"))
	}
	assert.Equal(t, inlineBefore+int64(writes), s.inline.Load(), "every write after the reset, the failed one too, completed inline")
	assert.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE), "the failed write's callback gets the reset: %v", err)
	var opErr *net.OpError
	if assert.ErrorAs(t, err, &opErr, "the error is a *net.OpError, as net.Conn.Write returns") {
		assert.Equal(t, "write", opErr.Op, "OpError.Op")
		assert.Equal(t, client.RemoteAddr(), opErr.Addr, "OpError.Addr")
	}
	assert.Equal(t, err, w.Err(), "the reset is the stream's error")
	late := write([]byte("late"))
	assert.ErrorIs(t, late, ErrDestroyed, "a later write's callback")
	assert.ErrorIs(t, late, err, "a later write's callback names the reset")
	assert.Equal(t, err, w.Close(), "Close")
}

// Other writers never take the inline path.
func TestFromWriterTrySocketOnlyForSockets(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	client, server := tcpPairInternal(t)
	defer client.Close()
	defer server.Close()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	for _, tt := range []struct {
		desc string
		w    io.Writer
		want bool
	}{
		{"a TCP connection", client, true},
		{"net.Pipe: no descriptor", a, false},
		{"a bytes.Buffer", &bytes.Buffer{}, false},
	} {
		s := newWriterSink(tt.w, nil, Options{})
		assert.Equal(t, tt.want, s.try != nil, "%s: tries inline writes", tt.desc)
		require.NoError(t, s.stream.Close(), "%s: Close", tt.desc)
	}
}
