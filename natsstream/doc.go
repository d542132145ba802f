// Package natsstream publishes to NATS JetStream through a
// [stream.WritableOf]: [NewPublisher] turns a JetStream context into a
// stream of *nats.Msg whose items are published asynchronously, in the
// order the stream accepted them, with at most Options.MaxPending acks
// outstanding, and whose callbacks get the server's ack as their outcome.
//
//	w := natsstream.NewPublisher(js, natsstream.Options{})
//	for _, m := range msgs {
//		if !w.WriteChunk(m, nil) {
//			if err := w.Wait(ctx); err != nil {
//				return err
//			}
//		}
//	}
//	return w.Close() // every ack is in; the first error, if any
//
// It is a module of its own, so that the stream module keeps only the
// standard library.
package natsstream
