package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamkit/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// closeTimeout bounds every wait of these tests for a stream to close.
const closeTimeout = 30 * time.Second

func TestRunInsertsAndAcknowledgesEveryRow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rows     int
		maxBatch int
	}{
		{"batched", 20_000, 500},
		{"one row per call", 1_000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := run(context.Background(), config{
				path: filepath.Join(t.TempDir(), "rows.db"), rows: tc.rows, maxBatch: tc.maxBatch,
			})
			require.NoError(t, err, "run")
			assert.NoError(t, r.check(), "the run's own checks: acks, table, MaxBuffered")
			assert.NoError(t, r.closeErr, "Close")
			assert.EqualValues(t, tc.rows, r.inTable, "rows in the table")
			assert.Equal(t, tc.rows, r.acked, "rows acknowledged with nil")
			assert.Zero(t, r.missing+r.repeated+r.failed, "rows missing, acknowledged twice or failed")
			assert.Zero(t, r.dropped, "rows dropped at MaxBuffered by a producer that waits")
			assert.LessOrEqual(t, r.peakBuffered, r.maxBuffered, "peak State().Length")
			if tc.maxBatch > 0 {
				assert.LessOrEqual(t, r.largest, tc.maxBatch, "rows in the largest transaction")
				assert.GreaterOrEqual(t, r.batches, tc.rows/tc.maxBatch, "transactions")
				assert.Less(t, r.batches, tc.rows, "transactions: some must hold more than one row")
			} else {
				assert.Equal(t, tc.rows, r.batches, "transactions of one row")
			}
		})
	}
}

// openSink opens a fresh database in t.TempDir() with the rows table and
// a sink on it.
func openSink(t *testing.T) (*sink, *sql.Conn) {
	t.Helper()
	ctx := context.Background()
	db, conn, err := openDB(ctx, filepath.Join(t.TempDir(), "rows.db"))
	require.NoError(t, err, "open the database")
	t.Cleanup(func() {
		conn.Close()
		db.Close()
	})
	s, err := newSink(ctx, conn)
	require.NoError(t, err, "make the sink")
	return s, conn
}

// outcomes records what each row's callback got.
type outcomes struct {
	errs  []error // by index of the write
	calls []int
}

func newOutcomes(n int) *outcomes { return &outcomes{errs: make([]error, n), calls: make([]int, n)} }

// cb returns the callback of write i. Callbacks run one at a time, and
// Close returns after the last: no lock needed.
func (o *outcomes) cb(i int) stream.Callback {
	return func(err error) {
		o.errs[i] = err
		o.calls[i]++
	}
}

func row(i int) Row { return Row{ID: int64(i), Name: fmt.Sprintf("row-%d", i), Value: float64(i)} }

// writeCorked writes rows between Cork and Uncork, so that they reach the
// sink as batches of MaxBatch, and closes the stream.
func writeCorked(t *testing.T, w *stream.WritableOf[Row], rows []Row, o *outcomes) error {
	t.Helper()
	w.Cork()
	for i, r := range rows {
		w.WriteChunk(r, o.cb(i))
	}
	w.Uncork()
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(closeTimeout):
		t.Fatalf("Close did not return within %v: %+v", closeTimeout, w.State())
		return nil
	}
}

func countRows(t *testing.T, conn *sql.Conn, where string) int {
	t.Helper()
	var n int
	require.NoError(t, conn.QueryRowContext(context.Background(), "SELECT count(*) FROM rows "+where).Scan(&n), "count rows")
	return n
}

// A row that violates a constraint fails alone: the batch's transaction
// commits its neighbours, the stream stays alive, and only that row's
// callback and OnWritten get the error.
func TestConstraintViolationFailsOnlyItsRow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batch   int
		bad     map[int]Row // index in the batch → the row written there
		retried int         // multi-row statements with a bad row
	}{
		{
			// Rows 250 and 420 are in multi-row statements (chunks 2 and
			// 4), which the sink inserts again row by row.
			name: "in multi-row statements", batch: 500, retried: 2,
			bad: map[int]Row{
				250: {ID: 11, Name: "duplicate id", Value: 1},   // PRIMARY KEY of row 11
				420: {ID: 100_000, Name: row(5).Name, Value: 1}, // UNIQUE name of row 5
			},
		},
		{
			// 150 rows: one statement of 100, then single-row inserts; row
			// 120 fails in a single-row insert.
			name: "in single-row statements", batch: 150,
			bad: map[int]Row{120: {ID: 3, Name: "duplicate id", Value: 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, conn := openSink(t)
			var written []error // OnWritten's outcomes, in order
			w := stream.NewWritableOf(nil, stream.OptionsOf[Row]{
				Writev:        s.insertBatch,
				MaxBatch:      tc.batch,
				HighWaterMark: tc.batch,
				OnWritten:     func(_ Row, err error) { written = append(written, err) },
				Destroy:       s.stop,
			})
			rows := make([]Row, tc.batch)
			for i := range rows {
				rows[i] = row(i + 1)
				if r, ok := tc.bad[i]; ok {
					rows[i] = r
				}
			}
			o := newOutcomes(len(rows))
			require.NoError(t, writeCorked(t, w, rows, o), "Close: rows failing alone do not fail the stream")
			require.NoError(t, w.Err(), "the stream's error")

			require.Len(t, written, len(rows), "OnWritten calls")
			for i := range rows {
				require.Equal(t, 1, o.calls[i], "callback calls of row %d", i)
				assert.Equal(t, o.errs[i], written[i], "OnWritten and the callback of row %d get the same outcome", i)
				if _, bad := tc.bad[i]; bad {
					assert.True(t, isConstraint(o.errs[i]), "row %d: want a constraint error, got %v", i, o.errs[i])
				} else {
					assert.NoError(t, o.errs[i], "row %d", i)
				}
			}
			assert.Equal(t, len(rows)-len(tc.bad), countRows(t, conn, ""), "rows in the table")
			for i, r := range tc.bad {
				assert.Equal(t, 2, countRows(t, conn, fmt.Sprintf("WHERE id IN (%d, %d)", rows[i-1].ID, rows[i+1].ID)),
					"the neighbours of row %d are in the table", i)
				assert.Zero(t, countRows(t, conn, fmt.Sprintf("WHERE id = %d AND name = '%s'", r.ID, r.Name)),
					"row %d is not in the table", i)
			}
			assert.Equal(t, tc.retried, s.retried, "multi-row statements inserted again row by row")
			assert.Equal(t, 1, s.batches, "one transaction for the batch")
			assert.Equal(t, tc.batch, s.largest, "rows of the transaction")
		})
	}
}

// Any other error rolls the whole transaction back and fails the batch:
// the stream is destroyed with it, every row's callback gets it, and
// Close returns it.
func TestDatabaseErrorFailsTheBatch(t *testing.T) {
	s, conn := openSink(t)
	w := stream.NewWritableOf(nil, stream.OptionsOf[Row]{
		Writev:        s.insertBatch,
		MaxBatch:      100,
		HighWaterMark: 300,
		Destroy:       s.stop,
	})
	// The sink is idle until Uncork: the connection is free.
	_, err := conn.ExecContext(context.Background(), "DROP TABLE rows")
	require.NoError(t, err, "drop the table under the sink")

	rows := make([]Row, 250)
	for i := range rows {
		rows[i] = row(i + 1)
	}
	o := newOutcomes(len(rows))
	err = writeCorked(t, w, rows, o)
	require.Error(t, err, "Close after a failed transaction")
	var items stream.ItemErrors
	assert.False(t, errors.As(err, &items), "a whole-batch failure is not an ItemErrors: %v", err)
	assert.ErrorContains(t, err, "no such table", "Close reports the database's error")
	for i := range rows {
		require.Equal(t, 1, o.calls[i], "callback calls of row %d", i)
		assert.Error(t, o.errs[i], "row %d", i)
	}
	assert.Zero(t, s.batches, "transactions committed")
}
