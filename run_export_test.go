package stream

// Probes for the tests of runs in run_test.go, which are external tests: they
// read under the lock what no State field shows.

// RunInFlight reports whether a run (see run.go) is w's sink call in flight.
func RunInFlight(w *Writable) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.call == &w.runCall
}

// FlushesWaiting returns how many Flush calls on w wait for their writes.
func FlushesWaiting(w *Writable) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.flushes)
}

// RunInFlightOf is RunInFlight for a WritableOf.
func RunInFlightOf[T any](w *WritableOf[T]) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.call == &w.runCall
}
