package stream

import (
	"bytes"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// tcpPairInternal returns a client connection to a server connection on
// 127.0.0.1.
func tcpPairInternal(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listening on 127.0.0.1")
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err, "dialling the listener")
	select {
	case server = <-accepted:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "accept timed out")
	}
	require.NotNil(t, server, "accepted connection")
	return client, server
}

// Buffered chunks reach a TCP socket in one vectored write.
func TestFromWriterTCPUsesWritev(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	client, server := tcpPairInternal(t)
	defer server.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		got <- b
	}()
	s := newWriterSink(client, client, Options{})
	w := s.stream
	var want bytes.Buffer
	w.Cork()
	for i := range 16 {
		c := bytes.Repeat([]byte{'a' + byte(i)}, 100+i)
		want.Write(c)
		w.WriteChunk(c, nil)
	}
	w.Uncork()
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, int64(1), s.batches.Load(), "Writev calls for 16 corked chunks")
	assert.Equal(t, int64(1), s.vectoredCalls.Load(), "batches sent as one net.Buffers.WriteTo")
	select {
	case b := <-got:
		assert.Equal(t, want.String(), string(b), "bytes the server read, in order")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the server did not reach EOF")
	}
}

// Without corking, chunks written while the socket is busy are batched.
func TestFromWriterTCPBatchesUnderLoad(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	client, server := tcpPairInternal(t)
	defer server.Close()
	n := make(chan int64, 1)
	go func() {
		k, _ := io.Copy(io.Discard, server)
		n <- k
	}()
	s := newWriterSink(client, client, Options{HighWaterMark: 1 << 20})
	w := s.stream
	chunk := make([]byte, 512)
	const count = 20_000
	for range count {
		if !w.WriteChunk(chunk, nil) {
			<-w.Ready()
		}
	}
	require.NoError(t, w.Close(), "Close")
	assert.Positive(t, s.batches.Load(), "Writev calls while the socket was busy")
	assert.Equal(t, s.batches.Load(), s.vectoredCalls.Load(), "every batch to the socket was vectored")
	select {
	case k := <-n:
		assert.Equal(t, int64(count*len(chunk)), k, "bytes the server read")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the server did not reach EOF")
	}
	t.Logf("%d chunks in %d Writev calls", count, s.batches.Load())
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

// For a writer with no vectored write, small chunks of a batch are gathered
// into few writes; large ones go as they are. Order is kept.
func TestFromWriterGathersSmallChunks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cw := &countingWriter{}
	s := newWriterSink(cw, nil, Options{HighWaterMark: 1 << 30})
	w := s.stream
	var want bytes.Buffer
	sizes := []int{10, 20, 30, gatherChunk, 5, 6, gatherMax - 3, 7, 8, 9}
	w.Cork()
	for i, n := range sizes {
		c := bytes.Repeat([]byte{'a' + byte(i)}, n)
		want.Write(c)
		w.WriteChunk(c, nil)
	}
	for range 1000 { // 1000 chunks of 100 bytes: about 2 gathered writes
		c := bytes.Repeat([]byte{'z'}, 100)
		want.Write(c)
		w.WriteChunk(c, nil)
	}
	w.Uncork()
	require.NoError(t, w.Close(), "Close")
	assert.Equal(t, int64(1), s.batches.Load(), "one Writev call")
	assert.Zero(t, s.vectoredCalls.Load(), "no net.Buffers for a non-socket writer")
	assert.True(t, bytes.Equal(want.Bytes(), cw.Bytes()), "bytes in order")
	// [10 20 30] [16K] [5 6] [64K-3] [7 8 9 + 100s...] -> 1+1+1+1+1 writes, then
	// the 100-byte chunks fill 64 KiB writes: 100 KB in about 2 more.
	assert.LessOrEqual(t, cw.writes, 8, "Write calls for %d chunks", len(sizes)+1000)
}

// The adapter's goroutine is gone once Done is closed, also when the
// stream never wrote anything.
func TestFromWriterGoroutineEndsWithTheStream(t *testing.T) {
	tests := []struct {
		desc string
		act  func(w *Writable)
	}{
		{"no write, End", func(w *Writable) { w.End() }},
		{"writes, End", func(w *Writable) { w.WriteChunk([]byte("x"), nil); w.End() }},
		{"writes, Destroy", func(w *Writable) { w.WriteChunk([]byte("x"), nil); w.Destroy(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			pr, pw, err := os.Pipe()
			require.NoError(t, err, "os.Pipe")
			defer pr.Close()
			defer pw.Close()
			go io.Copy(io.Discard, pr)
			w := FromWriter(pw, Options{})
			tt.act(w)
			select {
			case <-w.Done():
			case <-time.After(10 * time.Second):
				require.FailNow(t, "the stream did not close")
			}
		})
	}
}
