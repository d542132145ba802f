// Command sqlbatch inserts 100,000 rows into SQLite through a
// stream.WritableOf[Row]: batches of up to 500 rows reach the database
// through Writev, one transaction each, every row gets its own
// acknowledgement (OnWritten), and the stream holds at most 1,000 rows at a
// time however fast the producer is. Then it does the same inserts one row
// per call (one transaction per row) and prints both rates.
//
//	cd examples/sqlbatch && go run .
//	go run . -rows 20000 -batch 100 -db /tmp/rows.db -mode batch
//
// The database is modernc.org/sqlite (SQLite in pure Go: nothing to
// install), a file in a temporary directory unless -db names one.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/streamkit/stream"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// config is what one run does.
type config struct {
	path     string // the database file
	rows     int    // rows to insert
	maxBatch int    // rows per transaction (OptionsOf.MaxBatch); 0: one row per call
}

// result is what a run measured and checked.
type result struct {
	rows         int           // rows written
	elapsed      time.Duration // from the first WriteChunk until Close returned
	batches      int           // transactions committed
	largest      int           // rows in the largest one
	retried      int           // chunks inserted again row by row
	peakBuffered int           // highest State().Length seen: waiting and in flight
	maxBuffered  int           // the stream's cap (OptionsOf.MaxBuffered)
	dropped      int           // State().Dropped
	acked        int           // rows whose OnWritten got nil
	failed       int           // rows whose OnWritten got an error
	firstErr     error         // the first of those errors
	missing      int           // rows with no acknowledgement
	repeated     int           // rows acknowledged more than once
	inTable      int64         // SELECT count(*) at the end
	closeErr     error         // what Close returned
}

// check returns an error unless every row was inserted and acknowledged
// exactly once.
func (r result) check() error {
	var errs []error
	if r.closeErr != nil {
		errs = append(errs, fmt.Errorf("Close: %w", r.closeErr))
	}
	if r.missing > 0 || r.repeated > 0 {
		errs = append(errs, fmt.Errorf("%d rows never acknowledged, %d more than once", r.missing, r.repeated))
	}
	if r.failed > 0 {
		errs = append(errs, fmt.Errorf("%d rows failed, first: %w", r.failed, r.firstErr))
	}
	if r.inTable != int64(r.acked) {
		errs = append(errs, fmt.Errorf("table holds %d rows, %d were acknowledged", r.inTable, r.acked))
	}
	if r.peakBuffered > r.maxBuffered {
		errs = append(errs, fmt.Errorf("%d rows buffered, above MaxBuffered %d", r.peakBuffered, r.maxBuffered))
	}
	return errors.Join(errs...)
}

func (r result) rate() float64 { return float64(r.rows) / r.elapsed.Seconds() }

func main() {
	log.SetFlags(0)
	rows := flag.Int("rows", 100_000, "rows to insert")
	batch := flag.Int("batch", 500, "rows per Writev batch and transaction (OptionsOf.MaxBatch)")
	path := flag.String("db", "", "the SQLite file (default: rows.db in a new temporary directory, removed at exit)")
	mode := flag.String("mode", "both", "batch, single (one row per call and transaction) or both")
	flag.Parse()
	if *rows < 1 || *batch < 1 || (*mode != "batch" && *mode != "single" && *mode != "both") {
		flag.Usage()
		os.Exit(2)
	}
	tmpDir := "" // made here, removed at exit
	if *path == "" {
		var err error
		if tmpDir, err = os.MkdirTemp("", "sqlbatch-"); err != nil {
			log.Fatal(err)
		}
		*path = filepath.Join(tmpDir, "rows.db")
	}

	fmt.Printf("%d rows into %s (WAL, synchronous=NORMAL)\n", *rows, *path)
	ctx := context.Background()
	var batched, single result
	ok := true
	if *mode != "single" {
		batched, ok = runAndPrint(ctx, "batched", config{path: *path, rows: *rows, maxBatch: *batch})
	}
	if *mode != "batch" {
		var singleOK bool
		single, singleOK = runAndPrint(ctx, "one row per call", config{path: *path, rows: *rows})
		ok = ok && singleOK
	}
	if *mode == "both" && ok {
		fmt.Printf("batched: %.1f× the rate of one row per call\n", batched.rate()/single.rate())
	}
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	if !ok {
		os.Exit(1)
	}
}

// runAndPrint runs cfg and prints what it measured and whether the checks
// passed.
func runAndPrint(ctx context.Context, name string, cfg config) (result, bool) {
	r, err := run(ctx, cfg)
	if err != nil {
		fmt.Printf("%s: %v\n", name, err)
		return r, false
	}
	fmt.Printf("%s: %d rows in %v: %.0f rows/s\n", name, r.rows, r.elapsed.Round(time.Millisecond), r.rate())
	fmt.Printf("  %d transactions, mean %.1f rows, largest %d; peak buffered %d rows (MaxBuffered %d), %d dropped\n",
		r.batches, float64(r.rows)/float64(r.batches), r.largest, r.peakBuffered, r.maxBuffered, r.dropped)
	if err := r.check(); err != nil {
		fmt.Printf("  FAILED: %v\n", err)
		return r, false
	}
	fmt.Printf("  table holds %d rows; %d acknowledged, each once, none failed: OK\n", r.inTable, r.acked)
	return r, true
}

// run makes a fresh rows table in cfg.path and writes cfg.rows rows into
// it through a WritableOf, one producer respecting backpressure.
func run(ctx context.Context, cfg config) (result, error) {
	db, conn, err := openDB(ctx, cfg.path)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS rows"); err != nil {
		return result{}, err
	}
	s, err := newSink(ctx, conn)
	if err != nil {
		return result{}, err
	}

	r := result{rows: cfg.rows}
	// OnWritten runs one item at a time, in order, never concurrently:
	// acks needs no lock, and Close returns after its last call.
	acks := make([]uint8, cfg.rows+1)
	opts := stream.OptionsOf[Row]{
		OnWritten: func(row Row, err error) {
			acks[row.ID]++
			if err != nil {
				if r.failed++; r.firstErr == nil {
					r.firstErr = err
				}
			}
		},
		Destroy: s.stop,
	}
	write := s.insertOne
	if cfg.maxBatch > 0 {
		// A batch being inserted and the next one filling up: WriteChunk
		// returns false at two batches, "drain" fires once one is done,
		// and nothing is ever accepted beyond two batches.
		write = nil
		opts.Writev = s.insertBatch
		opts.MaxBatch = cfg.maxBatch
		opts.HighWaterMark = 2 * cfg.maxBatch
		opts.LowWaterMark = cfg.maxBatch
		opts.MaxBuffered = 2 * cfg.maxBatch
	} else {
		opts.HighWaterMark = 1000
		opts.MaxBuffered = 1000
	}
	w := stream.NewWritableOf(write, opts)
	r.maxBuffered = opts.MaxBuffered

	start := time.Now()
	for i := 1; i <= cfg.rows; i++ {
		ok := w.WriteChunk(Row{ID: int64(i), Name: fmt.Sprintf("row-%07d", i), Value: float64(i) / 8}, nil)
		r.peakBuffered = max(r.peakBuffered, w.State().Length)
		if !ok {
			if err := w.Wait(ctx); err != nil {
				break // the stream failed; Close reports why
			}
		}
	}
	r.dropped = w.State().Dropped
	r.closeErr = w.Close()
	r.elapsed = time.Since(start)

	r.batches, r.largest, r.retried = s.batches, s.largest, s.retried
	for _, n := range acks[1:] {
		switch {
		case n == 0:
			r.missing++
		case n > 1:
			r.repeated++
		}
	}
	r.acked = cfg.rows - r.missing - r.failed
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM rows").Scan(&r.inTable); err != nil {
		return r, err
	}
	return r, nil
}

// openDB opens the SQLite file at path (made if missing) in WAL mode with
// synchronous=NORMAL, the usual settings of a write-heavy SQLite, and
// returns one connection of it: SQLite has a single writer.
func openDB(ctx context.Context, path string) (*sql.DB, *sql.Conn, error) {
	db, err := sql.Open("sqlite", "file:"+path+
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, conn, nil
}
