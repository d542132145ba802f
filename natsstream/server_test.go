package natsstream

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// testServer is a nats-server with JetStream running in the test process,
// listening on a random loopback port, storing in a t.TempDir().
type testServer struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
}

// startServer starts a server; cleanup shuts it down.
func startServer(t testing.TB) *testServer {
	t.Helper()
	ts := &testServer{t: t, dir: t.TempDir(), port: -1}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// start starts the server on ts.port (a random one the first time) and
// waits until it takes connections.
func (ts *testServer) start() {
	ts.t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      ts.port,
		JetStream: true,
		StoreDir:  ts.dir,
		NoLog:     true,
		NoSigs:    true,
	})
	require.NoError(ts.t, err, "nats-server options")
	srv.Start()
	require.True(ts.t, srv.ReadyForConnections(10*time.Second), "nats-server ready within 10s")
	ts.srv = srv
	ts.port = srv.Addr().(*net.TCPAddr).Port
}

// stop shuts the server down and waits until it has; a no-op if stopped.
func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ts.srv.Shutdown()
	ts.srv.WaitForShutdown()
	ts.srv = nil
}

// restart stops the server and starts it again on the same port with the
// same storage, as after a crash or an upgrade.
func (ts *testServer) restart() {
	ts.t.Helper()
	ts.stop()
	ts.start()
}

// url is the server's client URL; it stays the same across restarts.
func (ts *testServer) url() string {
	return (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ts.port}).String()
}

// connect opens a client connection that reconnects quickly and forever;
// cleanup closes it.
func (ts *testServer) connect(opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	ts.t.Helper()
	opts = append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect("nats://"+ts.url(), opts...)
	require.NoError(ts.t, err, "connect to nats-server")
	ts.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(ts.t, err, "jetstream context")
	return nc, js
}

// createStream makes a file-backed stream named name over subject name+".>"
// (so it survives a restart); cfg may change the configuration.
func createStream(t testing.TB, js jetstream.JetStream, name string, cfg ...func(*jetstream.StreamConfig)) {
	t.Helper()
	c := jetstream.StreamConfig{
		Name:     name,
		Subjects: []string{name + ".>"},
		Storage:  jetstream.FileStorage,
	}
	for _, f := range cfg {
		f(&c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, c)
	require.NoError(t, err, "create stream %s", name)
}

// limitMsgs makes a stream that stores at most n messages and rejects the
// rest (DiscardNew).
func limitMsgs(n int64) func(*jetstream.StreamConfig) {
	return func(c *jetstream.StreamConfig) {
		c.MaxMsgs = n
		c.Discard = jetstream.DiscardNew
	}
}

// storedMsg is a message read back from a stream.
type storedMsg struct {
	seq     uint64
	subject string
	data    string
}

// storedData returns the data of every message in the stream, in order.
func storedData(t testing.TB, js jetstream.JetStream, name string) []string {
	t.Helper()
	var data []string
	for _, m := range readStream(t, js, name) {
		data = append(data, m.data)
	}
	return data
}

// readStream reads every message of the stream back, in stream order,
// with an ordered consumer, and fails the test if that takes longer than
// two minutes (100,000 messages take seconds, under -race on a loaded
// machine tens of seconds).
func readStream(t testing.TB, js jetstream.JetStream, name string) []storedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, name)
	require.NoError(t, err, "look up stream %s", name)
	info, err := s.Info(ctx)
	require.NoError(t, err, "stream info %s", name)
	want := int(info.State.Msgs)
	if want == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err, "ordered consumer on %s", name)
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	require.NoError(t, err, "consume %s", name)
	defer it.Stop()
	got := make([]storedMsg, 0, want)
	for len(got) < want {
		m, err := it.Next(jetstream.NextContext(ctx))
		require.NoError(t, err, "read message %d of %d from %s", len(got)+1, want, name)
		md, err := m.Metadata()
		require.NoError(t, err, "metadata of message %d", len(got)+1)
		got = append(got, storedMsg{md.Sequence.Stream, m.Subject(), string(m.Data())})
	}
	return got
}

// msgs returns n messages to subject whose data is prefix and their index,
// counting from from.
func msgs(subject, prefix string, from, n int) []*nats.Msg {
	out := make([]*nats.Msg, n)
	for i := range out {
		out[i] = &nats.Msg{Subject: subject, Data: []byte(prefix + strconv.Itoa(from+i))}
	}
	return out
}

// disconnected returns a connect option and a channel closed at the first
// disconnect of the connection.
func disconnected() (nats.Option, <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	return nats.DisconnectErrHandler(func(*nats.Conn, error) { once.Do(func() { close(ch) }) }), ch
}

// serverGone stops ts and waits until the client saw it go (down comes
// from disconnected).
func serverGone(t testing.TB, ts *testServer, down <-chan struct{}) {
	t.Helper()
	ts.stop()
	waitFor(t, down, "the client to see the server gone")
}

// waitFor waits up to 10s for ch, saying what it waited for.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "timed out", "waited 10s for %s", what)
	}
}
