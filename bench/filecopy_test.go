package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/streamkit/stream"
)

// BenchmarkFileCopy is Node's filecopy.js in mode overwrite: copy a file of
// -filesize bytes (1 GiB by default) onto a destination of the same size,
// opened without truncation (os.O_WRONLY, Node's flags 'r+'), so the copy
// rewrites cached pages in place. The files live in the page cache and
// nothing is fsynced: a memory and syscall figure, not a disk one. One
// iteration is one whole copy; MB/s is the figure to compare.
//
//	Pipeline          stream.Pipeline(src file, stream.OpenFile(dst)), default options
//	                  (node filecopy.js pipeline overwrite)
//	ReadWrite-1MiB    the Go floor: a read/write loop with a 1 MiB buffer (like dd bs=1M)
//	io.Copy           io.Copy(dst, src): *os.File's ReadFrom, copy_file_range(2) on Linux
//
// Before each copy, untimed: sync(2) (as the Node script runs sync(1)), and
// a marker is scribbled over three blocks of the destination, which the
// copy must overwrite with the source's bytes (checked after it, with the
// size).
func BenchmarkFileCopy(b *testing.B) {
	for _, tc := range []struct {
		name string
		copy func(b *testing.B, src, dst string)
	}{
		{"Pipeline", copyPipeline},
		{"ReadWrite-1MiB", copyReadWrite},
		{"io.Copy", copyIOCopy},
	} {
		b.Run(tc.name, func(b *testing.B) {
			size := fileSize(b)
			src := defaultPath(*srcFileFlag, "bench-src")
			dst := defaultPath(*dstFileFlag, "bench-ow-go")
			if err := ensureRandomFile(src, size); err != nil {
				b.Fatal(err)
			}
			if sizeOf(dst) != size {
				if err := copyFile(src, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				b.StopTimer()
				syncAll()
				if err := scribble(dst, size); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()

				tc.copy(b, src, dst)

				b.StopTimer()
				if err := checkCopy(src, dst, size); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

func copyPipeline(b *testing.B, src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	w, err := stream.OpenFile(dst, os.O_WRONLY, 0o644, stream.Options{})
	if err != nil {
		in.Close()
		b.Fatal(err)
	}
	// Pipeline closes in (an io.Closer) and waits for w to close.
	if err := stream.Pipeline(context.Background(), w, in); err != nil {
		b.Fatal(err)
	}
}

func copyReadWrite(b *testing.B, src, dst string) {
	in, out := openPair(b, src, dst)
	defer in.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				b.Fatal(werr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

func copyIOCopy(b *testing.B, src, dst string) {
	in, out := openPair(b, src, dst)
	defer in.Close()
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// openPair opens src for reading and dst for writing in place.
func openPair(b *testing.B, src, dst string) (in, out *os.File) {
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	out, err = os.OpenFile(dst, os.O_WRONLY, 0o644)
	if err != nil {
		in.Close()
		b.Fatal(err)
	}
	return in, out
}

// markerOffsets are where scribble writes and checkCopy looks: the first,
// a middle and the last 4 KiB block of a file of the given size.
func markerOffsets(size int64) []int64 {
	const blk = 4096
	return []int64{0, (size / 2) &^ (blk - 1), (size - blk) &^ (blk - 1)}
}

// scribble overwrites the marker blocks of dst with a pattern that a random
// source does not hold.
func scribble(dst string, size int64) error {
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	mark := bytes.Repeat([]byte("scribbled "), 4096/10+1)[:4096]
	for _, off := range markerOffsets(size) {
		if _, err := f.WriteAt(mark, off); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// checkCopy reports an error unless dst has size bytes and its marker
// blocks equal src's.
func checkCopy(src, dst string, size int64) error {
	if got := sizeOf(dst); got != size {
		return fmt.Errorf("dst has %d bytes, want %d", got, size)
	}
	a, err := os.Open(src)
	if err != nil {
		return err
	}
	defer a.Close()
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	pa, pd := make([]byte, 4096), make([]byte, 4096)
	for _, off := range markerOffsets(size) {
		if _, err := a.ReadAt(pa, off); err != nil {
			return err
		}
		if _, err := d.ReadAt(pd, off); err != nil {
			return err
		}
		if !bytes.Equal(pa, pd) {
			return fmt.Errorf("dst differs from src at offset %d: not copied", off)
		}
	}
	return nil
}

// ensureRandomFile makes path hold size random bytes (a random 1 MiB block
// repeated, as the Node script does) unless it already has that size.
func ensureRandomFile(path string, size int64) error {
	if sizeOf(path) == size {
		return nil
	}
	block := make([]byte, 1<<20)
	if _, err := rand.Read(block); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for left := size; left > 0; left -= int64(len(block)) {
		if _, err := f.Write(block[:min(left, int64(len(block)))]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// copyFile copies src to a new or truncated dst (untimed setup).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
