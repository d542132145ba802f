// Command backpressure writes 100,000 lines into a deliberately slow sink
// and shows Node's backpressure loop at work in Go: write until WriteChunk
// returns false, Wait for room, go on. It prints how often backpressure
// kicked in, how many "drain" events followed, how far the buffered length
// got past the high-water mark, and the end of the stream's life cycle.
//
//	go run ./examples/backpressure
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/streamkit/stream"
)

const (
	lines         = 100_000
	highWaterMark = 16 * 1024
)

func main() {
	sink := startSlowSink()
	w := stream.NewWritable(sink.write, stream.Options{
		HighWaterMark: highWaterMark,
		Writev:        sink.writev,
		Destroy:       sink.stop,
	})

	// Handlers run on the stream's goroutines; what they record is read
	// once Close has returned, after every handler.
	drains := 0
	var lifecycle []string
	w.OnDrain(func() { drains++ })
	w.OnFinish(func() { lifecycle = append(lifecycle, `"finish": every line reached the sink`) })
	w.OnClose(func() { lifecycle = append(lifecycle, `"close":  the sink's worker has stopped`) })

	start := time.Now()
	backpressured, peak := 0, 0
	for i := range lines {
		line := fmt.Appendf(nil, "line %06d: the quick brown fox jumps over the lazy dog\n", i)
		ok := w.WriteChunk(line, nil)
		peak = max(peak, w.State().Length)
		if !ok {
			backpressured++
			// Returns at the next "drain", or with the stream's error if
			// the sink failed: the loop never spins on a dead stream.
			if err := w.Wait(context.Background()); err != nil {
				log.Fatal(err)
			}
		}
	}
	elapsed := time.Since(start)
	err := w.Close() // End, then wait for "finish" and "close"

	fmt.Printf("writes made:    %d in %v\n", lines, elapsed.Round(time.Millisecond))
	fmt.Printf("backpressure:   WriteChunk returned false %d times\n", backpressured)
	fmt.Printf("drains:         %d\n", drains)
	fmt.Printf("peak buffered:  %d bytes (high-water mark %d: at most one line over)\n", peak, highWaterMark)
	for _, event := range lifecycle {
		fmt.Println(event)
	}
	fmt.Printf("Close returned: %v\n", err)
	fmt.Printf("sink received:  %d bytes, %d lines in order, in %d calls (%d vectored)\n",
		sink.bytes, sink.lines, sink.calls, sink.vectored)
	if err != nil || sink.lines != lines || !sink.inOrder {
		os.Exit(1)
	}
}

// slowSink hands chunks to a worker goroutine that takes a millisecond per
// call, as a congested disk or network would. It checks that the lines
// arrive complete and in order.
type slowSink struct {
	jobs chan job
	quit chan struct{}

	// Owned by the worker until quit is closed.
	bytes, lines, calls, vectored int
	inOrder                       bool
	partial                       []byte
}

type job struct {
	chunks [][]byte
	done   stream.Callback
}

func startSlowSink() *slowSink {
	s := &slowSink{
		jobs:    make(chan job, 1), // room for the one call in flight
		quit:    make(chan struct{}),
		inOrder: true,
	}
	go s.run()
	return s
}

func (s *slowSink) write(chunk []byte, done stream.Callback) {
	s.jobs <- job{[][]byte{chunk}, done}
}

func (s *slowSink) writev(chunks [][]byte, done stream.Callback) {
	s.jobs <- job{chunks, done}
}

// stop is the Destroy hook: it stops the worker and waits for it.
func (s *slowSink) stop(err error, done stream.Callback) {
	close(s.jobs)
	<-s.quit
	done(nil)
}

func (s *slowSink) run() {
	defer close(s.quit)
	for j := range s.jobs {
		time.Sleep(time.Millisecond)
		s.calls++
		if len(j.chunks) > 1 {
			s.vectored++
		}
		for _, c := range j.chunks {
			s.bytes += len(c)
			s.consume(c)
		}
		j.done(nil)
	}
}

// consume checks each complete line against the number it should carry.
func (s *slowSink) consume(c []byte) {
	s.partial = append(s.partial, c...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return
		}
		want := fmt.Sprintf("line %06d:", s.lines)
		if !bytes.HasPrefix(s.partial[:i], []byte(want)) {
			s.inOrder = false
		}
		s.lines++
		s.partial = s.partial[i+1:]
	}
}
