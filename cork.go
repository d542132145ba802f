package stream

// Corking: Cork and Uncork on either front (see [Writable.Cork]) count the
// nesting in corked; the pump sends nothing while it is positive (see
// startLocked), and the Uncork that brings it to zero flushes the buffer,
// as one Writev call when there are two or more items and Writev is set.

// cork is Cork.
func (w *core[T]) cork() {
	w.mu.Lock()
	w.closeFastLocked()
	w.attendRunLocked()
	w.corked++
	w.mu.Unlock()
}

// uncork is Uncork.
func (w *core[T]) uncork() {
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
