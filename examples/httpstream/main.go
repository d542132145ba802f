// Command httpstream serves an HTTP response streamed through
// stream.FromWriter, fetches it itself, and prints what arrived and when.
//
//	go run ./examples/httpstream
//
// The handler writes five events 100 ms apart, then 4 MiB of bulk data
// with stream.Pipeline. Each event reaches the client as soon as it is
// written, because the adapter flushes the response after each batch. The
// client reads the bulk part slowly (256 KiB every 20 ms), so the stream
// fills up to its high-water mark and Pipeline waits for "drain" instead
// of buffering the 4 MiB in memory: the server finishes only shortly before
// the client, and reports how many times it waited. Both ends use small
// socket buffers (64 KiB) so that the kernel cannot absorb the bulk part
// and hide the backpressure. The program exits 0 once the response is
// complete.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/streamkit/stream"
)

const (
	events       = 5
	bulkSize     = 4 << 20
	socketBuffer = 64 << 10
)

func main() {
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Fatal("httpstream: ", err)
	}
}

func run() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ln := smallBuffers{l.(*net.TCPListener)}
	start := time.Now()
	at := func() string { return fmt.Sprintf("%7.1f ms", float64(time.Since(start).Microseconds())/1000) }
	handlerDone := make(chan error, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		handlerDone <- serve(rw, r, at)
	})}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	url := "http://" + ln.Addr().String() + "/events"
	fmt.Printf("%s  client: GET %s\n", at(), url)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				err = c.(*net.TCPConn).SetReadBuffer(socketBuffer)
			}
			return c, err
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the events: %w", err)
		}
		fmt.Printf("%s  client: received %q\n", at(), line)
		if strings.HasPrefix(line, "bulk") {
			break
		}
	}
	// Read the bulk part slowly, so that the server feels backpressure.
	var got int64
	buf := make([]byte, 32<<10)
	for next := int64(256 << 10); ; {
		n, err := br.Read(buf)
		got += int64(n)
		if got >= next {
			time.Sleep(20 * time.Millisecond) // a slow client
			next += 256 << 10
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the bulk part: %w", err)
		}
	}
	fmt.Printf("%s  client: received %d bytes of bulk data, end of response\n", at(), got)
	if err := <-handlerDone; err != nil {
		return fmt.Errorf("handler: %w", err)
	}
	if got != bulkSize {
		return fmt.Errorf("got %d bytes of bulk data, want %d", got, bulkSize)
	}
	fmt.Printf("%s  done\n", at())
	return nil
}

// serve streams the response: events first, then the bulk part.
func serve(rw http.ResponseWriter, r *http.Request, at func() string) error {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// The request's context destroys the stream if the client goes away.
	w := stream.FromWriter(rw, stream.Options{HighWaterMark: 64 << 10, Context: r.Context()})
	var drains atomic.Int64
	w.OnDrain(func() { drains.Add(1) })
	for i := 1; i <= events; i++ {
		fmt.Printf("%s  server: writing event %d\n", at(), i)
		if _, err := fmt.Fprintf(w, "event %d\n", i); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond) // a producer with something to wait for
	}
	fmt.Fprintf(w, "bulk %d\n", bulkSize)
	fmt.Printf("%s  server: piping %d bytes of bulk data\n", at(), bulkSize)
	// Pipeline ends w and waits until every byte was written to rw.
	err := stream.Pipeline(r.Context(), w, io.LimitReader(zeros{}, bulkSize))
	fmt.Printf("%s  server: response complete; the writes waited for the client %d times (drains)\n", at(), drains.Load())
	return err
}

// smallBuffers is a listener whose connections have a small send buffer.
type smallBuffers struct{ *net.TCPListener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if err := c.SetWriteBuffer(socketBuffer); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
