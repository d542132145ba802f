package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/streamkit/stream"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Row is one record inserted into the rows table.
type Row struct {
	ID    int64
	Name  string
	Value float64
}

// schema makes the table the rows go to: ID and Name are unique, so a
// repeated ID or Name is a constraint violation that fails only its row.
const schema = `CREATE TABLE IF NOT EXISTS rows (
	id    INTEGER PRIMARY KEY,
	name  TEXT NOT NULL UNIQUE,
	value REAL NOT NULL
)`

// chunkRows is how many rows one multi-row INSERT statement carries: 3
// parameters a row, far below SQLite's limit of 32766.
const chunkRows = 100

// sink inserts rows into SQLite on a goroutine of its own, so that a
// producer's WriteChunk never waits for the database: the stream calls
// insertBatch or insertOne (at most one call at a time), which hand the
// job to the worker; the worker runs the transaction and calls done.
//
// A batch is one transaction. Its rows go in multi-row INSERT statements of
// chunkRows rows. SQLite aborts a statement that violates a constraint
// (ON CONFLICT ABORT, the default) and undoes that statement alone; the
// transaction stays open. So when a chunk fails on a constraint, the sink
// inserts the chunk's rows again one by one in the same transaction: the
// rows that fail are the culprits, each gets its own error in the batch's
// ItemErrors, and their neighbours are inserted and acknowledged. Any
// other error (I/O, a full disk, a closed database) rolls the transaction
// back and fails the whole batch, which destroys the stream: every row not
// yet acknowledged then gets the error.
type sink struct {
	conn   *sql.Conn
	one    *sql.Stmt // a single-row INSERT
	chunk  *sql.Stmt // an INSERT of chunkRows rows
	args   []any     // the chunk statement's arguments, reused
	jobs   chan job
	exited chan struct{}

	// Owned by the worker; read them after the stream has closed.
	batches int   // transactions committed
	rows    int64 // rows inserted
	largest int   // rows of the largest transaction
	retried int   // chunks inserted again row by row after a constraint error
}

// job is one sink call of the stream, handed to the worker.
type job struct {
	rows []Row
	done stream.Callback
}

// newSink prepares the statements on conn (one connection: SQLite has one
// writer) and starts the worker. Stop it with the stream's Destroy hook
// (stop).
func newSink(ctx context.Context, conn *sql.Conn) (*sink, error) {
	if _, err := conn.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}
	one, err := conn.PrepareContext(ctx, insertSQL(1))
	if err != nil {
		return nil, fmt.Errorf("prepare insert: %w", err)
	}
	chunk, err := conn.PrepareContext(ctx, insertSQL(chunkRows))
	if err != nil {
		one.Close()
		return nil, fmt.Errorf("prepare insert of %d rows: %w", chunkRows, err)
	}
	s := &sink{
		conn:   conn,
		one:    one,
		chunk:  chunk,
		args:   make([]any, 0, 3*chunkRows),
		jobs:   make(chan job, 1),
		exited: make(chan struct{}),
	}
	go s.work()
	return s, nil
}

// insertSQL returns an INSERT of n rows.
func insertSQL(n int) string {
	return "INSERT INTO rows (id, name, value) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", n), ", ")
}

// insertBatch is the stream's Writev: the rows go in one transaction.
// The stream makes one sink call at a time, so the send never waits for
// more than the worker to take the previous job.
func (s *sink) insertBatch(rows []Row, done stream.Callback) {
	s.jobs <- job{rows: rows, done: done}
}

// insertOne is the stream's write for the one-row-per-call mode: a
// transaction of one row.
func (s *sink) insertOne(r Row, done stream.Callback) {
	s.jobs <- job{rows: []Row{r}, done: done}
}

// stop is the stream's Destroy hook: it stops the worker (the stream
// makes no sink call after it) and releases the statements.
func (s *sink) stop(err error, done stream.Callback) {
	close(s.jobs)
	<-s.exited
	done(errors.Join(s.one.Close(), s.chunk.Close()))
}

func (s *sink) work() {
	defer close(s.exited)
	for j := range s.jobs {
		j.done(s.insert(j.rows))
	}
}

// insert runs one transaction for rows: nil if every row went in, an
// ItemErrors if only some failed on a constraint, else the error that
// rolled the transaction back.
func (s *sink) insert(rows []Row) error {
	ctx := context.Background()
	// BEGIN and COMMIT on the sink's one connection rather than a sql.Tx:
	// Tx.StmtContext would prepare both statements again for every
	// transaction, which costs more than a transaction of one row.
	if _, err := s.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	var errs stream.ItemErrors // made at the first failed row
	inserted := 0
	for start := 0; start < len(rows); {
		n := chunkRows
		if len(rows)-start < chunkRows {
			n = 1
		}
		part := rows[start : start+n]
		var err error
		if n == chunkRows {
			err = s.execChunk(ctx, part)
		} else {
			err = s.execOne(ctx, part[0])
		}
		switch {
		case err == nil:
			inserted += n
		case !isConstraint(err):
			return s.rollback(fmt.Errorf("insert: %w", err))
		case n == 1:
			errs = setItemError(errs, len(rows), start, err)
		default:
			// The statement was undone alone; find its failing rows.
			s.retried++
			for i, r := range part {
				switch err := s.execOne(ctx, r); {
				case err == nil:
					inserted++
				case isConstraint(err):
					errs = setItemError(errs, len(rows), start+i, err)
				default:
					return s.rollback(fmt.Errorf("insert: %w", err))
				}
			}
		}
		start += n
	}
	if _, err := s.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return s.rollback(fmt.Errorf("commit: %w", err))
	}
	s.batches++
	s.rows += int64(inserted)
	s.largest = max(s.largest, len(rows))
	if errs != nil {
		return errs
	}
	return nil
}

// rollback ends the open transaction (SQLite may have rolled it back
// already, after an I/O error say) and returns err, the reason.
func (s *sink) rollback(err error) error {
	s.conn.ExecContext(context.Background(), "ROLLBACK")
	return err
}

func (s *sink) execChunk(ctx context.Context, rows []Row) error {
	s.args = s.args[:0]
	for _, r := range rows {
		s.args = append(s.args, r.ID, r.Name, r.Value)
	}
	_, err := s.chunk.ExecContext(ctx, s.args...)
	return err
}

func (s *sink) execOne(ctx context.Context, r Row) error {
	_, err := s.one.ExecContext(ctx, r.ID, r.Name, r.Value)
	return err
}

// setItemError records err as the outcome of row i of a batch of n,
// making errs on the first failure.
func setItemError(errs stream.ItemErrors, n, i int, err error) stream.ItemErrors {
	if errs == nil {
		errs = make(stream.ItemErrors, n)
	}
	errs[i] = err
	return errs
}

// isConstraint reports whether err is SQLite's constraint violation
// (UNIQUE, PRIMARY KEY, NOT NULL, CHECK...), which fails one statement and
// leaves the transaction open.
func isConstraint(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}
