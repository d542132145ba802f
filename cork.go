package stream

// Cork makes the stream buffer every write, even when the sink is free,
// until a matching Uncork: n Corks need n Uncorks. Batching small writes
// this way lets a stream with Options.Writev hand them to the sink in one
// vectored call. End uncorks fully.
func (w *Writable) Cork() {
	w.checkMade()
	w.mu.Lock()
	w.closeFastLocked()
	w.corked++
	w.mu.Unlock()
}

// Uncork undoes one Cork. When the last Cork is undone and no sink call is
// in flight, the buffered chunks flush at once: all of them in one Writev
// call if there are two or more and Options.Writev is set, else one by one
// through the WriteFunc. With a call in flight, they flush when it
// completes. An Uncork without a Cork does nothing.
func (w *Writable) Uncork() {
	w.checkMade()
	w.mu.Lock()
	if w.corked > 0 {
		w.corked--
		if w.corked == 0 {
			w.pumpLocked()
			w.scheduleLocked()
		}
	}
	w.unlock()
}
