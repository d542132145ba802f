package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
)

// Issue 8's stress test: 32 goroutines log JSON lines of random length
// into one stream, through slog's JSON handler or raw fmt.Fprintf, into a
// file or over a loopback TCP connection, while another goroutine calls
// End and Close in the middle. Every line whose write returned nil must be in the
// output, whole, each goroutine's lines in order; every write that started
// after End, and every one that failed, got ErrWriteAfterEnd, and no write
// succeeded after one of the same goroutine failed; the stream finishes
// what it accepted, so Close returns nil (rule 7: late writes fail alone).
//
// Lines per goroutine: 20,000 (the figure) with -stress.long;
// otherwise 2,000, or 500 under the race detector, which keeps each of the
// four runs to about a second on the project's 2-core machines.
func TestStressLoggingWhileClosing(t *testing.T) {
	const goroutines = 32
	perGoroutine := 2000
	switch {
	case *stressLong:
		perGoroutine = 20000
	case raceEnabled:
		perGoroutine = 500
	}
	for _, via := range []string{"slog", "Fprintf"} {
		for _, into := range []string{"OpenFile", "TCP"} {
			t.Run(via+" into "+into, func(t *testing.T) {
				var open func(t *testing.T) (*stream.Writable, func() []byte)
				if into == "OpenFile" {
					open = openFileSink
				} else {
					open = openTCPSink
				}
				runLoggingStress(t, via, open, goroutines, perGoroutine)
			})
		}
	}
}

// openFileSink opens a stream onto a new file; output returns the file's
// contents once the stream has closed.
func openFileSink(t *testing.T) (*stream.Writable, func() []byte) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	w, err := stream.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644, stream.Options{})
	require.NoError(t, err, "OpenFile")
	return w, func() []byte {
		out, err := os.ReadFile(path)
		require.NoError(t, err, "reading the log file")
		return out
	}
}

// openTCPSink opens a stream onto a loopback TCP connection whose peer
// reads everything; output closes the connection once the stream has
// closed and returns what the peer read.
func openTCPSink(t *testing.T) (*stream.Writable, func() []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listen on loopback")
	type result struct {
		data []byte
		err  error
	}
	read := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		ln.Close()
		if err != nil {
			read <- result{err: err}
			return
		}
		defer conn.Close()
		data, err := io.ReadAll(conn)
		read <- result{data, err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err, "dial the reader")
	w := stream.FromWriter(conn, stream.Options{})
	return w, func() []byte {
		require.NoError(t, conn.Close(), "closing the connection after the stream closed")
		r := recvWithin(t, read, "the peer to read to EOF")
		require.NoError(t, r.err, "the peer's read")
		return r.data
	}
}

// stressPad returns the pad of line s of goroutine g: 10 to 1000 bytes,
// spread over the lines.
func stressPad(g, s int) []byte { return lineFill(g, s, 10+(g*7919+s*104729)%991) }

// parseJSONLine parses a line written by slog's JSON handler, checking
// that its pad is the one of its goroutine and sequence number.
func parseJSONLine(line []byte) (g, s int, ok bool) {
	var rec struct {
		G, S *int
		Pad  string
	}
	if json.Unmarshal(line, &rec) != nil || rec.G == nil || rec.S == nil {
		return 0, 0, false
	}
	g, s = *rec.G, *rec.S
	return g, s, rec.Pad == string(stressPad(g, s))
}

func runLoggingStress(t *testing.T, via string, open func(*testing.T) (*stream.Writable, func() []byte), goroutines, perGoroutine int) {
	w, output := open(t)

	// writeLine writes line s of goroutine g and returns its error. The
	// handlers are shared by 8 goroutines each: slog serialises the Writes
	// of one handler under its own mutex, the stream those of different
	// handlers. Handle is called directly because Logger.Info drops the
	// Write's error.
	var writeLine func(g, s int) error
	parse := parseTestLine
	switch via {
	case "slog":
		handlers := make([]slog.Handler, 4)
		for i := range handlers {
			handlers[i] = slog.NewJSONHandler(w, nil)
		}
		writeLine = func(g, s int) error {
			r := slog.NewRecord(time.Time{}, slog.LevelInfo, "line", 0)
			r.AddAttrs(slog.Int("g", g), slog.Int("s", s), slog.String("pad", string(stressPad(g, s))))
			return handlers[g%len(handlers)].Handle(context.Background(), r)
		}
		parse = parseJSONLine
	default:
		writeLine = func(g, s int) error {
			pad := stressPad(g, s)
			line := testLine(g, s, lineHeaderLen+len(pad)+1)
			n, err := fmt.Fprintf(w, "%s%s\n", line[:lineHeaderLen], pad)
			if err != nil && n != 0 {
				// Not %w: a line cut short is a failure of its own.
				return fmt.Errorf("%d of its %d bytes accepted, then %v", n, len(line), err)
			}
			return err
		}
	}

	var (
		total    atomic.Int64 // lines accepted so far
		ended    atomic.Bool  // set once End has returned
		half     = make(chan struct{})
		halfway  = sync.OnceFunc(func() { close(half) })
		closeErr = make(chan error, 1)
	)
	go func() {
		<-half
		// End first, so that a write that saw ended started after End.
		w.End()
		ended.Store(true)
		closeErr <- w.Close()
	}()

	accepted := make([]int, goroutines)
	problems := make(chan string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			failed := false
			for s := range perGoroutine {
				late := ended.Load()
				err := writeLine(g, s)
				switch {
				case err == nil && (failed || late):
					problems <- fmt.Sprintf("goroutine %d: line %d accepted after End (failed before: %v)", g, s, failed)
					return
				case err == nil:
					accepted[g]++
					if total.Add(1) == int64(goroutines*perGoroutine/2) {
						halfway()
					}
				case !errors.Is(err, stream.ErrWriteAfterEnd):
					problems <- fmt.Sprintf("goroutine %d, line %d: %v (want ErrWriteAfterEnd, nothing accepted)", g, s, err)
					return
				default:
					failed = true
				}
			}
		})
	}
	if !waitedFor(&wg) {
		w.Destroy(errors.New("test timed out")) // the writers' next write fails
		wg.Wait()
		t.Fatalf("the logging goroutines did not finish within %v", waitTimeout)
	}
	halfway() // in case too few lines were accepted: Close all the same
	close(problems)
	for p := range problems {
		assert.Fail(t, p, "a write's outcome")
	}
	require.NoError(t, recvWithin(t, closeErr, "Close, called in the middle"), "Close: the stream finishes what it accepted")
	checkLines(t, output(), accepted, parse)
	t.Logf("%d of %d lines accepted before End", total.Load(), goroutines*perGoroutine)
}
