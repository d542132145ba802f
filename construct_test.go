package stream_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// Spec L1 and decisions "Construct, Context": Construct is called after
// NewWritable returned, never inside it.
func TestConstructAfterNewWritable(t *testing.T) {
	p := newProbe()
	w := stream.NewWritable(streamtest.NewSink().Write, stream.Options{
		Construct: func(done stream.Callback) {
			p.run()
			done(nil)
		},
	})
	streamtest.Cleanup(t, w)
	close(p.returned)

	streamtest.Recv(t, p.ran, "Construct to be called")
	assert.False(t, p.inside.Load(), "Construct ran inside NewWritable")
}

// Spec L2, L3 (experiment 10/A; test-stream-construct, priority case 37):
// until Construct calls done, writes are accepted and buffered (WriteChunk
// returns true below the high-water mark), and End waits; then the buffer
// flushes (in one Writev), Final runs, "finish" and "close" follow.
func TestWritesWaitForConstruct(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Construct)
	w, rec := open(t, sink, stream.Options{
		Writev:    sink.Writev,
		Final:     sink.Final,
		Destroy:   sink.Destroy,
		Construct: sink.Construct,
	})

	assert.True(t, w.WriteChunk(chunk("a"), rec.Callback("a")), "WriteChunk a before construction")
	assert.True(t, w.WriteChunk(chunk("b"), rec.Callback("b")), "WriteChunk b before construction")
	w.End()
	construct := sink.Next(t)
	require.Equal(t, "construct", construct.String(), "first sink call")
	st := w.State()
	assert.Equal(t, 2, st.Length, "Length before construction")
	assert.Equal(t, 2, st.Buffered, "Buffered before construction")
	assert.False(t, st.Writing, "Writing before construction")
	assert.True(t, st.Ending, "Ending before construction")
	assert.Equal(t, []string{"construct"}, sink.Log(), "sink calls before construction")

	construct.Done(nil)
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"construct", "writev [a b]", "final", "destroy <nil>"}, sink.Log(), "sink calls")
	assert.Equal(t, []string{"cb a <nil>", "cb b <nil>", "finish", "close"}, rec.Log(), "events")
	assert.NoError(t, w.Close(), "Close")
}

// Spec L4 (experiment 10/C; test-stream-construct, priority case 37): a
// Construct error goes to the buffered callbacks, then "error" and "close";
// nothing is written and Final does not run.
func TestConstructError(t *testing.T) {
	boom := errors.New("boom")
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Construct)
	w, rec := open(t, sink, stream.Options{Final: sink.Final, Destroy: sink.Destroy, Construct: sink.Construct})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.End()
	sink.Next(t).Done(boom)
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb a boom", "error boom", "close"}, rec.Log(), "events")
	assert.Equal(t, []string{"construct", "destroy boom"}, sink.Log(), "sink calls")
	assert.ErrorIs(t, w.Close(), boom, "Close")
}

// Spec L5 (experiments 10/D, 10/E; test-stream-construct, priority case 37)
// with DESIGN "Details": Destroy during construction marks the stream
// destroyed at once, but the Destroy hook waits for Construct's done; then
// the buffered callbacks get the error and "close" follows. The first error
// wins if Construct fails too.
func TestDestroyDuringConstruct(t *testing.T) {
	boom := errors.New("boom")
	ctorErr := errors.New("construct failed")
	tests := []struct {
		desc      string
		destroy   error
		construct error
		wantErr   error
		wantLog   []string
	}{
		{
			desc:      "Destroy(nil), Construct succeeds",
			destroy:   nil,
			construct: nil,
			wantErr:   nil,
			wantLog:   []string{"destroy <nil>", "cb a ErrDestroyed", "close"},
		},
		{
			desc:      "Destroy(err), Construct fails",
			destroy:   boom,
			construct: ctorErr,
			wantErr:   boom,
			wantLog:   []string{"destroy boom", "cb a boom", "error boom", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			rec := streamtest.NewRecorder()
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Construct)
			sink.OnCall(func(c *streamtest.Call) {
				if c.Kind == streamtest.Destroy {
					rec.Add(c.String())
				}
			})
			w := stream.NewWritable(sink.Write, stream.Options{Destroy: sink.Destroy, Construct: sink.Construct})
			streamtest.Cleanup(t, w, sink)
			rec.Attach(w)

			w.WriteChunk(chunk("a"), rec.Callback("a"))
			w.Destroy(tt.destroy)
			assert.True(t, w.State().Destroyed, "Destroyed during construction")
			construct := sink.Next(t)
			assert.Equal(t, 0, sink.Count(streamtest.Destroy), "Destroy hook calls before Construct's done")
			construct.Done(tt.construct)
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantLog, rec.Log(), "events")
			assert.Equal(t, []string{"construct", "destroy " + streamtest.Label(tt.destroy)}, sink.Log(), "sink calls")
			assert.ErrorIs(t, w.Err(), tt.wantErr, "Err")
		})
	}
}

// Spec J4 (experiment 08/G; test-stream-construct): Construct's done called
// twice destroys the stream with ErrMultipleCallback.
func TestConstructCallbackTwice(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Construct)
	w, rec := open(t, sink, stream.Options{Construct: sink.Construct})

	construct := sink.Next(t)
	construct.Done(nil)
	construct.Done(nil)
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"error ErrMultipleCallback", "close"}, rec.Log(), "events")
	assert.ErrorIs(t, w.Err(), stream.ErrMultipleCallback, "Err")
}
