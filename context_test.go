package stream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// Spec N2 and decisions "Construct, Context": a Context already done at
// NewWritable destroys the stream before NewWritable returns, with
// context.Cause(ctx); nothing reaches the sink and later writes get
// ErrDestroyed wrapping the cause.
func TestContextAlreadyDone(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc string
		ctx  func() context.Context
		want error
	}{
		{
			desc: "canceled",
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			want: context.Canceled,
		},
		{
			desc: "canceled with a cause",
			ctx: func() context.Context {
				ctx, cancel := context.WithCancelCause(context.Background())
				cancel(boom)
				return ctx
			},
			want: boom,
		},
		{
			desc: "deadline exceeded",
			ctx: func() context.Context {
				ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
				defer cancel()
				return ctx
			},
			want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink()
			w := stream.NewWritable(sink.Write, stream.Options{Context: tt.ctx()})
			streamtest.Cleanup(t, w, sink)

			assert.True(t, w.State().Destroyed, "Destroyed when NewWritable returned")
			streamtest.WaitDone(t, w)
			assert.ErrorIs(t, w.Err(), tt.want, "Err")
			assert.ErrorIs(t, w.Close(), tt.want, "Close")

			errc := make(chan error, 1)
			assert.False(t, w.WriteChunk(chunk("a"), func(err error) { errc <- err }), "WriteChunk")
			err := streamtest.Recv(t, errc, "the callback of a write on the destroyed stream")
			assert.ErrorIs(t, err, stream.ErrDestroyed, "callback error")
			assert.ErrorIs(t, err, tt.want, "callback error")
			assert.Empty(t, sink.Log(), "sink calls")
		})
	}
}

// Spec N3 and DESIGN "Options.Context" (experiment 13/A; priority case 22):
// when the Context is done the stream is destroyed with context.Cause: the
// write in flight completes with its result, the buffered one gets the
// cause, then "error" and "close".
func TestContextCancelDestroys(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc   string
		cancel func(context.CancelCauseFunc)
		want   error
	}{
		{desc: "cancel with a cause", cancel: func(c context.CancelCauseFunc) { c(boom) }, want: boom},
		{desc: "cancel without a cause", cancel: func(c context.CancelCauseFunc) { c(nil) }, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, rec := open(t, sink, stream.Options{HighWaterMark: 1, Context: ctx})

			require.False(t, w.WriteChunk(chunk("a"), rec.Callback("a")), "WriteChunk reaching the high-water mark")
			w.WriteChunk(chunk("b"), rec.Callback("b"))
			a := sink.Next(t)
			tt.cancel(cancel)
			// No drain can come while a is held: Ready closes because the
			// cancellation destroyed the stream.
			streamtest.Recv(t, w.Ready(), "Ready to close when the context is done")
			assert.True(t, w.State().Destroyed, "Destroyed after the context is done")
			a.Done(nil)
			streamtest.WaitDone(t, w)

			label := streamtest.Label(tt.want)
			assert.Equal(t, []string{"cb a <nil>", "cb b " + label, "error " + label, "close"}, rec.Log(), "events")
			assert.ErrorIs(t, w.Err(), tt.want, "Err")
			assert.ErrorIs(t, w.Close(), tt.want, "Close")
		})
	}
}

// Spec N4 (experiment 13/D): a Context done after the stream closed changes
// nothing.
func TestContextDoneAfterClose(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	w, rec := open(t, streamtest.NewSink(), stream.Options{Context: ctx})

	require.NoError(t, w.Close(), "Close")
	cancel(errors.New("too late"))

	assert.NoError(t, w.Err(), "Err")
	assert.NoError(t, w.Close(), "Close again")
	assert.Equal(t, []string{"finish", "close"}, rec.Log(), "events")
}

// DESIGN rule 11 (spec N4: the abort listener is removed): whatever the
// stream does to watch its Context is gone once it closed, although the
// Context is never done.
func TestContextWatchEndsAtClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := stream.NewWritable(streamtest.NewSink().Write, stream.Options{Context: ctx})
	streamtest.Cleanup(t, w)

	w.WriteChunk(chunk("a"), nil)
	require.NoError(t, w.Close(), "Close")

	goleak.VerifyNone(t, ignore)
}
