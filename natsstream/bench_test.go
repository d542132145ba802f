package natsstream

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The loop a NATS user writes, the baseline for the publisher: publish
// asynchronously with nats.go capping the acks outstanding, then wait for
// them all; beside it the Publisher, and its sink alone (batch=N). Run
// them side by side:
//
//	go test -run '^$' -bench Publish -benchtime 200000x
func BenchmarkPublish(b *testing.B) {
	data := []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	b.Run("baseline=PublishAsync", func(b *testing.B) {
		_, js := benchStream(b, jetstream.WithPublishAsyncMaxPending(DefaultMaxPending))
		b.ReportAllocs()
		for b.Loop() {
			if err := publishAsync(js, "BENCH.x", data); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			b.Fatal("acks not in within 30s")
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("publisher", func(b *testing.B) {
		_, js := benchStream(b)
		w := NewPublisher(js, Options{})
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if !w.WriteChunk(&nats.Msg{Subject: "BENCH.x", Data: data}, nil) {
				if err := w.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	for _, size := range []int{1024, 4096} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			_, js := benchStream(b)
			p := newTestPublisher(b, js, Options{})
			msgs := make([]*nats.Msg, size)
			b.ReportAllocs()
			for n := 0; n < b.N; n += size {
				k := min(size, b.N-n)
				for i := range msgs[:k] {
					msgs[i] = &nats.Msg{Subject: "BENCH.x", Data: data}
				}
				if errs := publishBatch(b, p, msgs[:k], 30*time.Second); errs != nil {
					b.Fatal(errs)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func benchStream(b *testing.B, opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream) {
	ts := startServer(b)
	nc, js := ts.connect()
	createStream(b, js, "BENCH", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage })
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return nc, js
}

// publishAsync is PublishAsync retried while nats.go reports a stall
// (ErrTooManyStalledMsgs: no ack freed a slot within its 200ms), as a
// loop that must not lose messages has to do.
func publishAsync(js jetstream.JetStream, subject string, data []byte) error {
	for {
		_, err := js.PublishAsync(subject, data)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
	}
}
