package stream_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/streamkit/stream"
)

// A producer writes into the pipe on its own goroutine while the reader
// copies what arrives to standard output; io.Copy uses the reader's
// WriteTo, which passes the chunks on as they were written.
func ExamplePipe() {
	r, w := stream.Pipe(stream.Options{HighWaterMark: 16})
	go func() {
		for i := range 3 {
			fmt.Fprintf(w, "line %d\n", i) // blocks while 16 bytes are unread
		}
		w.End() // the reader gets io.EOF once it read everything
	}()
	if _, err := io.Copy(os.Stdout, r); err != nil {
		fmt.Println(err)
	}
	// Output:
	// line 0
	// line 1
	// line 2
}

// One goroutine gzips a stream while another uploads it: the pipe's
// high-water mark is all the compressed data ever held in memory, the
// compressor waits for the upload, and an error on either side stops the
// other.
func ExamplePipe_gzipUpload() {
	// The server gunzips the upload and answers with its size.
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(rw, "received %d bytes", n)
	}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	src := strings.NewReader(strings.Repeat("a line of a large log file\n", 20_000))
	r, w := stream.Pipe(stream.Options{HighWaterMark: 64 << 10})
	go func() {
		zw := gzip.NewWriter(w) // its Writes block while 64 KiB wait for the upload
		_, err := io.Copy(zw, src)
		if err == nil {
			err = zw.Close()
		}
		if err != nil {
			w.Destroy(err) // the upload fails with err
			return
		}
		w.End() // the upload's body ends
	}()

	// The client reads the body with r.WriteTo and closes it when done or
	// failed: a failed upload destroys w, so the compressor's next Write
	// returns the error instead of blocking for ever.
	resp, err := client.Post(srv.URL, "application/gzip", r)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	fmt.Println(string(answer))
	fmt.Println("compressor:", w.Close())
	// Output:
	// received 540000 bytes
	// compressor: <nil>
}
