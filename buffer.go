package stream

import (
	"math/bits"
	"sync"
)

// entry is one accepted write, from WriteChunk, Write, WriteString or
// ReadFrom, waiting in the buffer or in flight.
type entry[T any] struct {
	item T
	size int    // item's units of the marks: len for bytes, Size for T
	seq  uint64 // acceptance order, from 1
	cb   Callback
	// slab is the pooled buffer item lives in when the stream made the copy
	// itself (Write, WriteString, ReadFrom). It returns to its pool once the
	// sink is done with the chunk. Nil for WriteChunk's caller-owned chunks.
	slab *slab
}

// slab is a pooled buffer for the copies Write and ReadFrom make. It is a
// pointer type so that putting it back into a sync.Pool does not allocate.
type slab struct {
	buf []byte
}

// Slabs come in power-of-two sizes from minPiece to maxPiece, one pool per
// size.
const (
	minPieceShift = 12 // 4 KiB
	maxPieceShift = 20 // 1 MiB
	minPiece      = 1 << minPieceShift
	maxPiece      = 1 << maxPieceShift
)

var slabPools [maxPieceShift - minPieceShift + 1]sync.Pool

// pieceSize returns the size of the pieces Write and ReadFrom copy into for a
// stream with high-water mark hwm: hwm rounded up to a power of two within
// [minPiece, maxPiece]. Buffered memory then stays below about hwm plus one
// piece, whatever the size of a single Write.
func pieceSize(hwm int) int {
	switch {
	case hwm <= minPiece:
		return minPiece
	case hwm >= maxPiece:
		return maxPiece
	}
	return 1 << bits.Len(uint(hwm-1))
}

func slabClass(size int) int {
	return bits.Len(uint(size-1)) - minPieceShift
}

// getSlab returns an empty-length buffer with capacity size, which must be a
// value returned by pieceSize.
func getSlab(size int) *slab {
	if s, ok := slabPools[slabClass(size)].Get().(*slab); ok {
		return s
	}
	return &slab{buf: make([]byte, size)}
}

func putSlab(s *slab) {
	slabPools[slabClass(len(s.buf))].Put(s)
}

// release returns the entry's slab, if any, to its pool. The sink must be
// done with the chunk.
func (e *entry[T]) release() {
	if e.slab != nil {
		putSlab(e.slab)
		e.slab = nil
	}
	var zero T
	e.item = zero
}

// tailRoom reports how many more bytes a buffered entry can take in place:
// only a stream-owned copy without a callback can grow, since io.Writer
// promises no chunk boundaries but WriteChunk does.
func tailRoom(e *entry[[]byte]) int {
	if e.slab == nil || e.cb != nil {
		return 0
	}
	return cap(e.item) - len(e.item)
}
