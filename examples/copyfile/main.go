// Command copyfile copies a file with stream.Pipeline into stream.OpenFile,
// the Go form of Node's pipeline(fs.createReadStream(src),
// fs.createWriteStream(dst), cb), and draws its progress on stderr.
//
//	go run ./examples/copyfile            # copies a 256 MiB temporary file
//	go run ./examples/copyfile SRC DST    # copies SRC to DST
//
// With no arguments it makes a 256 MiB file of pseudo-random bytes in a
// temporary directory, copies it, checks that the copy is identical, and
// removes both. The progress line shows the bytes copied, the rate and the
// number of "drain" events: each one is a moment when the file fell behind
// the reader and Pipeline waited for it (backpressure). Interrupt (Ctrl-C)
// cancels the copy: Pipeline destroys the destination and returns.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/streamkit/stream"
)

const demoSize = 256 << 20

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "copyfile:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var src, dst string
	switch len(args) {
	case 0:
		dir, err := os.MkdirTemp("", "copyfile")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		src, dst = filepath.Join(dir, "src.bin"), filepath.Join(dir, "dst.bin")
		fmt.Fprintf(os.Stderr, "making a %d MiB file in %s\n", demoSize>>20, dir)
		if err := makeFile(src, demoSize); err != nil {
			return err
		}
	case 2:
		src, dst = args[0], args[1]
	default:
		return fmt.Errorf("usage: copyfile [SRC DST]")
	}

	in, err := os.Open(src)
	if err != nil {
		return err
	}
	info, err := in.Stat()
	if err != nil {
		in.Close()
		return err
	}
	out, err := stream.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644, stream.Options{})
	if err != nil {
		in.Close()
		return err
	}
	var drains atomic.Int64
	out.OnDrain(func() { drains.Add(1) })
	counted := &countingReader{r: in}

	start := time.Now()
	bar := startProgress(info.Size(), &counted.n, &drains, start)
	err = stream.Pipeline(ctx, out, counted) // closes in, ends and closes out
	bar.stop()
	elapsed := time.Since(start)
	if err != nil {
		return err
	}

	n := counted.n.Load()
	fmt.Printf("copied %s to %s: %d bytes in %v (%.0f MB/s), %d drains\n",
		filepath.Base(src), filepath.Base(dst), n, elapsed.Round(time.Millisecond),
		float64(n)/1e6/elapsed.Seconds(), drains.Load())
	if len(args) == 0 {
		same, err := sameContent(src, dst)
		if err != nil {
			return err
		}
		if !same {
			return fmt.Errorf("the copy differs from the source")
		}
		fmt.Println("verified: SHA-256 of the copy matches the source")
	}
	return nil
}

// makeFile writes size pseudo-random bytes to path.
func makeFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Close lets Pipeline close the underlying file.
func (c *countingReader) Close() error {
	if cl, ok := c.r.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// progress redraws a bar on stderr every 100 ms until stop.
type progress struct {
	quit, done chan struct{}
}

func startProgress(total int64, n, drains *atomic.Int64, start time.Time) *progress {
	p := &progress{quit: make(chan struct{}), done: make(chan struct{})}
	draw := func() {
		cur := n.Load()
		frac := 1.0
		if total > 0 {
			frac = min(float64(cur)/float64(total), 1)
		}
		const width = 30
		fill := int(frac * width)
		mbs := float64(cur) / 1e6 / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(os.Stderr, "\r[%s%s] %4.0f%% %7.1f/%.1f MiB %6.0f MB/s  drains %d ",
			strings.Repeat("#", fill), strings.Repeat(".", width-fill), frac*100,
			float64(cur)/(1<<20), float64(total)/(1<<20), mbs, drains.Load())
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-p.quit:
				draw()
				fmt.Fprintln(os.Stderr)
				return
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.quit)
	<-p.done
}

func sameContent(a, b string) (bool, error) {
	ha, err := hashFile(a)
	if err != nil {
		return false, err
	}
	hb, err := hashFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ha, hb), nil
}

func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
