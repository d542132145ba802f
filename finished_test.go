package stream_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
)

func TestFinished(t *testing.T) {
	errSink := errors.New("sink failed")
	tests := []struct {
		desc    string
		act     func(w *stream.Writable)
		sinkErr error
		wantErr error
	}{
		{"clean finish", func(w *stream.Writable) { w.WriteChunk([]byte("x"), nil); w.End() }, nil, nil},
		{"Destroy(err)", func(w *stream.Writable) { w.Destroy(errTest) }, nil, errTest},
		{"Destroy(nil)", func(w *stream.Writable) { w.Destroy(nil) }, nil, stream.ErrPrematureClose},
		{"sink error", func(w *stream.Writable) { w.WriteChunk([]byte("x"), nil) }, errSink, errSink},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			sink := newMemSink()
			sink.fail = tt.sinkErr
			w := stream.NewWritable(sink.write, stream.Options{})
			res := make(chan error, 1)
			go func() { res <- stream.Finished(context.Background(), w) }()
			tt.act(w)
			err := recvWithin(t, res, "Finished")
			if tt.wantErr == nil {
				assert.NoError(t, err, "Finished")
			} else {
				assert.ErrorIs(t, err, tt.wantErr, "Finished")
			}
			select {
			case <-w.Done():
			default:
				assert.Fail(t, "Finished returned before the stream closed")
			}
			// On a closed stream Finished answers at once, even with a done ctx.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			assert.Equal(t, err, stream.Finished(ctx, w), "Finished again, on the closed stream")
		})
	}
}

func TestFinishedContextEndsFirst(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w := stream.NewWritable(newMemSink().write, stream.Options{})
	ctx, cancel := context.WithCancelCause(context.Background())
	res := make(chan error, 1)
	go func() { res <- stream.Finished(ctx, w) }()
	cancel(errTest)
	err := recvWithin(t, res, "Finished after cancel")
	assert.ErrorIs(t, err, errTest, "Finished returns ctx's cause")
	st := w.State()
	assert.False(t, st.Destroyed, "Finished did not destroy the stream")
	assert.False(t, st.Ended, "Finished did not end the stream")
	assert.True(t, w.WriteChunk([]byte("still open"), nil), "the stream still takes writes")
	require.NoError(t, w.Close(), "Close")
}
