// Package bench holds the benchmarks of package stream: the same work as the
// Node scripts in bench/node, done through the public API of
// github.com/streamkit/stream, next to plain Go baselines (bufio.Writer,
// io.Copy, a read/write loop, conn.Write, net.Buffers).
//
// The package has no API; everything is in its _test.go files and is run
// with go test:
//
//	go test -run '^$' -bench . -benchmem ./bench
//
// or, side by side with Node and with ratios and targets, with
// bench/compare. README.md in this folder describes every benchmark, its
// Node counterpart and its target.
//
// # Conventions
//
// Every producer loop respects backpressure as the Node scripts do: when
// [stream.Writable.WriteChunk] returns false it waits on
// [stream.Writable.Ready] before writing again. At the end it calls
// [stream.Writable.End], waits for [stream.Writable.Done] and fails the
// benchmark unless the sink received every byte.
//
// In the benchmarks of single writes one b.Loop iteration is one write, so
// ns/op and allocs/op are per write, and -benchtime=20000000x does exactly
// the 20M writes of the Node script. Their writes/s and MB/s metrics are
// measured from the first write until Done is closed, like the Node
// scripts time from the first write until "finish"; ns/op leaves out the
// final flush after the last write. The file-copy and slow-sink
// benchmarks copy one whole file per iteration (sized by -filesize).
//
// [stream.Writable.WriteChunk]: https://pkg.go.dev/github.com/streamkit/stream#Writable.WriteChunk
// [stream.Writable.Ready]: https://pkg.go.dev/github.com/streamkit/stream#Writable.Ready
// [stream.Writable.End]: https://pkg.go.dev/github.com/streamkit/stream#Writable.End
// [stream.Writable.Done]: https://pkg.go.dev/github.com/streamkit/stream#Writable.Done
package bench
