package bench

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/streamkit/stream"
)

// tcpChunk is the write size of BenchmarkTCP (Node's tcp.js default).
const tcpChunk = 16 << 10

// BenchmarkTCP is Node's tcp.js: 16 KiB writes to a loopback TCP server
// (here a goroutine of the same process, which has the second core to
// itself as Node's child process has) that reads with a 64 KiB buffer,
// counts the bytes and, at EOF, answers "ok <n>". The client checks the
// answer. One iteration is one 16 KiB write; writes/s and MB/s run from the
// first write to the server's answer, like Node's.
//
//	FromWriter     WriteChunk into stream.FromWriter(conn), default options
//	               (node tcp.js N*16K plain 16K child)
//	FromWriter-HWM256KiB
//	               the same with HighWaterMark 256 KiB, so that chunks pile
//	               up while the socket is busy and go out as one writev
//	               (not a compare row: Node's side keeps its 16 KiB mark)
//	conn.Write     the plain loop, one write(2) per chunk
//	net.Buffers16  the Go floor: 16 chunks per net.Buffers.WriteTo, one writev(2)
//	               (as Node's tcp.js cork16)
func BenchmarkTCP(b *testing.B) {
	for _, tc := range []struct {
		name string
		run  func(b *testing.B, conn *net.TCPConn) (writes int64)
	}{
		{"FromWriter", func(b *testing.B, conn *net.TCPConn) int64 { return tcpFromWriter(b, conn, 0) }},
		{"FromWriter-HWM256KiB", func(b *testing.B, conn *net.TCPConn) int64 { return tcpFromWriter(b, conn, 256<<10) }},
		{"conn.Write", tcpConnWrite},
		{"net.Buffers16", tcpBuffers16},
	} {
		b.Run(tc.name+"/16KiB", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(tcpChunk)
			conn, answer := dialDrainServer(b)
			defer conn.Close()

			allocs := startAllocs()
			start := time.Now()
			writes := tc.run(b, conn)
			if err := conn.CloseWrite(); err != nil {
				b.Fatal(err)
			}
			got, err := io.ReadAll(conn)
			if err != nil {
				b.Fatal(err)
			}
			reportRate(b, start, writes, writes*tcpChunk)
			allocs.report(b, writes)
			if want := "ok " + strconv.FormatInt(writes*tcpChunk, 10); string(got) != want {
				b.Fatalf("server answered %q, want %q", got, want)
			}
			if err := <-answer; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func tcpFromWriter(b *testing.B, conn *net.TCPConn, hwm int) int64 {
	chunk := filled(tcpChunk)
	w := stream.FromWriter(conn, stream.Options{HighWaterMark: hwm})
	var writes int64
	for b.Loop() {
		writes++
		if !w.WriteChunk(chunk, nil) {
			<-w.Ready()
		}
	}
	// FromWriter never closes conn: the caller half-closes it.
	endAndWait(b, w)
	return writes
}

func tcpConnWrite(b *testing.B, conn *net.TCPConn) int64 {
	chunk := filled(tcpChunk)
	var writes int64
	for b.Loop() {
		writes++
		if _, err := conn.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	return writes
}

func tcpBuffers16(b *testing.B, conn *net.TCPConn) int64 {
	chunk := filled(tcpChunk)
	var (
		batch  [16][]byte
		n      int
		writes int64
	)
	flush := func() {
		bufs := net.Buffers(batch[:n])
		if _, err := bufs.WriteTo(conn); err != nil {
			b.Fatal(err)
		}
		n = 0
	}
	for b.Loop() {
		writes++
		batch[n] = chunk
		if n++; n == len(batch) {
			flush()
		}
	}
	if n > 0 {
		flush()
	}
	return writes
}

// dialDrainServer starts a one-connection server on 127.0.0.1 that drains
// what it gets and answers "ok <bytes>" at EOF, and connects to it. The
// channel gets the server's error (or nil) once it is done.
func dialDrainServer(b *testing.B) (*net.TCPConn, <-chan error) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	answer := make(chan error, 1)
	go func() {
		answer <- drainOne(ln)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		b.Fatal(err)
	}
	return c.(*net.TCPConn), answer
}

func drainOne(ln net.Listener) error {
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(c, "ok %d", n); err != nil {
		return err
	}
	return nil
}
