//go:build unix

package stream

import (
	"io"
	"net"
	"os"
	"syscall"
)

// trySocket makes single non-blocking write attempts on a socket, as
// libuv's uv_try_write does for Node: a socket with room in its send
// buffer takes the chunk at once, on the producer's goroutine. It is used
// by one sink call at a time; fn is attempt, bound once so that a write
// allocates nothing.
type trySocket struct {
	conn net.Conn
	rc   syscall.RawConn
	fn   func(fd uintptr) bool

	// The attempt's input and outcome.
	p   []byte
	n   int
	err error
}

// newTrySocket returns the try-writer of w, or nil unless w is a net.Conn
// that gives access to its descriptor (TCP, Unix and UDP sockets).
func newTrySocket(w io.Writer) *trySocket {
	sc, ok := w.(interface {
		net.Conn
		syscall.Conn
	})
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	t := &trySocket{conn: sc, rc: rc}
	t.fn = t.attempt
	return t
}

// attempt is the function RawConn.Write runs with the descriptor (and the
// connection's write lock) held. Returning true makes RawConn.Write return
// at once instead of waiting for the socket to become writable.
func (t *trySocket) attempt(fd uintptr) bool {
	for {
		t.n, t.err = syscall.Write(int(fd), t.p)
		if t.err != syscall.EINTR {
			return true
		}
	}
}

// write tries to write p without blocking. It returns how many bytes the
// socket took, and a non-nil error only for a failure of the socket (a
// reset, say), wrapped as net.Conn.Write wraps it. A full socket (EAGAIN),
// a write deadline that has passed or a closed connection give (n, nil)
// with n < len(p): the caller leaves the rest to a blocking Write, which
// waits for room and reports the connection's own errors.
func (t *trySocket) write(p []byte) (int, error) {
	t.p = p
	err := t.rc.Write(t.fn)
	n, werr := max(t.n, 0), t.err
	t.p, t.n, t.err = nil, 0, nil
	switch {
	case err != nil, werr == nil, werr == syscall.EAGAIN:
		return n, nil
	}
	return n, &net.OpError{
		Op:     "write",
		Net:    t.conn.LocalAddr().Network(),
		Source: t.conn.LocalAddr(),
		Addr:   t.conn.RemoteAddr(),
		Err:    os.NewSyscallError("write", werr),
	}
}
