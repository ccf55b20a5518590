// Package auditappend is audit-append: it appends events to a Declaragent
// audit database as chained records, safely beside other writers. The man
// page is cmd/audit-append/doc.go.
package auditappend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/auditpipe/auditpipe/lib/auditdb"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

const prog = "audit-append"

const synopsis = `usage: audit-append --db PATH [flags] < events.ndjson

Appends each event (one JSON object per line) as a chained record in the
Declaragent schema, creating the database if absent. ts defaults to now;
tenant_id is the event's tenantId, else sourceTenantId, else "_system".

Examples:
  echo '{"kind":"tool_call","tenantId":"acme","tool":"search"}' | audit-append --db audit.db
  audit-sample --count 100000 | audit-append --db audit.db`

// Main is the entry point of the audit-append binary.
func Main() int { return cli.Main(prog, Run) }

// Run is audit-append with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet(prog, "AUDIT_APPEND", synopsis, stderr)
	db := fs.String("db", "", "audit database (created with Declaragent's schema if absent)")
	batch := fs.Int("batch", 500, "events per transaction at most (a transaction also ends when input pauses)")
	busy := fs.Duration("busy-timeout", 10*time.Second, "how long to wait for another writer's lock")
	maxLine := fs.Int("max-line", ndjson.DefaultMaxLine, "maximum event line length in bytes")
	quiet := fs.Bool("quiet", false, "no summary line on stderr")
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, "AUDIT_APPEND"); err != nil {
		return err
	}
	if *db == "" {
		return cli.Usagef("--db is required")
	}
	if *batch < 1 {
		return cli.Usagef("--batch must be at least 1")
	}
	w, err := auditdb.OpenWriter(ctx, *db, auditdb.WriterOptions{Create: true, BusyTimeout: *busy})
	if err != nil {
		return exitcode.New(exitcode.Database, err)
	}
	defer w.Close()
	r, err := ndjson.NewReader(stdin, ndjson.Options{MaxLine: *maxLine})
	if err != nil {
		return exitcode.New(exitcode.Input, fmt.Errorf("stdin: %w", err))
	}

	var (
		events   [][]byte
		arena    []byte
		ends     []int
		lines    []int64
		total    int64
		first    int64
		last     int64
		startAll = time.Now()
	)
	commit := func() error {
		if len(ends) == 0 {
			return nil
		}
		events = events[:0]
		start := 0
		for _, end := range ends {
			events = append(events, arena[start:end:end])
			start = end
		}
		f, l, err := w.Append(ctx, events, time.Now)
		if err != nil {
			var ee *auditdb.EventError
			if !errors.As(err, &ee) || ee.Index >= len(lines) {
				return exitcode.New(exitcode.Database, err)
			}
			// Append is all or nothing: the good events before the bad
			// one go in on their own, so that nothing valid before a bad
			// line is lost.
			if ee.Index > 0 {
				f, l, err := w.Append(ctx, events[:ee.Index], time.Now)
				if err != nil {
					return exitcode.New(exitcode.Database, err)
				}
				if first == 0 {
					first = f
				}
				last = l
				total += int64(ee.Index)
			}
			arena, ends = arena[:0], ends[:0]
			return exitcode.Errorf(exitcode.Input, "line %d: %v (every event before it was appended)", lines[ee.Index], ee.Err)
		}
		if first == 0 {
			first = f
		}
		last = l
		total += int64(len(events))
		arena, ends, lines = arena[:0], ends[:0], lines[:0]
		return nil
	}
	summary := func() {
		if !*quiet {
			fmt.Fprintf(stderr, "%s: appended %s", prog, cli.Count(total, "record", ""))
			if total == 1 {
				fmt.Fprintf(stderr, " (seq %d)", first)
			} else if total > 1 {
				fmt.Fprintf(stderr, " (seq %d..%d)", first, last)
			}
			fmt.Fprintf(stderr, " in %.2fs\n", time.Since(startAll).Seconds())
		}
	}
	defer summary()
	for {
		if ctx.Err() != nil {
			return commit()
		}
		line, err := r.Next()
		if err == io.EOF {
			return commit()
		}
		if err != nil {
			cerr := commit()
			var le *ndjson.LineError
			if errors.As(err, &le) {
				if cerr != nil {
					return cerr
				}
				return exitcode.New(exitcode.Input, fmt.Errorf("stdin: %w", err))
			}
			return fmt.Errorf("read stdin: %w", err)
		}
		// Copy: the reader reuses its buffer.
		arena = append(arena, line.Bytes...)
		ends = append(ends, len(arena))
		lines = append(lines, line.Num)
		if len(ends) >= *batch || r.Buffered() == 0 {
			if err := commit(); err != nil {
				return err
			}
		}
	}
}
