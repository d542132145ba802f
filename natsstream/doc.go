// Package natsstream publishes to NATS JetStream through a
// [stream.WritableOf]: items are published asynchronously, in order, with
// at most a bounded number of acks outstanding, and each item's callback
// gets the server's ack as its outcome.
package natsstream
