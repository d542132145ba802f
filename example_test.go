package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/streamkit/stream"
)

// A stream hands each chunk to its sink; Close ends the stream and waits
// until every byte reached the sink.
func ExampleNewWritable() {
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		fmt.Printf("sink got %q\n", chunk)
		done(nil)
	}, stream.Options{})

	w.WriteChunk([]byte("hello, "), nil)
	fmt.Fprintf(w, "world")
	w.WriteChunk([]byte("!"), nil)    // the last chunk (Node's end(chunk)) ...
	if err := w.Close(); err != nil { // ... then end and wait for "close"
		fmt.Println("close:", err)
	}
	fmt.Println("closed")
	// Output:
	// sink got "hello, "
	// sink got "world"
	// sink got "!"
	// closed
}

// The backpressure loop, Node's writeMany translated: write until
// WriteChunk returns false, then Wait for room. Length never goes more than
// one chunk past the high-water mark, and the loop ends with the stream's
// error if the sink fails.
func ExampleWritable_Wait() {
	const hwm, lines = 64, 1000
	line := []byte("0123456789abcde\n")

	pending := make(chan stream.Callback, 1)
	var w *stream.Writable
	received, peak := 0, 0
	w = stream.NewWritable(func(chunk []byte, done stream.Callback) {
		received += len(chunk)
		peak = max(peak, w.State().Length)
		pending <- done // a worker completes it later
	}, stream.Options{HighWaterMark: hwm})
	go func() {
		for done := range pending {
			done(nil)
		}
	}()

	waits := 0
	for range lines {
		if !w.WriteChunk(line, nil) {
			waits++
			if err := w.Wait(context.Background()); err != nil { // the next "drain"
				fmt.Println("stream failed:", err)
				break
			}
		}
	}
	err := w.Close()
	close(pending)

	fmt.Println("close:", err)
	fmt.Println("sink received", received, "bytes")
	fmt.Println("waited for drain:", waits > 0)
	fmt.Println("peak Length within high-water mark + one chunk:", peak <= hwm+len(line))
	// Output:
	// close: <nil>
	// sink received 16000 bytes
	// waited for drain: true
	// peak Length within high-water mark + one chunk: true
}

// A sink may complete a write later, from another goroutine: here a worker
// goroutine owns the output and calls done once it has written a chunk.
// done hands the next buffered chunk to the sink before it returns, on the
// worker's goroutine, so the sink must not wait for the worker: the channel
// has room for the one call that can be in flight.
func ExampleWriteFunc() {
	type job struct {
		chunk []byte
		done  stream.Callback
	}
	jobs := make(chan job, 1)
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		for j := range jobs {
			fmt.Print(strings.ToUpper(string(j.chunk)))
			j.done(nil)
		}
	}()

	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		jobs <- job{chunk, done}
	}, stream.Options{
		Destroy: func(err error, done stream.Callback) {
			close(jobs) // release the worker with the stream
			<-workerDone
			done(nil)
		},
	})
	for _, word := range []string{"one ", "two ", "three\n"} {
		w.WriteString(word)
	}
	fmt.Println("close:", w.Close())
	// Output:
	// ONE TWO THREE
	// close: <nil>
}

// Cork batches writes; Uncork flushes them, all in one Writev call.
func ExampleWritable_Cork() {
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		fmt.Printf("write %q\n", chunk)
		done(nil)
	}, stream.Options{
		Writev: func(chunks [][]byte, done stream.Callback) {
			fmt.Printf("writev %q\n", chunks)
			done(nil)
		},
	})

	w.Cork()
	w.WriteChunk([]byte("a"), nil)
	w.WriteChunk([]byte("b"), nil)
	w.WriteChunk([]byte("c"), nil)
	fmt.Println("buffered while corked:", w.State().Buffered)
	w.Uncork()

	w.WriteChunk([]byte("d"), nil) // the sink is free: straight through
	w.Close()
	// Output:
	// buffered while corked: 3
	// writev ["a" "b" "c"]
	// write "d"
}

// "finish" means every write completed and Final succeeded; "close" comes
// after the Destroy hook released the sink's resources.
func ExampleWritable_OnFinish() {
	var log []string
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		done(nil)
	}, stream.Options{
		Final: func(done stream.Callback) {
			log = append(log, "final: flush what the sink holds")
			done(nil)
		},
		Destroy: func(err error, done stream.Callback) {
			log = append(log, fmt.Sprintf("destroy hook (err=%v): release resources", err))
			done(nil)
		},
	})
	w.OnFinish(func() { log = append(log, "finish") })
	w.OnClose(func() { log = append(log, "close") })
	w.WriteChunk([]byte("data"), func(err error) {
		log = append(log, fmt.Sprintf("write callback: %v", err))
	})

	err := w.Close() // the handlers ran before Close returned
	fmt.Println(strings.Join(log, "\n"))
	fmt.Println("Close:", err)
	// Output:
	// write callback: <nil>
	// final: flush what the sink holds
	// finish
	// destroy hook (err=<nil>): release resources
	// close
	// Close: <nil>
}

// A sink error fails the write that saw it and every write buffered after
// it, then reaches the error handlers and Close.
func ExampleWritable_OnError() {
	errDiskFull := errors.New("disk full")
	calls := 0
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		calls++
		if calls == 2 {
			done(errDiskFull)
			return
		}
		done(nil)
	}, stream.Options{})

	var log []string
	w.OnError(func(err error) { log = append(log, "error event: "+err.Error()) })
	w.OnClose(func() { log = append(log, "close") })
	w.Cork()
	for _, name := range []string{"a", "b", "c"} {
		w.WriteChunk([]byte(name), func(err error) {
			log = append(log, fmt.Sprintf("callback %s: %v", name, err))
		})
	}
	w.Uncork()

	err := w.Close()
	fmt.Println(strings.Join(log, "\n"))
	fmt.Println("Close:", err, "| is errDiskFull:", errors.Is(err, errDiskFull))
	_, err = w.Write([]byte("late"))
	fmt.Println("late Write:", err)
	// Output:
	// callback a: <nil>
	// callback b: disk full
	// callback c: disk full
	// error event: disk full
	// close
	// Close: disk full | is errDiskFull: true
	// late Write: stream: destroyed: disk full
}

// State is a snapshot of the stream, like Node's writable* getters.
func ExampleWritable_State() {
	var held []stream.Callback
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		held = append(held, done) // complete later, by hand
	}, stream.Options{HighWaterMark: 8})

	show := func(when string) {
		s := w.State()
		fmt.Printf("%-14s Length=%d Buffered=%d Writing=%t NeedDrain=%t PendingCallbacks=%d\n",
			when, s.Length, s.Buffered, s.Writing, s.NeedDrain, s.PendingCallbacks)
	}
	show("new")
	fmt.Println("write 5 bytes:", w.WriteChunk([]byte("12345"), nil))
	fmt.Println("write 5 bytes:", w.WriteChunk([]byte("67890"), nil))
	show("over the mark")
	held[0](nil) // the first write completes; the second goes to the sink
	show("one completed")
	held[1](nil)
	show("drained")
	w.End()
	<-w.Done()
	s := w.State()
	fmt.Printf("after close: Ended=%t Finished=%t Destroyed=%t Closed=%t Err=%v\n",
		s.Ended, s.Finished, s.Destroyed, s.Closed, s.Err)
	// Output:
	// new            Length=0 Buffered=0 Writing=false NeedDrain=false PendingCallbacks=0
	// write 5 bytes: true
	// write 5 bytes: false
	// over the mark  Length=10 Buffered=1 Writing=true NeedDrain=true PendingCallbacks=2
	// one completed  Length=5 Buffered=0 Writing=true NeedDrain=true PendingCallbacks=1
	// drained        Length=0 Buffered=0 Writing=false NeedDrain=false PendingCallbacks=0
	// after close: Ended=true Finished=true Destroyed=true Closed=true Err=<nil>
}

// Flush is a logger's Sync: it sends what is buffered (uncorking the
// stream) and returns once every write made before it has reached the
// sink, while the stream stays open for more.
func ExampleWritable_Flush() {
	var out strings.Builder
	w := stream.NewWritable(func(chunk []byte, done stream.Callback) {
		out.Write(chunk)
		done(nil)
	}, stream.Options{})

	w.Cork() // batch the lines of one request
	fmt.Fprintln(w, "GET /a 200")
	fmt.Fprintln(w, "GET /b 404")
	if err := w.Flush(context.Background()); err != nil {
		fmt.Println("flush:", err)
	}
	fmt.Print("after Flush: ", out.String())
	fmt.Println("still open:", !w.State().Ended)
	fmt.Println("close:", w.Close())
	// Output:
	// after Flush: GET /a 200
	// GET /b 404
	// still open: true
	// close: <nil>
}
