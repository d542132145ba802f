package stream_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// The README's promises about an upload through a Pipe: a writer that
// fails makes the upload fail with its error, and an upload that fails
// releases a writer blocked on the full pipe.
func TestPipeHTTPUpload(t *testing.T) {
	t.Run("the writer fails", func(t *testing.T) {
		got := make(chan error, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			_, err := io.Copy(io.Discard, req.Body)
			got <- err
		}))
		defer srv.Close()
		client := srv.Client()
		defer client.CloseIdleConnections()

		r, w := stream.Pipe(stream.Options{HighWaterMark: 4 << 10})
		go func() {
			w.Write(bytes.Repeat([]byte("x"), 100<<10))
			w.Destroy(errBoom)
		}()
		resp, err := client.Post(srv.URL, "application/octet-stream", r)
		if resp != nil {
			resp.Body.Close()
		}
		assert.ErrorIs(t, err, errBoom, "the upload fails with the writer's error")
		assert.Error(t, streamtest.Recv(t, got, "the handler to end"), "the server sees a truncated body, not a clean end")
		streamtest.WaitDone(t, w)
	})
	t.Run("the upload fails", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			io.CopyN(io.Discard, req.Body, 8<<10)
			c, _, err := http.NewResponseController(rw).Hijack()
			if err == nil {
				c.Close() // the connection drops mid-upload
			}
		}))
		defer srv.Close()
		client := srv.Client()
		defer client.CloseIdleConnections()

		r, w := stream.Pipe(stream.Options{HighWaterMark: 4 << 10})
		wrote := make(chan error, 1)
		go func() {
			p := bytes.Repeat([]byte("x"), 1<<10)
			for {
				if _, err := w.Write(p); err != nil {
					wrote <- err
					return
				}
			}
		}()
		resp, err := client.Post(srv.URL, "application/octet-stream", r)
		if resp != nil {
			resp.Body.Close()
		}
		require.Error(t, err, "the upload fails")
		werr := streamtest.Recv(t, wrote, "the writer's blocked Write to return")
		assert.ErrorIs(t, werr, io.ErrClosedPipe, "the writer learns that the reader closed")
		assert.ErrorIs(t, werr, stream.ErrDestroyed, "on a destroyed stream")
		streamtest.WaitDone(t, w)
	})
}
