// Package ring provides a growable FIFO queue backed by a circular slice.
//
// It is the storage behind the stream's chunk buffer and its event queue:
// once the queue has grown to its working size, pushing and popping allocate
// nothing. A Ring is not safe for concurrent use; its owner guards it.
package ring

// Ring is a FIFO queue of T. The zero value is an empty queue ready to use.
type Ring[T any] struct {
	buf  []T // len(buf) is zero or a power of two
	head int // index of the first element
	n    int // number of elements
}

// Len returns the number of elements in the queue.
func (r *Ring[T]) Len() int { return r.n }

// PushBack appends v at the end of the queue.
func (r *Ring[T]) PushBack(v T) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

// PushBackSlot appends a zero element at the end of the queue and returns
// a pointer to it, valid until the next push or pop, so that a caller can
// fill a large element in place instead of copying it in.
func (r *Ring[T]) PushBackSlot() *T {
	if r.n == len(r.buf) {
		r.grow()
	}
	p := &r.buf[(r.head+r.n)&(len(r.buf)-1)]
	r.n++
	return p
}

// PushFront inserts v at the front of the queue.
func (r *Ring[T]) PushFront(v T) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1) & (len(r.buf) - 1)
	r.buf[r.head] = v
	r.n++
}

// PopFront removes and returns the first element. It reports false if the
// queue is empty. The vacated slot is zeroed so the queue does not keep
// references alive.
func (r *Ring[T]) PopFront() (T, bool) {
	var zero T
	if r.n == 0 {
		return zero, false
	}
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if r.n == 0 && len(r.buf) > shrinkAbove {
		// Emptied after a burst: do not hold the burst's memory for the
		// rest of the queue's life.
		r.buf, r.head = nil, 0
	}
	return v, true
}

// DropFront removes the first element, which must exist, without copying
// it out: read it through Front first. The slot is zeroed, as by PopFront.
func (r *Ring[T]) DropFront() {
	var zero T
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if r.n == 0 && len(r.buf) > shrinkAbove {
		r.buf, r.head = nil, 0
	}
}

// shrinkAbove is the capacity above which an emptied queue frees its
// slice. Smaller ones are kept, so that a queue filled and emptied over and
// over does not allocate.
const shrinkAbove = 4096

// Front returns a pointer to the first element, or nil if the queue is empty.
// The pointer is valid until the next PushBack or PopFront.
func (r *Ring[T]) Front() *T {
	if r.n == 0 {
		return nil
	}
	return &r.buf[r.head]
}

// Back returns a pointer to the last element, or nil if the queue is empty.
// The pointer is valid until the next PushBack or PopFront.
func (r *Ring[T]) Back() *T {
	if r.n == 0 {
		return nil
	}
	return &r.buf[(r.head+r.n-1)&(len(r.buf)-1)]
}

// At returns a pointer to the i-th element from the front (0 ≤ i < Len).
func (r *Ring[T]) At(i int) *T {
	if i < 0 || i >= r.n {
		panic("ring: index out of range")
	}
	return &r.buf[(r.head+i)&(len(r.buf)-1)]
}

// RemoveAt removes and returns the i-th element from the front
// (0 ≤ i < Len), moving the i elements before it one place back: it costs
// O(i), so it is meant for elements near the front.
func (r *Ring[T]) RemoveAt(i int) T {
	v := *r.At(i)
	mask := len(r.buf) - 1
	for j := i; j > 0; j-- {
		r.buf[(r.head+j)&mask] = r.buf[(r.head+j-1)&mask]
	}
	r.PopFront() // the front slot, now a copy of what moved to index 1
	return v
}

func (r *Ring[T]) grow() {
	size := 2 * len(r.buf)
	if size == 0 {
		size = 8
	}
	buf := make([]T, size)
	// Copy the (possibly wrapped) contents to the front of the new slice.
	k := copy(buf, r.buf[r.head:])
	copy(buf[k:], r.buf[:r.head])
	r.buf = buf
	r.head = 0
}
