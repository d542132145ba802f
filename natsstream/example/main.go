// Command example publishes a million small messages to NATS JetStream
// through a natsstream Publisher and reads them back, then does the same
// with the loop a NATS user writes by hand (PublishAsync with nats.go's
// PublishAsyncMaxPending), so that the two rates compare in one run.
//
//	cd natsstream && go run ./example
//
// It starts a nats-server with JetStream inside the process, storing in a
// temporary directory, unless NATS_URL names a server to use. Flags:
// -n (messages), -size (bytes each), -mode (both, publisher, baseline),
// -rounds (rounds of both, each printing the ratios of their rates in
// messages per second and per CPU second; the order alternates, and the
// medians end the output).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/streamkit/stream/natsstream"
)

const (
	streamName = "EXAMPLE"
	subject    = "EXAMPLE.events"
)

func main() {
	n := flag.Int("n", 1_000_000, "messages to publish")
	size := flag.Int("size", 16, "bytes per message (at least the digits of its index)")
	mode := flag.String("mode", "both", "both, publisher or baseline")
	rounds := flag.Int("rounds", 1, "rounds of the modes, alternating their order")
	flag.Parse()
	if err := run(*n, *size, *mode, *rounds); err != nil {
		log.Fatal(err)
	}
}

func run(n, size int, mode string, rounds int) error {
	url := os.Getenv("NATS_URL")
	if url == "" {
		srv, stop, err := embeddedServer()
		if err != nil {
			return err
		}
		defer stop()
		url = srv.ClientURL()
		fmt.Printf("embedded nats-server %s at %s\n", server.VERSION, url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()

	runs := map[string]func(*nats.Conn, int, int) (result, error){
		"baseline": baseline, "publisher": publisher,
	}
	order := []string{"baseline", "publisher"}
	if mode != "both" {
		if runs[mode] == nil {
			return fmt.Errorf("unknown -mode %q", mode)
		}
		order = []string{mode}
	}
	var wall, cpu []float64 // publisher / baseline, per round
	for round := range rounds {
		res := map[string]result{}
		for _, name := range order {
			runtime.GC() // do not bill one run for the garbage of the one before
			r, err := runs[name](nc, n, size)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			res[name] = r
		}
		if len(order) == 2 {
			p, b := res["publisher"], res["baseline"]
			wall = append(wall, p.rate()/b.rate())
			cpu = append(cpu, b.cpuPerMsg()/p.cpuPerMsg())
			fmt.Printf("round %d: publisher / baseline: %.2f in messages/s, %.2f in messages per CPU second\n",
				round+1, wall[len(wall)-1], cpu[len(cpu)-1])
			// Alternate which goes first, so that neither always runs on a
			// warmer (or busier) machine.
			order[0], order[1] = order[1], order[0]
		}
	}
	if len(wall) > 1 {
		fmt.Printf("publisher / baseline over %d rounds: messages/s %s; messages per CPU second %s\n",
			len(wall), summary(wall), summary(cpu))
	}
	return nil
}

// result is one timed run.
type result struct {
	n         int
	wall, cpu time.Duration
}

func (r result) rate() float64      { return float64(r.n) / r.wall.Seconds() }
func (r result) cpuPerMsg() float64 { return float64(r.cpu) / float64(r.n) }

func (r result) String() string {
	return fmt.Sprintf("%d messages in %v: %.0f messages/s, %.2fµs CPU each",
		r.n, r.wall.Round(time.Millisecond), r.rate(), r.cpuPerMsg()/1e3)
}

// timer measures a run in wall clock and process CPU time.
type timer struct {
	wall time.Time
	cpu  time.Duration
}

func startTimer() timer { return timer{time.Now(), cpuTime()} }

func (t timer) stop(n int) result {
	return result{n, time.Since(t.wall), cpuTime() - t.cpu}
}

// summary gives the median and range of ratios.
func summary(r []float64) string {
	s := slices.Clone(r)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return fmt.Sprintf("median %.2f (min %.2f, max %.2f)", m, s[0], s[len(s)-1])
}

// publisher publishes n messages through a natsstream Publisher, checks
// every outcome and reads the stream back in order.
func publisher(nc *nats.Conn, n, size int) (result, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return result{}, err
	}
	if err := freshStream(js); err != nil {
		return result{}, err
	}

	var (
		mu                     sync.Mutex
		batches, items, failed int
		peak                   int
	)
	ctx := context.Background()
	w := natsstream.NewPublisher(js, natsstream.Options{
		OnBatch: func(s natsstream.BatchStats) {
			mu.Lock()
			batches++
			items += s.Items
			failed += s.Failed
			peak = max(peak, s.PeakPending)
			mu.Unlock()
		},
	})
	t := startTimer()
	for i := range n {
		if !w.WriteChunk(&nats.Msg{Subject: subject, Data: payload(i, size)}, nil) {
			if err := w.Wait(ctx); err != nil {
				return result{}, err
			}
		}
	}
	if err := w.Close(); err != nil { // waits for every ack
		return result{}, err
	}
	res := t.stop(n)

	read, err := readBack(js, size)
	if err != nil {
		return result{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("publisher: %v; acks outstanding at peak %d; %d batches, mean %.0f messages; %d failed; %d read back in order\n",
		res, peak, batches, float64(items)/float64(batches), failed, read)
	return res, nil
}

// baseline publishes n messages with the loop a NATS user writes: nats.go
// caps the acks outstanding (PublishAsyncMaxPending) and the loop waits
// for them all at the end. Its failures reach an error handler, unordered
// and apart from their messages' place in the loop; the only bound on the
// wait is the loop's own timer.
func baseline(nc *nats.Conn, n, size int) (result, error) {
	var failed sync.Map
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(natsstream.DefaultMaxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			failed.Store(string(m.Data), err)
		}))
	if err != nil {
		return result{}, err
	}
	if err := freshStream(js); err != nil {
		return result{}, err
	}
	t := startTimer()
	for i := range n {
		data := payload(i, size)
		for {
			_, err := js.PublishAsync(subject, data)
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				continue // no ack freed a slot within nats.go's 200ms: try again
			}
			if err != nil {
				return result{}, err
			}
			break
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return result{}, errors.New("acks not in within a minute")
	}
	res := t.stop(n)
	var nfailed int
	failed.Range(func(any, any) bool { nfailed++; return true })
	info, err := streamInfo(js)
	if err != nil {
		return result{}, err
	}
	fmt.Printf("baseline:  %v (PublishAsync, PublishAsyncMaxPending %d); %d failed; %d in the stream\n",
		res, natsstream.DefaultMaxPending, nfailed, info.State.Msgs)
	return res, nil
}

// payload is message i: its index in decimal, padded to size bytes.
func payload(i, size int) []byte {
	b := make([]byte, 0, size)
	b = strconv.AppendInt(b, int64(i), 10)
	for len(b) < size {
		b = append(b, ' ')
	}
	return b
}

// readBack reads the stream with an ordered consumer, checks that message
// i holds index i, and returns the count.
func readBack(js jetstream.JetStream, size int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := streamInfo(js)
	if err != nil {
		return 0, err
	}
	cons, err := js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	for i := range int(info.State.Msgs) {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return i, err
		}
		if want := payload(i, size); string(m.Data()) != string(want) {
			return i, fmt.Errorf("message %d holds %q", i, m.Data())
		}
	}
	return int(info.State.Msgs), nil
}

// freshStream (re)creates the example's stream, empty, in files.
func freshStream(js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, streamName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     streamName,
		Subjects: []string{subject},
		Storage:  jetstream.FileStorage,
	})
	return err
}

func streamInfo(js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// embeddedServer starts a nats-server with JetStream on a random loopback
// port, storing in a temporary directory that stop removes.
func embeddedServer() (*server.Server, func(), error) {
	dir, err := os.MkdirTemp("", "natsstream-example-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, errors.New("nats-server not ready within 10s")
	}
	stop := func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		os.RemoveAll(dir)
	}
	return srv, stop, nil
}
