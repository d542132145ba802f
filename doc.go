// Package stream brings Node.js's stream.Writable to Go: a buffered,
// asynchronous writer with a high-water mark and a backpressure signal,
// cork/uncork batching, vectored flushes, an end → finish → close life
// cycle, and errors that reach every pending write.
//
// A [Writable] accepts writes from any number of goroutines and hands them,
// in the order it accepted them, to a sink: a [WriteFunc] that receives one
// chunk at a time and calls done when it is finished with it, at once or
// later from any goroutine. [FromWriter], [FromWriteCloser] and [OpenFile]
// make sinks of io.Writers, network connections, HTTP responses and files;
// [Pipeline] copies io.Readers into a Writable.
//
// # Writing
//
// [Writable.WriteChunk] is Node's write(): it never waits for room, it keeps
// the caller's slice (one chunk per call, until its callback runs), and its
// callback runs once with the outcome of the write. [Writable.Write],
// [Writable.WriteString] and [Writable.ReadFrom] are the io.Writer side:
// they copy their input into pooled buffers, never retain it, and block
// while the stream is over its high-water mark, so a single large Write
// cannot fill memory. A Write is contiguous: 32 goroutines logging JSON
// lines into one Writable never see a torn line. [Writable.Flush] sends
// what is buffered and waits for it without ending the stream (a logger's
// Sync).
//
// A call that finds the sink free makes the sink call itself, as Node does,
// so with a synchronous sink WriteChunk, Write, Uncork, End and Flush take
// as long as the sink calls they make; an asynchronous sink returns at once
// (see "When a call takes time" on [Writable]).
//
//	w := stream.NewWritable(sink, stream.Options{})
//	w.WriteChunk([]byte("hello "), func(err error) { ... })
//	fmt.Fprintf(w, "%d bytes\n", n)
//	err := w.Close() // End, then wait for "close"
//
// # Backpressure
//
// [Writable.State].Length counts the bytes accepted and not yet completed by
// the sink. Once it reaches the high-water mark ([Options].HighWaterMark,
// 16 KiB by default) WriteChunk returns false; the chunk is still accepted,
// but the producer should call [Writable.Wait] before writing more. Wait is
// level-triggered: it returns at the "drain" that follows, or at once when
// no drain is needed, so calling it after a false return can never miss the
// wake-up; and it returns the stream's error once the stream is ended,
// destroyed or failed, so the loop below stops on a dead stream:
//
//	for _, chunk := range chunks {
//		if !w.WriteChunk(chunk, nil) {
//			if err := w.Wait(ctx); err != nil {
//				return err
//			}
//		}
//	}
//
// [Writable.Ready] is the same level as a channel, for select loops.
//
// # Corking
//
// [Writable.Cork] buffers writes even while the sink is idle; the matching
// [Writable.Uncork] flushes them, all in one [WritevFunc] call when
// [Options].Writev is set and two or more are buffered. Corks nest; End
// uncorks fully.
//
// # Ending and closing
//
// [Writable.End] says no more data will come. The stream flushes what it
// buffered, runs [Options].Final, emits "finish" once every write callback
// has run, then runs [Options].Destroy and emits "close". [Writable.Close]
// ends the stream and waits for "close"; it returns nil only if every
// accepted byte reached the sink and the hooks succeeded.
// [Writable.Destroy] tears the stream down at once: buffered writes fail,
// and the Destroy hook runs as soon as the sink call in flight, if any, has
// settled (unlike Node, which does not wait for it). [Writable.Done] is
// closed after "close"; by then every callback has run and no goroutine of
// the stream is left, but for the one that closed it, on its way out, and
// an adapter's stuck in a writer's call that cannot be interrupted (see
// [FromWriter]).
//
// A write after End fails alone with [ErrWriteAfterEnd]: unlike in Node,
// it does not destroy the stream, which still finishes what it accepted
// before End. So goroutines may go on logging while another calls Close:
// nothing Write accepted is lost.
//
// # Errors
//
// The first error is sticky. A sink error fails the write that saw it,
// every buffered write, and destroys the stream; [Writable.Err],
// [Writable.Close], later writes and the "error" handlers all report it,
// and it matches with [errors.Is]. Registering an "error" handler is
// optional: no error is ever lost or turned into a panic because nobody
// listened. A sink that never calls done can be caught with
// [Options].StallTimeout, which fails the stream with [ErrStalled].
//
// # Events and callbacks
//
// Write callbacks and the handlers registered with [Writable.OnDrain],
// [Writable.OnFinish], [Writable.OnError] and [Writable.OnClose] run one at a
// time per stream, in the order Node runs them, never while the stream's
// lock is held and never inside the call that caused them (Node's
// process.nextTick rule). They run on a goroutine of the library, or on the
// goroutine that called done when the sink completed asynchronously. A
// handler may call any method that does not wait (WriteChunk, End, Cork,
// Uncork, Destroy, State, Err, On*); it must not wait on its own stream
// (Close, Finished, <-Done(), Wait, Flush, or a Write blocked by
// backpressure): what it would wait for runs after it returns, so such a
// call hangs forever.
//
// # Object mode
//
// [WritableOf] is the same engine for Go values (records, events, rows):
// marks in items or in the units of [OptionsOf].Size, a LowWaterMark to
// resume at, a hard cap (MaxBuffered) with an [Overflow] policy, Writev
// batches capped by MaxBatch and MaxBatchSize, Linger for fuller batches,
// a per-item outcome (OnWritten, and [ItemErrors] to fail items of a batch
// alone), Wait and Flush. [PipelineSeq] copies an iter.Seq2 into one.
//
// # Pipelines
//
// [Pipeline] reads io.Readers in order into a Writable with backpressure,
// ends it and waits for it to close; on any error, or when its context is
// done, it destroys the Writable and closes the readers. [Finished] waits
// for a Writable to close and reports how it ended.
//
// [Pipe] goes the other way: it returns a [PipeReader] (an io.Reader and
// io.WriterTo) that reads what is written to a Writable, in order, with the
// Writable's high-water mark bounding the bytes written and not yet read:
// io.Pipe with a buffer and the whole Writable life cycle on its write end.
//
// # Differences from Node
//
// A write after End fails alone; strings are bytes (no encodings), and
// object mode is a type of its own; autoDestroy and
// emitClose are always on; a HighWaterMark of 0 means the default; Write
// blocks on backpressure while WriteChunk keeps Node's boolean; Destroy
// waits for the sink call in flight; a Destroy before "finish" always
// cancels it; a done called twice is caught even when a later write is in
// flight (for the last seven calls). The README lists every Node method,
// event and option with its Go counterpart.
package stream
