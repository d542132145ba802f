package stream

import (
	"context"
	"io"
)

func Pipeline(ctx context.Context, dst *Writable, srcs ...io.Reader) error { panic("unimplemented") }
func Finished(ctx context.Context, w *Writable) error                      { panic("unimplemented") }
