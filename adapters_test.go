package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
)

// writeMixed writes data to w through every producer entry point, in
// pseudo-random pieces: Write, WriteString, WriteChunk (waiting for Ready
// when it returns false) and corked batches of WriteChunks.
func writeMixed(t testing.TB, w *stream.Writable, data []byte, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(70_000))
		if r.IntN(4) == 0 {
			n = min(len(data), 1+r.IntN(300))
		}
		p := data[:n]
		data = data[n:]
		switch r.IntN(4) {
		case 0:
			_, err := w.Write(p)
			require.NoError(t, err, "Write")
		case 1:
			_, err := w.WriteString(string(p))
			require.NoError(t, err, "WriteString")
		case 2:
			if !w.WriteChunk(p, nil) {
				recvWithin(t, w.Ready(), "Ready after WriteChunk returned false")
			}
		case 3:
			w.Cork()
			for len(p) > 0 {
				k := min(len(p), 1+r.IntN(100))
				w.WriteChunk(p[:k], nil)
				p = p[k:]
			}
			w.Uncork()
			recvWithin(t, w.Ready(), "Ready after a corked batch")
		}
	}
}

// Files

func TestOpenFileWritesBytesInOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("old "), 1<<20), 0o600), "an older, longer file")
	data := randomBytes(8<<20+17, 4)
	w, err := stream.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600, stream.Options{HighWaterMark: 32 << 10})
	require.NoError(t, err, "OpenFile")
	writeMixed(t, w, data, 1)
	require.NoError(t, w.Close(), "Close")
	got, err := os.ReadFile(path)
	require.NoError(t, err, "reading the file back")
	assert.Equal(t, len(data), len(got), "file size (O_TRUNC dropped the older content)")
	assert.True(t, bytes.Equal(data, got), "file content is byte for byte what was written, in order")
}

func TestOpenFileAppend(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := filepath.Join(t.TempDir(), "log")
	const appendFlag = os.O_WRONLY | os.O_CREATE | os.O_APPEND // Node's "a"
	for _, line := range []string{"first\n", "second\n", "third\n"} {
		w, err := stream.OpenFile(path, appendFlag, 0o600, stream.Options{})
		require.NoError(t, err, "OpenFile for append")
		_, err = w.WriteString(line)
		require.NoError(t, err, "WriteString")
		require.NoError(t, w.Close(), "Close")
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err, "reading the file back")
	assert.Equal(t, "first\nsecond\nthird\n", string(got), "each stream appended to the file")
}

func TestOpenFileExclusive(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := filepath.Join(t.TempDir(), "once")
	const exclusive = os.O_WRONLY | os.O_CREATE | os.O_TRUNC | os.O_EXCL // Node's "wx"
	w, err := stream.OpenFile(path, exclusive, 0o600, stream.Options{})
	require.NoError(t, err, "OpenFile wx on a new path")
	_, err = w.WriteString("mine")
	require.NoError(t, err, "WriteString")
	require.NoError(t, w.Close(), "Close")

	w2, err := stream.OpenFile(path, exclusive, 0o600, stream.Options{})
	assert.ErrorIs(t, err, fs.ErrExist, "OpenFile wx on an existing path")
	assert.Nil(t, w2, "no stream on an open error")
	got, err := os.ReadFile(path)
	require.NoError(t, err, "reading the file back")
	assert.Equal(t, "mine", string(got), "the existing file was left alone")
}

func TestOpenFileOpenErrorsAreReturned(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	require.NoError(t, os.WriteFile(regular, []byte("keep"), 0o600), "a regular file")
	readOnlyDir := filepath.Join(dir, "ro")
	require.NoError(t, os.Mkdir(readOnlyDir, 0o500), "a read-only directory")
	t.Cleanup(func() { os.Chmod(readOnlyDir, 0o700) })

	tests := []struct {
		desc    string
		path    string
		flag    int
		wantErr error
		skip    func() string
	}{
		{
			desc:    "read-only directory",
			path:    filepath.Join(readOnlyDir, "f"),
			flag:    os.O_WRONLY | os.O_CREATE | os.O_TRUNC,
			wantErr: fs.ErrPermission,
			skip: func() string {
				// Root (and CAP_DAC_OVERRIDE) writes into read-only
				// directories: probe before relying on it.
				probe := filepath.Join(readOnlyDir, "probe")
				if f, err := os.Create(probe); err == nil {
					f.Close()
					os.Remove(probe)
					return "this user can write into a read-only directory (root?); the next case forces an open error another way"
				}
				return ""
			},
		},
		{
			desc:    "path under a regular file",
			path:    filepath.Join(regular, "f"),
			flag:    os.O_WRONLY | os.O_CREATE | os.O_TRUNC,
			wantErr: syscall.ENOTDIR,
		},
		{
			desc:    "missing directory",
			path:    filepath.Join(dir, "no", "such", "dir", "f"),
			flag:    os.O_WRONLY | os.O_CREATE,
			wantErr: fs.ErrNotExist,
		},
		{
			desc:    "read-only flag does not open (nor truncate)",
			path:    regular,
			flag:    os.O_RDONLY | os.O_TRUNC,
			wantErr: nil, // an *fs.PathError of its own
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if tt.skip != nil {
				if why := tt.skip(); why != "" {
					t.Skip(why)
				}
			}
			if runtime.GOOS == "windows" && tt.wantErr == syscall.ENOTDIR {
				t.Skip("ENOTDIR is a Unix error")
			}
			w, err := stream.OpenFile(tt.path, tt.flag, 0o600, stream.Options{})
			var pathErr *fs.PathError
			require.ErrorAs(t, err, &pathErr, "OpenFile returns the open error at once")
			assert.Equal(t, tt.path, pathErr.Path, "the error names the path")
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr, "the open error")
			}
			assert.Nil(t, w, "no stream on an open error")
		})
	}
	got, err := os.ReadFile(regular)
	require.NoError(t, err, "reading the regular file")
	assert.Equal(t, "keep", string(got), "no case truncated the regular file")
}

// openFDsTo lists this process's descriptors open on path (Linux only).
func openFDsTo(t testing.TB, path string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	var fds []string
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			fds = append(fds, e.Name())
		}
	}
	return fds
}

func TestOpenFileCloseFollowsDescriptorClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err, "resolving the temporary directory")
	path = filepath.Join(path, "f")
	w, err := stream.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600, stream.Options{})
	require.NoError(t, err, "OpenFile")
	require.Len(t, openFDsTo(t, path), 1, "one descriptor open on the file")
	var fdsAtClose []string
	w.OnClose(func() { fdsAtClose = openFDsTo(t, path) })
	_, err = w.WriteString("data")
	require.NoError(t, err, "WriteString")
	require.NoError(t, w.Close(), "Close")
	assert.Empty(t, fdsAtClose, "the descriptor was closed before \"close\"")
}

func TestOpenFileReportsWriteErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w, err := stream.OpenFile("/dev/full", os.O_WRONLY, 0, stream.Options{})
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no /dev/full on this system")
	}
	require.NoError(t, err, "OpenFile /dev/full")
	cb := make(chan error, 1)
	w.WriteChunk([]byte("no room"), func(err error) { cb <- err })
	assert.ErrorIs(t, recvWithin(t, cb, "the write's callback"), syscall.ENOSPC, "the write's callback")
	assert.ErrorIs(t, w.Close(), syscall.ENOSPC, "Close returns the write error")
}

// closeRecorder is a writer whose Close is recorded in a shared log.
type closeRecorder struct {
	bytes.Buffer
	log *eventLog
	err error
}

func (c *closeRecorder) Close() error {
	c.log.add("writer Close")
	return c.err
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

func TestFromWriteCloserClosesBeforeCloseEvent(t *testing.T) {
	errClose := errors.New("close failed")
	tests := []struct {
		desc       string
		giveClose  error
		end        func(w *stream.Writable)
		wantEvents []string
		wantErr    error
	}{
		{
			desc:       "clean end",
			end:        func(w *stream.Writable) { w.End() },
			wantEvents: []string{"finish", "writer Close", "close"},
		},
		{
			desc:       "close error after a clean end",
			giveClose:  errClose,
			end:        func(w *stream.Writable) { w.End() },
			wantEvents: []string{"finish", "writer Close", "error", "close"},
			wantErr:    errClose,
		},
		{
			desc:       "Destroy(err)",
			end:        func(w *stream.Writable) { w.Destroy(errTest) },
			wantEvents: []string{"writer Close", "error", "close"},
			wantErr:    errTest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			log := &eventLog{}
			cw := &closeRecorder{log: log, err: tt.giveClose}
			w := stream.FromWriteCloser(cw, stream.Options{})
			w.OnFinish(func() { log.add("finish") })
			w.OnError(func(error) { log.add("error") })
			w.OnClose(func() { log.add("close") })
			cb := make(chan error, 1)
			w.WriteChunk([]byte("payload"), func(err error) { cb <- err })
			require.NoError(t, recvWithin(t, cb, "write callback"), "the write")
			tt.end(w)
			requireClosed(t, w, "after "+tt.desc)
			assert.Equal(t, tt.wantEvents, log.get(), "the writer is closed before \"close\"")
			if tt.wantErr == nil {
				assert.NoError(t, w.Close(), "Close")
			} else {
				assert.ErrorIs(t, w.Close(), tt.wantErr, "Close")
				assert.ErrorIs(t, w.Err(), tt.wantErr, "Err")
			}
			assert.Equal(t, "payload", cw.String(), "what the writer received")
		})
	}
}

// shortWriter accepts one byte less than it is given, without an error.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return max(len(p)-1, 0), nil }

func TestFromWriterShortWriteIsAnError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w := stream.FromWriter(shortWriter{}, stream.Options{})
	cb := make(chan error, 1)
	w.WriteChunk([]byte("abc"), func(err error) { cb <- err })
	assert.ErrorIs(t, recvWithin(t, cb, "the write's callback"), io.ErrShortWrite, "the write's callback")
	assert.ErrorIs(t, w.Close(), io.ErrShortWrite, "Close reports the short write")
}

// Pipes and standard output

func TestFromWriterOSPipeDeliversInOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr, pw, err := os.Pipe()
	require.NoError(t, err, "os.Pipe")
	defer pr.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(pr)
		got <- b
	}()
	data := randomBytes(4<<20+3, 5)
	w := stream.FromWriteCloser(pw, stream.Options{HighWaterMark: 8 << 10})
	writeMixed(t, w, data, 2)
	require.NoError(t, w.Close(), "Close closes the pipe's write end")
	b := recvWithin(t, got, "the reader to see EOF")
	assert.Equal(t, len(data), len(b), "bytes through the pipe")
	assert.True(t, bytes.Equal(data, b), "bytes arrive through the pipe in order")
}

// A write stuck on a full pipe returns when the stream is destroyed, and
// FromWriter leaves the pipe usable: it clears the deadline it set.
func TestFromWriterDestroyUnblocksAFullPipe(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr, pw, err := os.Pipe()
	require.NoError(t, err, "os.Pipe")
	defer pr.Close()
	defer pw.Close()
	w := stream.FromWriter(pw, stream.Options{})
	cb := make(chan error, 1)
	w.WriteChunk(make([]byte, 8<<20), func(err error) { cb <- err }) // far more than a pipe holds
	require.Eventually(t, func() bool { return w.State().Writing }, waitTimeout, millisecond, "the write is in flight")
	w.Destroy(nil)
	requireClosed(t, w, "Destroy with a write stuck on a full pipe")
	err = recvWithin(t, cb, "the stuck write's callback")
	assert.ErrorIs(t, err, stream.ErrDestroyed, "the interrupted write's callback")
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the interrupted write's callback")
	assert.NoError(t, w.Err(), "Destroy(nil) leaves Err nil, also with a write interrupted")
	assert.ErrorIs(t, stream.Finished(context.Background(), w), stream.ErrPrematureClose, "Finished")

	// Drain the pipe, then write to it directly: no deadline is left.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, pr)
	}()
	_, err = pw.Write([]byte("still usable"))
	assert.NoError(t, err, "the pipe takes writes after the stream is gone")
	pw.Close()
	recvWithin(t, drained, "draining the pipe")
}

func TestFromWriterFlushesABufioWriter(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr, pw, err := os.Pipe()
	require.NoError(t, err, "os.Pipe")
	defer pr.Close()
	bw := bufio.NewWriterSize(pw, 64<<10)
	w := stream.FromWriter(bw, stream.Options{})
	w.WriteChunk([]byte("hello\n"), nil)
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(pr).ReadString('\n')
		line <- s
	}()
	assert.Equal(t, "hello\n", recvWithin(t, line, "the line, flushed out of the bufio.Writer while the stream is open"), "line read")
	require.NoError(t, w.Close(), "Close")
	require.NoError(t, pw.Close(), "closing the pipe")
}

const stdoutHelperEnv = "STREAM_TEST_STDOUT_HELPER"

// TestStdoutHelper is not a test: TestFromWriterStdout runs it in a child
// process whose standard output is a pipe.
func TestStdoutHelper(t *testing.T) {
	if os.Getenv(stdoutHelperEnv) != "1" {
		t.Skip("helper process for TestFromWriterStdout")
	}
	w := stream.FromWriter(os.Stdout, stream.Options{})
	for i := range 100_000 {
		if _, err := fmt.Fprintf(w, "line %06d\n", i); err != nil {
			os.Exit(2)
		}
	}
	if err := w.Close(); err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}

func TestFromWriterStdout(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStdoutHelper$")
	cmd.Env = append(os.Environ(), stdoutHelperEnv+"=1")
	out, err := cmd.Output()
	require.NoError(t, err, "the helper process writing through FromWriter(os.Stdout)")
	var want strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&want, "line %06d\n", i)
	}
	assert.Equal(t, want.Len(), len(out), "bytes on the child's standard output")
	assert.True(t, want.String() == string(out), "lines arrive on standard output in order")
}

// TCP

// tcpPair returns a client connection to a server connection on 127.0.0.1.
func tcpPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listening on 127.0.0.1")
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err, "dialling the listener")
	s := recvWithin(t, accepted, "accept")
	require.NotNil(t, s, "accepted connection")
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestFromWriterTCPChecksum(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	size := 64 << 20
	if testing.Short() {
		size = 8 << 20
	}
	client, server := tcpPair(t)
	defer server.Close()
	type summary struct {
		n   int64
		sum [sha256.Size]byte
	}
	got := make(chan summary, 1)
	go func() {
		h := sha256.New()
		n, _ := io.Copy(h, server)
		var s summary
		s.n = n
		copy(s.sum[:], h.Sum(nil))
		got <- s
	}()
	data := randomBytes(size, 6)
	w := stream.FromWriteCloser(client, stream.Options{HighWaterMark: 64 << 10})
	writeMixed(t, w, data, 3)
	require.NoError(t, w.Close(), "Close (closes the connection)")
	s := recvWithin(t, got, "the server to read to EOF")
	assert.Equal(t, int64(size), s.n, "bytes the server read")
	assert.Equal(t, sha256.Sum256(data), s.sum, "SHA-256 of what the server read")
}

// A peer that stops reading fills the socket buffers; then Write blocks,
// WriteChunk returns false, Ready stays open, and the stream holds no more
// than its high-water mark plus a piece. Once the peer reads, everything
// flows.
func TestFromWriterTCPBackpressure(t *testing.T) {
	const hwm = 64 << 10
	const piece = 64 << 10 // the HighWaterMark clamped to [4 KiB, 1 MiB]
	total := 64 << 20
	if testing.Short() {
		total = 16 << 20
	}
	chunk := make([]byte, 32<<10) // only read, by the sink: shared by every WriteChunk
	tests := []struct {
		desc    string
		produce func(w *stream.Writable, accepted *atomic64, falses *atomic64) error
	}{
		{
			desc: "Write blocks",
			produce: func(w *stream.Writable, accepted, _ *atomic64) error {
				p := make([]byte, 32<<10)
				for sent := 0; sent < total; sent += len(p) {
					n, err := w.Write(p)
					accepted.add(int64(n))
					if err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			desc: "WriteChunk returns false",
			produce: func(w *stream.Writable, accepted, falses *atomic64) error {
				for sent := 0; sent < total; sent += len(chunk) {
					ok := w.WriteChunk(chunk, nil)
					accepted.add(int64(len(chunk)))
					if !ok {
						falses.add(1)
						<-w.Ready()
					}
				}
				return w.Err()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			client, server := tcpPair(t)
			defer server.Close()
			require.NoError(t, client.SetWriteBuffer(64<<10), "shrinking the send buffer")
			require.NoError(t, server.SetReadBuffer(64<<10), "shrinking the receive buffer")
			w := stream.FromWriteCloser(client, stream.Options{HighWaterMark: hwm})
			var accepted, falses atomic64
			produced := make(chan error, 1)
			go func() { produced <- tt.produce(w, &accepted, &falses) }()

			// Wait until the stream is stuck: a write in flight, a drain
			// needed, and nothing accepted for 25 polls in a row (nothing
			// moving is the only sign that the socket is full). Length never
			// exceeds the bound meanwhile.
			var last int64 = -1
			still := 0
			require.Eventually(t, func() bool {
				st := w.State()
				require.LessOrEqual(t, st.Length, hwm+piece, "buffered + in-flight bytes")
				if n := accepted.load(); n != last || !st.Writing || !st.NeedDrain {
					last, still = n, 0
					return false
				}
				still++
				return still >= 25
			}, waitTimeout, millisecond, "the stream backs up behind a peer that does not read")
			select {
			case err := <-produced:
				require.Fail(t, "the producer finished although the peer reads nothing", "err %v, accepted %d", err, accepted.load())
			case <-w.Ready():
				require.Fail(t, "Ready is closed although the peer reads nothing")
			default:
			}
			assert.Less(t, accepted.load(), int64(total), "bytes accepted while the peer does not read")
			if tt.desc == "WriteChunk returns false" {
				assert.Positive(t, falses.load(), "WriteChunk returned false")
			}

			read := make(chan int64, 1)
			go func() { // the peer reads again, to EOF
				n, _ := io.Copy(io.Discard, server)
				read <- n
			}()
			require.NoError(t, recvWithin(t, produced, "the producer, once the peer reads"), "producer")
			require.NoError(t, w.Close(), "Close")
			assert.Equal(t, int64(total), recvWithin(t, read, "the peer reading to EOF"), "every byte reached the peer")
		})
	}
}

func TestFromWriterTCPDestroyWhilePeerIsNotReading(t *testing.T) {
	tests := []struct {
		desc         string
		destroy      func(w *stream.Writable, cancel context.CancelCauseFunc)
		wantErr      error // Err(); nil for none
		wantFinished error
	}{
		{"Destroy(err)", func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(errTest) }, errTest, errTest},
		{"Destroy(nil)", func(w *stream.Writable, _ context.CancelCauseFunc) { w.Destroy(nil) }, nil, stream.ErrPrematureClose},
		{"Options.Context cancelled", func(_ *stream.Writable, cancel context.CancelCauseFunc) { cancel(errTest) }, errTest, errTest},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			for _, closer := range []bool{false, true} {
				client, server := tcpPair(t)
				ctx, cancel := context.WithCancelCause(context.Background())
				opts := stream.Options{Context: ctx}
				var w *stream.Writable
				if closer {
					w = stream.FromWriteCloser(client, opts)
				} else {
					w = stream.FromWriter(client, opts)
				}
				cb := make(chan error, 1)
				w.WriteChunk(make([]byte, 32<<20), func(err error) { cb <- err }) // more than the socket buffers
				require.Eventually(t, func() bool { return w.State().Writing }, waitTimeout, millisecond, "the write is in flight")
				tt.destroy(w, cancel)
				requireClosed(t, w, tt.desc+" with a write stuck on the socket")
				err := recvWithin(t, cb, "the stuck write's callback")
				assert.ErrorIs(t, err, stream.ErrDestroyed, "the interrupted write's callback")
				if tt.wantErr == nil {
					assert.NoError(t, w.Err(), "Err")
				} else {
					assert.ErrorIs(t, w.Err(), tt.wantErr, "Err")
					assert.ErrorIs(t, err, tt.wantErr, "the interrupted write's callback")
				}
				assert.ErrorIs(t, stream.Finished(context.Background(), w), tt.wantFinished, "Finished")
				cancel(nil)
				client.Close()
				server.Close()
			}
		})
	}
}

// HTTP

// The handler streams 1,000 chunks through FromWriter(rw). It waits for
// the client to have received the first chunk before it writes the others,
// so the test can only pass if that chunk was flushed to the client while
// the stream was still open.
func TestFromWriterHTTPResponseStreams(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const chunks = 1000
	chunk := func(i int) string { return fmt.Sprintf("chunk %04d %s\n", i, strings.Repeat("x", i%97)) }
	firstSeen := make(chan struct{})
	handlerDone := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/plain")
		w := stream.FromWriter(rw, stream.Options{})
		w.WriteChunk([]byte(chunk(0)), nil)
		select {
		case <-firstSeen:
		case <-r.Context().Done():
			w.Destroy(r.Context().Err())
			handlerDone <- w.Close()
			return
		}
		for i := 1; i < chunks; i++ {
			if !w.WriteChunk([]byte(chunk(i)), nil) {
				<-w.Ready()
			}
		}
		handlerDone <- w.Close()
	}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err, "request")
	resp, err := client.Do(req)
	require.NoError(t, err, "GET")
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	require.NoError(t, err, "reading the first chunk before the handler ends the stream (needs a flush)")
	assert.Equal(t, chunk(0), first, "first chunk")
	close(firstSeen)
	rest, err := io.ReadAll(br)
	require.NoError(t, err, "reading the rest of the body")
	var want strings.Builder
	for i := 1; i < chunks; i++ {
		want.WriteString(chunk(i))
	}
	assert.Equal(t, want.String(), string(rest), "the rest of the body, intact and in order")
	assert.NoError(t, recvWithin(t, handlerDone, "the handler"), "the handler's Close")
}

// A handler's write stuck on a client that does not read returns when the
// stream is destroyed: the adapter sets a past write deadline through
// http.ResponseController.
func TestFromWriterHTTPDestroyUnblocksAStuckResponse(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	type outcome struct {
		cbErr, closeErr error
	}
	stuck := make(chan *stream.Writable, 1)
	result := make(chan outcome, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := stream.FromWriter(rw, stream.Options{})
		cb := make(chan error, 1)
		w.WriteChunk(make([]byte, 256<<20), func(err error) { cb <- err }) // far more than the socket buffers
		stuck <- w
		<-w.Done()
		result <- outcome{<-cb, w.Close()}
	}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	require.NoError(t, err, "GET")
	defer resp.Body.Close() // never read: the handler's write gets stuck

	w := recvWithin(t, stuck, "the handler's write")
	require.Eventually(t, func() bool { return w.State().Writing }, waitTimeout, millisecond, "the write is in flight")
	w.Destroy(errTest)
	out := recvWithin(t, result, "the handler, after Destroy with a write stuck on the response")
	assert.ErrorIs(t, out.cbErr, stream.ErrDestroyed, "the interrupted write's callback")
	assert.ErrorIs(t, out.cbErr, errTest, "the interrupted write's callback")
	assert.ErrorIs(t, out.closeErr, errTest, "Close")
}

// An Options.Destroy hook runs after the writer's Close, and both errors
// reach the stream.
func TestFromWriteCloserRunsTheUserDestroyHookAfterClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	errClose := errors.New("close failed")
	errHook := errors.New("hook failed")
	log := &eventLog{}
	cw := &closeRecorder{log: log, err: errClose}
	w := stream.FromWriteCloser(cw, stream.Options{Destroy: func(err error, done stream.Callback) {
		log.add("user hook")
		done(errHook)
	}})
	w.OnClose(func() { log.add("close") })
	err := w.Close()
	assert.ErrorIs(t, err, errClose, "Close reports the writer's Close error")
	assert.ErrorIs(t, err, errHook, "Close reports the user hook's error")
	assert.Equal(t, []string{"writer Close", "user hook", "close"}, log.get(), "order of the Destroy step")
}
