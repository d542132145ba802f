package stream_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/streamkit/stream"
)

// Event is a record of the object-mode examples.
type Event struct {
	ID   int
	Kind string
}

// A batch insert with an acknowledgement per record: the sink inserts up
// to 500 events per call on a worker goroutine, and reports the one it
// rejects through ItemErrors, so that only that event fails while its
// neighbours are acknowledged. Memory stays bounded by the high-water mark
// (in events), and Close returns once every event has its outcome.
func ExampleNewWritableOf() {
	seen := map[int]bool{}
	insertBatch := func(evs []Event) error { // a database, a broker...
		var errs stream.ItemErrors
		for i, ev := range evs {
			if seen[ev.ID] {
				if errs == nil {
					errs = make(stream.ItemErrors, len(evs))
				}
				errs[i] = fmt.Errorf("event %d: duplicate key", ev.ID)
				continue
			}
			seen[ev.ID] = true
		}
		if errs != nil {
			return errs
		}
		return nil
	}

	jobs := make(chan func(), 1)
	go func() {
		for job := range jobs {
			job()
		}
	}()
	acked, rejected, largest := 0, []error(nil), 0
	w := stream.NewWritableOf(nil, stream.OptionsOf[Event]{
		Writev: func(evs []Event, done stream.Callback) {
			largest = max(largest, len(evs))
			jobs <- func() { done(insertBatch(evs)) }
		},
		MaxBatch:      500,
		HighWaterMark: 2000,
		OnWritten: func(ev Event, err error) {
			if err != nil {
				rejected = append(rejected, err)
				return
			}
			acked++
		},
	})

	ctx := context.Background()
	for id := range 10000 {
		if id == 4242 {
			id = 42 // a duplicate
		}
		if !w.WriteChunk(Event{ID: id, Kind: "click"}, nil) {
			if err := w.Wait(ctx); err != nil {
				fmt.Println("stream failed:", err)
				break
			}
		}
	}
	err := w.Close()
	close(jobs)

	fmt.Println("close:", err)
	fmt.Println("acknowledged:", acked)
	fmt.Println("rejected:", rejected)
	fmt.Println("batches of at most 500:", largest <= 500)
	// Output:
	// close: <nil>
	// acknowledged: 9999
	// rejected: [event 42: duplicate key]
	// batches of at most 500: true
}

// A bounded event queue in front of a sink that has stalled: with
// MaxBuffered and DropOldest, the queue keeps the newest events and drops
// the oldest waiting ones (never the one the sink holds), so memory stays
// at MaxBuffered events whatever the producers do.
func ExampleDropOldest() {
	release := make(chan struct{})
	var delivered []int
	w := stream.NewWritableOf(func(v int, done stream.Callback) {
		delivered = append(delivered, v)
		go func() { <-release; done(nil) }() // a stalled sink
	}, stream.OptionsOf[int]{HighWaterMark: 10, MaxBuffered: 10, Overflow: stream.DropOldest})

	dropped := 0
	for v := range 100 {
		w.WriteChunk(v, func(err error) {
			if errors.Is(err, stream.ErrDropped) {
				dropped++
			}
		})
	}
	fmt.Println("buffered:", w.State().Length)
	close(release) // the sink recovers
	err := w.Close()

	fmt.Println("close:", err)
	fmt.Println("dropped:", dropped, "State.Dropped:", w.State().Dropped)
	fmt.Println("delivered:", delivered)
	// Output:
	// buffered: 10
	// close: <nil>
	// dropped: 90 State.Dropped: 90
	// delivered: [0 91 92 93 94 95 96 97 98 99]
}

// Linger fills batches: with an idle sink every item would go alone; with
// Linger a partial batch waits for more (here until Flush, which sends it
// at once, well within the second).
func ExampleOptionsOf_linger() {
	batches := func(linger time.Duration) []int {
		var sizes []int
		w := stream.NewWritableOf(nil, stream.OptionsOf[Event]{
			Writev: func(evs []Event, done stream.Callback) {
				sizes = append(sizes, len(evs))
				done(nil)
			},
			Linger: linger,
		})
		for id := range 10 {
			w.WriteChunk(Event{ID: id}, nil)
		}
		if err := w.Flush(context.Background()); err != nil {
			fmt.Println("flush:", err)
		}
		w.Close()
		return sizes
	}
	fmt.Println("without Linger:", batches(0))
	fmt.Println("with Linger:   ", batches(time.Second))
	// Output:
	// without Linger: [1 1 1 1 1 1 1 1 1 1]
	// with Linger:    [10]
}
