package ring

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRingFIFOAcrossGrowthAndWrap(t *testing.T) {
	var r Ring[int]
	next, want := 0, 0
	// Interleave pushes and pops so the contents wrap around the end of the
	// backing slice before and after each growth.
	for round := 1; round <= 200; round++ {
		for i := 0; i < round%7+round/20; i++ {
			r.PushBack(next)
			next++
		}
		for i := 0; i < round%5 && r.Len() > 0; i++ {
			v, ok := r.PopFront()
			require.True(t, ok, "pop from a non-empty ring")
			require.Equal(t, want, v, "elements come out in push order")
			want++
		}
	}
	for r.Len() > 0 {
		assert.Equal(t, want, *r.Front(), "Front is the next element to pop")
		assert.Equal(t, next-1, *r.Back(), "Back is the last element pushed")
		v, _ := r.PopFront()
		require.Equal(t, want, v, "elements come out in push order")
		want++
	}
	assert.Equal(t, next, want, "every pushed element was popped")
	_, ok := r.PopFront()
	assert.False(t, ok, "pop from an empty ring")
	assert.Nil(t, r.Front(), "Front of an empty ring")
	assert.Nil(t, r.Back(), "Back of an empty ring")
}

func TestRingAt(t *testing.T) {
	var r Ring[string]
	for _, s := range []string{"a", "b", "c"} {
		r.PushBack(s)
	}
	r.PopFront()
	r.PushBack("d")
	assert.Equal(t, "b", *r.At(0), "At(0) is the front")
	assert.Equal(t, "d", *r.At(2), "At(Len-1) is the back")
	assert.Panics(t, func() { r.At(3) }, "At beyond Len panics")
}

func TestRingPopClearsSlot(t *testing.T) {
	var r Ring[*int]
	x := 1
	r.PushBack(&x)
	r.PopFront()
	assert.Nil(t, r.buf[0], "a popped slot no longer references its element")
}

func TestRingSteadyStateAllocatesNothing(t *testing.T) {
	var r Ring[int]
	for i := 0; i < 64; i++ {
		r.PushBack(i)
	}
	for r.Len() > 0 {
		r.PopFront()
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for i := 0; i < 64; i++ {
			r.PushBack(i)
		}
		for r.Len() > 0 {
			r.PopFront()
		}
	})
	assert.Zero(t, allocs, "push/pop within the grown capacity allocates")
}

func TestRingPushFront(t *testing.T) {
	var r Ring[int]
	for i := range 5 {
		r.PushBack(i + 10) // 10..14
	}
	for i := range 20 { // wraps and grows from the front
		r.PushFront(9 - i) // 9, 8, ..., -10
	}
	for want := -10; want <= 14; want++ {
		v, ok := r.PopFront()
		require.True(t, ok, "pop %d", want)
		require.Equal(t, want, v, "elements pushed at the front come out first, newest first")
	}
	assert.Zero(t, r.Len(), "empty at the end")
}

func TestRingFreesABurstOnceEmpty(t *testing.T) {
	var r Ring[int]
	for i := range 3 * shrinkAbove {
		r.PushBack(i)
	}
	for r.Len() > 1 {
		r.PopFront()
	}
	assert.Greater(t, len(r.buf), shrinkAbove, "the burst's slice is kept while elements remain")
	r.PopFront()
	assert.Nil(t, r.buf, "an emptied queue frees a slice above shrinkAbove")
	r.PushBack(1)
	v, ok := r.PopFront()
	assert.True(t, ok && v == 1, "the queue works after freeing its slice")
	assert.NotNil(t, r.buf, "a small slice is kept once emptied")
}

// RemoveAt takes out one element anywhere, also across the wrap, and keeps
// the order of the rest.
func TestRemoveAt(t *testing.T) {
	for i := 0; i < 8; i++ {
		var r Ring[int]
		for k := 0; k < 5; k++ { // wrap the ring: head moves to 5
			r.PushBack(-1)
			r.PopFront()
		}
		for k := 0; k < 8; k++ {
			r.PushBack(k)
		}
		if got := r.RemoveAt(i); got != i {
			t.Fatalf("RemoveAt(%d) = %d", i, got)
		}
		var rest []int
		for r.Len() > 0 {
			v, _ := r.PopFront()
			rest = append(rest, v)
		}
		want := []int{}
		for k := 0; k < 8; k++ {
			if k != i {
				want = append(want, k)
			}
		}
		if fmt.Sprint(rest) != fmt.Sprint(want) {
			t.Fatalf("after RemoveAt(%d): %v, want %v", i, rest, want)
		}
	}
}

// PushBackSlot and DropFront are PushBack and PopFront without the copy.
func TestSlotAndDrop(t *testing.T) {
	var r Ring[int]
	for k := 0; k < 20; k++ {
		*r.PushBackSlot() = k
	}
	for k := 0; k < 20; k++ {
		if got := *r.Front(); got != k {
			t.Fatalf("front %d, want %d", got, k)
		}
		r.DropFront()
	}
	if r.Len() != 0 {
		t.Fatalf("Len %d after dropping everything", r.Len())
	}
}
