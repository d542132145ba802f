package natsstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/streamkit/stream/natsstream"
)

// A Publisher gives each message the server's verdict: here a stream that
// holds two messages takes the first two and rejects the third alone.
func ExampleNewPublisher() {
	url, stop := startJetStream()
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "ORDERS", Subjects: []string{"orders.>"},
		MaxMsgs: 2, Discard: jetstream.DiscardNew,
	})
	if err != nil {
		panic(err)
	}

	w := natsstream.NewPublisher(js, natsstream.Options{
		OnWritten: func(m *nats.Msg, err error) {
			var apiErr *jetstream.APIError
			switch {
			case err == nil:
				fmt.Printf("%s: stored\n", m.Data)
			case errors.As(err, &apiErr):
				fmt.Printf("%s: rejected: %s\n", m.Data, apiErr.Description)
			default:
				fmt.Printf("%s: %v\n", m.Data, err)
			}
		},
	})
	for _, id := range []string{"order-1", "order-2", "order-3"} {
		if !w.WriteChunk(&nats.Msg{Subject: "orders.created", Data: []byte(id)}, nil) {
			if err := w.Wait(ctx); err != nil {
				panic(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		fmt.Println("Close:", err)
	}
	// Output:
	// order-1: stored
	// order-2: stored
	// order-3: rejected: maximum messages exceeded
	// Close: nats: API error: code=503 err_code=10077 description=maximum messages exceeded
}

// startJetStream runs a nats-server with JetStream in the process, on a
// random loopback port, storing in a temporary directory.
func startJetStream() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "natsstream-example-")
	if err != nil {
		panic(err)
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		panic(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		panic("nats-server not ready")
	}
	return srv.ClientURL(), func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		os.RemoveAll(dir)
	}
}
