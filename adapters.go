package stream

import (
	"io"
	"os"
)

func FromWriter(w io.Writer, opts Options) *Writable           { panic("unimplemented") }
func FromWriteCloser(w io.WriteCloser, opts Options) *Writable { panic("unimplemented") }
func OpenFile(name string, flag int, perm os.FileMode, opts Options) (*Writable, error) {
	panic("unimplemented")
}
