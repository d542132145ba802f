package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/streamkit/stream"
)

// Pipeline copies readers, in order, into a stream and waits for it to
// close; here the stream is a file.
func ExamplePipeline() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "greeting.txt")

	dst, err := stream.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644, stream.Options{})
	if err != nil {
		log.Fatal(err)
	}
	err = stream.Pipeline(context.Background(), dst,
		strings.NewReader("hello, "),
		strings.NewReader("pipeline\n"),
	)
	if err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	// Output:
	// hello, pipeline
}

// Finished reports how a stream ended: nil after a clean finish, else why
// it did not finish.
func ExampleFinished() {
	discard := func(chunk []byte, done stream.Callback) { done(nil) }

	ok := stream.NewWritable(discard, stream.Options{})
	ok.WriteChunk([]byte("data"), nil)
	ok.End()
	fmt.Println("ended:", stream.Finished(context.Background(), ok))

	cut := stream.NewWritable(discard, stream.Options{})
	cut.Destroy(nil)
	err := stream.Finished(context.Background(), cut)
	fmt.Println("destroyed:", err, errors.Is(err, stream.ErrPrematureClose))

	failed := stream.NewWritable(discard, stream.Options{})
	failed.Destroy(errors.New("disk on fire"))
	fmt.Println("failed:", stream.Finished(context.Background(), failed))
	// Output:
	// ended: <nil>
	// destroyed: stream: premature close true
	// failed: disk on fire
}

// FromWriter turns any io.Writer, here standard output, into a stream; the
// writes run on a goroutine of the stream, and Close waits for them.
func ExampleFromWriter() {
	w := stream.FromWriter(os.Stdout, stream.Options{})
	w.WriteChunk([]byte("one\n"), nil)
	fmt.Fprintf(w, "two\n")
	w.Cork() // batch the next writes: they go out together on Uncork
	w.WriteChunk([]byte("three "), nil)
	w.WriteChunk([]byte("four\n"), nil)
	w.Uncork()
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// one
	// two
	// three four
}

// OpenFile is fs.createWriteStream: flags as in os.OpenFile, here Node's
// "a" (append). An open error is returned at once.
func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.log")

	for _, line := range []string{"started\n", "stopped\n"} {
		w, err := stream.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644, stream.Options{})
		if err != nil {
			log.Fatal(err)
		}
		w.WriteString(line)
		if err := w.Close(); err != nil { // the file is closed, not synced
			log.Fatal(err)
		}
	}
	data, _ := os.ReadFile(path)
	fmt.Print(string(data))

	_, err = stream.OpenFile(filepath.Join(dir, "missing", "x.log"), os.O_WRONLY|os.O_CREATE, 0o644, stream.Options{})
	fmt.Println(errors.Is(err, os.ErrNotExist))
	// Output:
	// started
	// stopped
	// true
}
