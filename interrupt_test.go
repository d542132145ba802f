package stream

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockingSink is a WriteFunc whose first call blocks until the stream's
// interrupt hook fires, then fails with result(cause).
type blockingSink struct {
	started     chan struct{}
	interrupted chan error
	result      func(cause error) error
}

func newBlockingSink(result func(cause error) error) *blockingSink {
	return &blockingSink{
		started:     make(chan struct{}),
		interrupted: make(chan error, 1),
		result:      result,
	}
}

func (s *blockingSink) write(chunk []byte, done Callback) {
	close(s.started)
	go func() { done(s.result(<-s.interrupted)) }()
}

func (s *blockingSink) interrupt(err error) { s.interrupted <- err }

func newInterruptible(t testing.TB, s *blockingSink) *Writable {
	t.Helper()
	w := NewWritable(s.write, Options{})
	w.mu.Lock()
	w.interrupt = s.interrupt
	w.mu.Unlock()
	return w
}

func TestInterruptedWriteEchoingErrDestroyed(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		desc        string
		giveDestroy error
		giveResult  func(cause error) error
		wantErr     error // Err() after close
		wantCbIs    []error
		wantClose   error
	}{
		{
			desc:        "Destroy(nil), write fails with ErrDestroyed: Err stays nil",
			giveDestroy: nil,
			giveResult: func(cause error) error {
				return fmt.Errorf("%w: write interrupted: i/o timeout", ErrDestroyed)
			},
			wantErr:   nil,
			wantCbIs:  []error{ErrDestroyed},
			wantClose: ErrDestroyed,
		},
		{
			desc:        "Destroy(err), write fails with ErrDestroyed and err: Err is err",
			giveDestroy: errBoom,
			giveResult: func(cause error) error {
				return fmt.Errorf("%w: %w: write interrupted", ErrDestroyed, cause)
			},
			wantErr:   errBoom,
			wantCbIs:  []error{ErrDestroyed, errBoom},
			wantClose: errBoom,
		},
		{
			desc:        "Destroy(nil), write fails with another error: a sink error like any other",
			giveDestroy: nil,
			giveResult:  func(error) error { return errBoom },
			wantErr:     errBoom,
			wantCbIs:    []error{errBoom},
			wantClose:   errBoom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := newBlockingSink(tt.giveResult)
			w := newInterruptible(t, s)
			cbErr := make(chan error, 1)
			w.WriteChunk([]byte("x"), func(err error) { cbErr <- err })
			select {
			case <-s.started:
			case <-time.After(5 * time.Second):
				require.FailNow(t, "the sink was not called")
			}
			w.Destroy(tt.giveDestroy)
			select {
			case <-w.Done():
			case <-time.After(5 * time.Second):
				require.FailNow(t, "the stream did not close after the interrupt")
			}
			err := <-cbErr
			for _, want := range tt.wantCbIs {
				assert.ErrorIs(t, err, want, "the interrupted write's callback")
			}
			if tt.wantErr == nil {
				assert.NoError(t, w.Err(), "Err after the interrupted write")
			} else {
				assert.ErrorIs(t, w.Err(), tt.wantErr, "Err after the interrupted write")
			}
			assert.ErrorIs(t, w.Close(), tt.wantClose, "Close after the interrupted write")
		})
	}
}
