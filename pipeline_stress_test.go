package stream_test

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
)

// Many pipelines at once (issue 5, stress, for Pipeline and the adapters):
// 64 Pipelines run concurrently, each copying 1-4 sources of random
// length, read in random sizes (a few bytes to 64 KiB, with an occasional
// (n, io.EOF)), into one of three sinks: FromWriteCloser over an os.Pipe
// whose other end a goroutine hashes, FromWriter over a hashing writer,
// and a NewWritable sink that hashes on goroutines of its own. Every byte
// is checksummed (SHA-256 of what the sources produced against what the
// sink received); the goroutine count is sampled throughout and must stay
// below a bound linear in the number of pipelines, and nothing is left
// once they return. Short form: up to 512 KiB per pipeline; -stress.long:
// up to 16 MiB.

const stressPipelines = 64

// stressSource produces left pseudo-random bytes in reads of random size,
// adding what it returns to the hash and count that the sources of one
// pipeline share (Pipeline reads them one after the other).
type stressSource struct {
	r    *rand.Rand
	left int
	sum  hash.Hash
	n    *int64
}

func (s *stressSource) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	k := 1 + s.r.IntN(64<<10)
	if s.r.IntN(4) == 0 {
		k = 1 + s.r.IntN(100)
	}
	k = min(k, len(p), s.left)
	for i := 0; i < k; i += 8 {
		v := s.r.Uint64()
		for j := i; j < min(i+8, k); j++ {
			p[j] = byte(v)
			v >>= 8
		}
	}
	s.sum.Write(p[:k])
	s.left -= k
	*s.n += int64(k)
	if s.left == 0 && s.r.IntN(2) == 0 {
		return k, io.EOF
	}
	return k, nil
}

// stressHashWriter hashes what it is given.
type stressHashWriter struct {
	mu  sync.Mutex
	sum hash.Hash
	n   int64
}

func (h *stressHashWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sum.Write(p)
	h.n += int64(len(p))
	return len(p), nil
}

func TestStressPipelines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	maxSize := 512 << 10
	if *stressLong {
		maxSize = 16 << 20
	}
	base := runtime.NumGoroutine()
	// Per pipeline at most: its own goroutine, the adapter's writer
	// goroutine, the pipe's reader, a delivery or sink goroutine; plus a
	// few for the test.
	bound := base + 4*stressPipelines + 8

	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()

	type result struct {
		err       error
		kind      string
		want, got [sha256.Size]byte
		wantN     int64
		gotN      int64
	}
	results := make(chan result, stressPipelines)
	var total atomic.Int64
	var ready sync.WaitGroup
	ready.Add(stressPipelines)
	gate := make(chan struct{})
	for p := range stressPipelines {
		go func() {
			// Every pipeline starts at once.
			ready.Done()
			<-gate
			r := rand.New(rand.NewPCG(uint64(p), 0x5eed))
			res := result{}
			produced := sha256.New()
			var srcs []io.Reader
			for range 1 + r.IntN(4) {
				srcs = append(srcs, &stressSource{
					r:    rand.New(rand.NewPCG(uint64(p), r.Uint64())),
					left: r.IntN(maxSize / 2),
					sum:  produced,
					n:    &res.wantN,
				})
			}
			hwm := []int{0, 1, 4 << 10, 256 << 10}[r.IntN(4)]
			opts := stream.Options{HighWaterMark: hwm}
			var got func() ([]byte, int64)
			switch p % 3 {
			case 0:
				res.kind = "FromWriteCloser(os.Pipe)"
				pr, pw, err := os.Pipe()
				if err != nil {
					res.err = err
					results <- res
					return
				}
				h := &stressHashWriter{sum: sha256.New()}
				copied := make(chan struct{})
				go func() {
					defer close(copied)
					io.Copy(h, pr)
					pr.Close()
				}()
				res.err = stream.Pipeline(context.Background(), stream.FromWriteCloser(pw, opts), srcs...)
				<-copied
				got = func() ([]byte, int64) { return h.sum.Sum(nil), h.n }
			case 1:
				res.kind = "FromWriter(hash)"
				h := &stressHashWriter{sum: sha256.New()}
				res.err = stream.Pipeline(context.Background(), stream.FromWriter(h, opts), srcs...)
				got = func() ([]byte, int64) { return h.sum.Sum(nil), h.n }
			default:
				res.kind = "NewWritable(async hash)"
				h := &stressHashWriter{sum: sha256.New()}
				dst := stream.NewWritable(func(chunk []byte, done stream.Callback) {
					go func() {
						h.Write(chunk)
						done(nil)
					}()
				}, opts)
				res.err = stream.Pipeline(context.Background(), dst, srcs...)
				got = func() ([]byte, int64) { return h.sum.Sum(nil), h.n }
			}
			sum, n := got()
			copy(res.got[:], sum)
			res.gotN = n
			copy(res.want[:], produced.Sum(nil))
			total.Add(n)
			results <- res
		}()
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	for range stressPipelines {
		res := recvWithin(t, results, "every pipeline to return")
		require.NoError(t, res.err, "Pipeline into %s", res.kind)
		assert.Equal(t, res.wantN, res.gotN, "bytes through %s", res.kind)
		assert.Equal(t, res.want, res.got, "SHA-256 through %s", res.kind)
	}
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	waitGoroutines(t, base, "after every pipeline returned")
	assert.LessOrEqual(t, int(peak.Load()), bound, "goroutines at peak (baseline %d)", base)
	t.Logf("%d pipelines, %d MiB in %v (%.0f MB/s); goroutines: baseline %d, peak %d (%.1f per pipeline)",
		stressPipelines, total.Load()>>20, elapsed.Round(time.Millisecond), float64(total.Load())/elapsed.Seconds()/1e6,
		base, peak.Load(), float64(peak.Load()-int64(base))/stressPipelines)
}
