//go:build !unix

package stream

import "io"

// trySocket would make non-blocking write attempts on a socket; off Unix
// every write goes to the adapter's goroutine.
type trySocket struct{}

func newTrySocket(io.Writer) *trySocket { return nil }

func (*trySocket) write([]byte) (int, error) { return 0, nil }
