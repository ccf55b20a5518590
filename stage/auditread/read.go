// Package auditread is audit-read: it streams record lines out of a
// Declaragent audit database (read-only, never blocking the daemon that
// writes it) or out of NDJSON exports for forensic replay. The man page is
// cmd/audit-read/doc.go.
package auditread

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/auditdb"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/exportlock"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/progress"
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
)

const prog = "audit-read"

const synopsis = `usage: audit-read --db PATH [flags]
       audit-read [flags] FILE|- ...      (NDJSON replay: plain, gzip or zstd)
       audit-read --quarantine [flags] FILE|- ...   (re-ship audit-ship's quarantined records)

Writes record lines (docs/contract.md section 2) to stdout in seq order, the
record field being record_json verbatim.

Examples:
  audit-read --db audit.db | audit-verify >/dev/null
  audit-read --db audit.db --from-cursor splunk:prod --follow | audit-verify --db audit.db --from-cursor splunk:prod | ...
  audit-read --tenant acme export-2026-11.ndjson.gz | audit-verify
  audit-read --quarantine poison.ndjson | audit-verify --mode report | audit-ship --kind elastic ...`

// DefaultPoll is --poll's default: while caught up, --follow checks PRAGMA
// data_version (no table read) every 20 ms, so a new row waits 10 ms on
// average before it is read. It was auditdb.DefaultPoll (100 ms), half of
// the ack latency of a trickle; the idle pipeline's CPU is in docs/perf.md.
const DefaultPoll = 20 * time.Millisecond

// Main is the entry point of the audit-read binary.
func Main() int { return cli.MainProcs(prog, 1, Run) }

type config struct {
	db          string
	filter      auditdb.Filter
	cursor      string
	allowNew    bool // --new-cursor
	lockDir     string
	follow      bool
	lock        *exportlock.Lock // the exporter's Read role, with --from-cursor
	poll        time.Duration
	busyTimeout time.Duration
	maxLine     int
	quiet       bool
	quarantine  bool
	marks       string // --marks: auto, always or never
	chainID     string // --chain-id: overrides the database's own (auditdb.ChainID)
	writeMarks  bool   // resolved from --marks and what stdout is
	files       []string
	metrics     stagemetrics.Flags

	// While running: the metrics, the flow counters, the head of the log
	// (0 until known) and the progress line (nil unless on a terminal).
	ms       *stagemetrics.Stage
	flow     *stagemetrics.Flow
	head     atomic.Int64
	progress *progress.Line
}

// Run is audit-read with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if c.db != "" && c.cursor != "" { // one pipeline per exporter (lib/exportlock)
		lock, err := exportlock.Acquire(c.db, c.lockDir, c.cursor, exportlock.Read, prog)
		if err != nil {
			return err
		}
		defer lock.Close()
		c.lock = lock
	}
	if c.ms, err = c.metrics.Start(ctx, prog, c.metrics.Labels(c.cursor, ""), stderr); err != nil {
		return err
	}
	defer c.ms.Close()
	c.flow = c.ms.Flow()
	if f, ok := stdout.(*os.File); ok {
		ndjson.SetPipeSize(f, 1<<20)
	}
	switch c.marks {
	case "always":
		c.writeMarks = true
	case "never":
	case "auto":
		c.writeMarks = cli.MarksFor(stdout)
	default:
		return cli.Usagef("--marks must be auto, always or never, not %q", c.marks)
	}
	out := ndjson.NewWriter(c.ms.Stdout(stdout), 0)
	if !c.quiet {
		c.progress = progress.Start(prog, stderr, func() progress.Status {
			return progress.Status{Records: c.flow.Out.Load(), Seq: c.flow.Seq.Load(), Head: c.head.Load()}
		})
		stderr = c.progress.Writer(stderr)
	}
	start := time.Now()
	var st stats
	if c.db != "" {
		err = c.readDB(ctx, out, &st, stderr)
	} else {
		err = c.readFiles(ctx, stdin, out, &st, stderr)
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write stdout: %w", ferr)
	}
	if h := st.holes; err == nil && !c.writeMarks && h != nil && h.totalBreaks > 0 {
		// Without marks nobody downstream hears of a break among the rows
		// the filter left out: audit-read reports it itself.
		err = exitcode.Errorf(exitcode.Verify, "%d break(s) in the chain among the rows the filter left out, the first at seq %d: %s: %s (the records written verify on their own; this is evidence against the log, not the export)",
			h.totalBreaks, h.firstBreakSeq, h.firstBreakReason, h.firstBreakDetail)
	}
	c.progress.Stop()
	if !c.quiet && !exitcode.IsBrokenPipe(err) {
		fmt.Fprintf(stderr, "%s: %s\n", prog, st.summary(time.Since(start)))
	}
	return err
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := cli.NewFlagSet(prog, "AUDIT_READ", synopsis, stderr)
	c := &config{}
	var since, until, tenants, kinds string
	fs.StringVar(&c.db, "db", "", "Declaragent audit database (SQLite), opened read-only")
	fs.Int64Var(&c.filter.FromSeq, "from-seq", 0, "first seq to emit (inclusive)")
	fs.Int64Var(&c.filter.ToSeq, "to-seq", 0, "last seq to emit (inclusive); with --follow, stop after it")
	fs.StringVar(&since, "since", "", "only records with ts >= this (RFC 3339, or ms since the epoch)")
	fs.StringVar(&until, "until", "", "only records with ts < this (RFC 3339, or ms since the epoch)")
	fs.StringVar(&tenants, "tenant", "", "only these tenant ids (comma-separated)")
	fs.StringVar(&kinds, "kind", "", "only these kinds (comma-separated)")
	fs.StringVar(&c.cursor, "from-cursor", "", "exporter name: start after that exporter's committed last_seq")
	fs.BoolVar(&c.allowNew, "new-cursor", false, "allow a --from-cursor name that does not exist while other cursors do: start at the beginning of the log")
	fs.StringVar(&c.lockDir, "lock-dir", "", "with --from-cursor: directory of the exporter's lock file (default: $AUDITPIPE_LOCK_DIR, else the database's directory)")
	fs.BoolVar(&c.follow, "follow", false, "after the existing rows, keep tailing new ones until SIGINT/SIGTERM")
	fs.DurationVar(&c.poll, "poll", DefaultPoll, "how often --follow checks for new rows")
	fs.DurationVar(&c.busyTimeout, "busy-timeout", 5*time.Second, "how long to wait for a locked database before failing")
	fs.IntVar(&c.maxLine, "max-line", ndjson.DefaultMaxLine, "maximum line length in bytes (NDJSON input)")
	fs.BoolVar(&c.quiet, "quiet", false, "no summary line, and no progress line on a terminal, on stderr")
	fs.StringVar(&c.marks, "marks", "auto", "write audit-verify's mark lines (the start anchor, the holes a filter made): auto (unless stdout is a regular file or a terminal: an export holds records only), always, never")
	fs.StringVar(&c.chainID, "chain-id", "", "the chain id the anchor mark carries, instead of the database's own (the recordHash of its first record): for a database whose first row is gone; 1..128 of A-Z a-z 0-9 . _ : -")
	fs.BoolVar(&c.quarantine, "quarantine", false, "the input files are audit-ship quarantine files: emit the record line of each entry, byte for byte, once per record")
	c.metrics.Register(fs)
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, "AUDIT_READ"); err != nil {
		return nil, err
	}
	c.files = fs.Args()
	var err error
	if c.filter.Since, err = parseTime("since", since); err != nil {
		return nil, err
	}
	if c.filter.Until, err = parseTime("until", until); err != nil {
		return nil, err
	}
	c.filter.Tenants = splitList(tenants)
	c.filter.Kinds = splitList(kinds)
	switch {
	case c.db != "" && len(c.files) > 0:
		return nil, cli.Usagef("give either --db or input files, not both")
	case c.db == "" && len(c.files) == 0:
		return nil, cli.Usagef("nothing to read: give --db PATH, or NDJSON files (- for stdin); -h for help")
	case c.db != "" && c.quarantine:
		return nil, cli.Usagef("--quarantine reads quarantine files, not --db: audit-read --quarantine FILE")
	case c.db == "" && (c.follow || c.cursor != ""):
		return nil, cli.Usagef("--follow and --from-cursor need --db")
	case c.filter.FromSeq < 0 || c.filter.ToSeq < 0:
		return nil, cli.Usagef("--from-seq and --to-seq must not be negative")
	case c.filter.ToSeq > 0 && c.filter.FromSeq > c.filter.ToSeq:
		return nil, cli.Usagef("--from-seq %d is after --to-seq %d", c.filter.FromSeq, c.filter.ToSeq)
	case c.poll <= 0:
		return nil, cli.Usagef("--poll must be positive")
	case c.chainID != "" && c.db == "":
		return nil, cli.Usagef("--chain-id needs --db (it names the database's chain)")
	case c.chainID != "" && !chain.IsChainID(c.chainID):
		return nil, cli.Usagef("--chain-id %q: want 1..128 of A-Z a-z 0-9 . _ : - (the chain's first recordHash, or a stable name of your own)", c.chainID)
	}
	return c, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, cli.Usagef("--%s %q: want RFC 3339 (2026-11-27T13:00:00Z) or ms since the epoch", name, s)
	}
	return t, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type stats struct {
	records  int64
	firstSeq int64
	lastSeq  int64
	problems int64
	holes    *holes // nil unless filtering
	noSeq    bool   // lines passed on unparsed (a plain replay): no seq range to say
}

func (s *stats) add(seq int64) {
	if s.records == 0 {
		s.firstSeq = seq
	}
	s.records++
	s.lastSeq = seq
}

func (s *stats) summary(d time.Duration) string {
	msg := cli.Count(s.records, "record", "")
	switch {
	case s.noSeq:
	case s.records == 1:
		msg += fmt.Sprintf(" (seq %d)", s.firstSeq)
	case s.records > 1:
		msg += fmt.Sprintf(" (seq %d..%d)", s.firstSeq, s.lastSeq)
	}
	if h := s.holes; h != nil && h.total > 0 {
		msg += fmt.Sprintf(", %d left out by the filter in %d holes (checked here", h.total, h.nHoles)
		if h.totalBreaks > 0 {
			to := "reported to audit-verify"
			if h.silent {
				to = "see below"
			}
			msg += fmt.Sprintf(": %d breaks among them, %s", h.totalBreaks, to)
		}
		msg += ")"
	}
	if s.problems > 0 {
		msg += ", " + cli.Count(s.problems, "bad input line", "")
	}
	msg += fmt.Sprintf(" in %.2fs", d.Seconds())
	if secs := d.Seconds(); secs > 0 && s.records > 0 {
		msg += fmt.Sprintf(", %.0f records/s", float64(s.records)/secs)
	}
	return msg
}

func (c *config) readDB(ctx context.Context, out *ndjson.Writer, st *stats, stderr io.Writer) error {
	db, err := auditdb.OpenReader(ctx, c.db, auditdb.ReaderOptions{BusyTimeout: c.busyTimeout,
		Log: func(msg string) { fmt.Fprintf(stderr, "%s: %s\n", prog, msg) }})
	if err != nil {
		return exitcode.New(exitcode.Database, err)
	}
	defer db.Close()
	// The database is read by seq range only; the other filters are applied
	// here, so that the rows they drop are checked too (holes).
	f := auditdb.Filter{FromSeq: c.filter.FromSeq, ToSeq: c.filter.ToSeq}
	anchor, err := c.startAnchor(ctx, db, &f, stderr)
	if err != nil {
		return err
	}
	var a *chain.Anchor
	if anchor != nil && anchor.Seq > 0 {
		a = &chain.Anchor{Seq: anchor.Seq, Hash: anchor.Hash}
	}
	if c.filtering() {
		st.holes = newHoles(a, 1)
		st.holes.silent = !c.writeMarks
	}
	h := st.holes
	// The anchor, read once at the start, goes out before the first line
	// (record or skip mark): a read that finds nothing writes nothing.
	writeAnchor := func() error {
		if anchor == nil {
			return nil
		}
		m := anchor
		anchor = nil
		if !c.writeMarks {
			return nil
		}
		// The chain's id, read when the mark goes out: a database empty
		// at the start has its first row by now.
		id, cerr := c.chain(ctx, db, stderr)
		if cerr != nil {
			return cerr
		}
		m.Chain = id
		return writeMark(out, m)
	}
	flushHole := func() error {
		if !h.open {
			return nil
		}
		if err := writeAnchor(); err != nil {
			return err
		}
		return h.flush(out)
	}
	var line []byte
	// emit handles one row of the range: kept, or left out (a hole).
	emit := func(r *auditdb.Row) error {
		line = auditdb.AppendLine(line[:0], r)
		c.flow.Read(len(line))
		if h != nil {
			if !c.selectsRow(r) {
				h.dropped(r.Seq, r.Seq, line)
				return nil
			}
			if err := flushHole(); err != nil {
				return err
			}
			h.kept(r.Seq, []byte(r.RecordHash))
		}
		if err := writeAnchor(); err != nil {
			return err
		}
		st.add(r.Seq)
		if err := out.Write(line); err != nil {
			return err
		}
		c.flow.Wrote(len(line), r.Seq)
		return nil
	}
	if !c.follow {
		if c.progress != nil {
			c.setHead(ctx, db, f.ToSeq)
		}
		var last int64
		last, err = db.Scan(ctx, f, emit)
		if err == nil && h != nil {
			err = flushHole()
		}
		if err == nil && last > 0 && c.lock != nil {
			if err = out.Flush(); err != nil {
				return fmt.Errorf("write stdout: %w", err)
			}
			c.awaitAcked(ctx, db, last)
		}
	} else {
		if c.metrics.Enabled() || c.progress != nil {
			stop := c.pollHead(ctx, db, f.ToSeq)
			defer stop()
		}
		// Rows are written under mu; a ticker flushes whatever is buffered
		// every flushEvery, so a committed row reaches the next stage within
		// poll + flushEvery while the writer's buffer still batches the
		// syscalls under load.
		var mu sync.Mutex
		stopFlush := make(chan struct{})
		flushErr := make(chan error, 1)
		go func() {
			t := time.NewTicker(flushEvery)
			defer t.Stop()
			for {
				select {
				case <-stopFlush:
					flushErr <- nil
					return
				case <-t.C:
					mu.Lock()
					var err error
					if out.Buffered() > 0 {
						err = out.Flush()
					}
					mu.Unlock()
					if err != nil {
						flushErr <- err
						return
					}
				}
			}
		}()
		// When caught up, the hole so far is written: audit-verify learns
		// of a break in it now, not when the next kept row comes.
		var idle func() error
		if h != nil {
			idle = func() error {
				mu.Lock()
				defer mu.Unlock()
				return flushHole()
			}
		}
		err = db.FollowIdle(ctx, f, c.poll, func(r *auditdb.Row) error {
			mu.Lock()
			defer mu.Unlock()
			return emit(r)
		}, idle)
		close(stopFlush)
		if ferr := <-flushErr; err == nil && ferr != nil {
			err = ferr
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if re := (*auditdb.ReplacedError)(nil); errors.As(err, &re) {
			return err // the database replaced under --follow: exit 3, as it comes
		}
		if isWriteErr(err) {
			return fmt.Errorf("write stdout: %w", err)
		}
		return exitcode.New(exitcode.Database, err)
	}
	return nil
}

// startAnchor works out where the read starts (--from-cursor, --from-seq)
// and the anchor mark that tells audit-verify, in-band, what the record
// before it was: one fact both sides agree on, whatever commits land between
// the start of the two processes (issue 12 item 1a). nil: the read starts at
// genesis with no cursor, or the row before is missing (audit-verify then
// reports the start as unanchored).
func (c *config) startAnchor(ctx context.Context, db *auditdb.DB, f *auditdb.Filter, stderr io.Writer) (*chain.Mark, error) {
	var m *chain.Mark
	if c.cursor != "" {
		if err := auditdb.CheckCursorName(ctx, db, "--from-cursor", c.cursor, c.allowNew); err != nil {
			return nil, err
		}
		// The cursor and the hash audit-ack shipped with it are read in
		// one statement (auditdb.Cursor).
		cur, err := db.Cursor(ctx, c.cursor)
		if err != nil {
			return nil, exitcode.New(exitcode.Database, err)
		}
		if !cur.Found {
			fmt.Fprintf(stderr, "%s: no cursor named %q yet: starting at the beginning of the log\n", prog, c.cursor)
		}
		if cur.LastSeq+1 >= f.FromSeq {
			f.FromSeq = cur.LastSeq + 1
			m = &chain.Mark{Type: chain.MarkAnchor, Source: chain.SourceCursor, Exporter: c.cursor, Seq: cur.LastSeq, Hash: cur.LastHash}
			if cur.LastSeq > 0 && cur.LastHash == "" {
				h, ok, err := db.RecordHashAt(ctx, cur.LastSeq)
				if err != nil {
					return nil, exitcode.New(exitcode.Database, err)
				}
				if !ok {
					return nil, exitcode.Errorf(exitcode.Verify, "cursor %s is at seq %d but the database has no such row (rows removed?)", c.cursor, cur.LastSeq)
				}
				fmt.Fprintf(stderr, "%s: cursor %s has no shipped hash (written by another tool); anchoring on the database's own record_hash at seq %d, which proves less\n", prog, c.cursor, cur.LastSeq)
				m.Source, m.Hash = chain.SourceCursorRow, h
			}
			return m, nil
		}
	}
	if !c.filter.Since.IsZero() {
		// Every row before the first one at or after --since has an
		// earlier ts: start there, anchored on the row before, rather than
		// check the whole prefix as a hole. (Not with --from-cursor: its
		// anchor is the cursor, and the rows after it are a hole.)
		s, ok, err := db.FirstSeqFrom(ctx, c.filter.Since.UnixMilli())
		if err != nil {
			return nil, exitcode.New(exitcode.Database, err)
		}
		if !ok { // none yet: every row so far is before it
			if s, err = db.HeadSeq(ctx); err != nil {
				return nil, exitcode.New(exitcode.Database, err)
			}
			s++
		}
		if s > f.FromSeq {
			f.FromSeq = s
		}
	}
	if !c.filter.Until.IsZero() && !c.follow {
		// Likewise every row after the last one before --until is later.
		s, ok, err := db.LastSeqBefore(ctx, c.filter.Until.UnixMilli())
		if err != nil {
			return nil, exitcode.New(exitcode.Database, err)
		}
		if ok && (f.ToSeq == 0 || s < f.ToSeq) {
			f.ToSeq = s
		}
	}
	if f.FromSeq > 1 {
		h, ok, err := db.RecordHashAt(ctx, f.FromSeq-1)
		if err != nil {
			return nil, exitcode.New(exitcode.Database, err)
		}
		if ok && len(h) == 64 {
			return &chain.Mark{Type: chain.MarkAnchor, Source: chain.SourceDBRow, Seq: f.FromSeq - 1, Hash: h}, nil
		}
	}
	return nil, nil
}

// chain returns the id the anchor mark names: --chain-id, else the
// database's own (docs/contract.md section 5). A database whose first row
// is gone has none: the mark goes without it (the records still verify),
// and a notice says how to name it.
func (c *config) chain(ctx context.Context, db *auditdb.DB, stderr io.Writer) (string, error) {
	if c.chainID != "" {
		return c.chainID, nil
	}
	id, _, err := db.ChainID(ctx)
	if errors.Is(err, auditdb.ErrNoGenesis) {
		fmt.Fprintf(stderr, "%s: notice: the anchor mark names no chain: %v\n", prog, err)
		return "", nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", exitcode.New(exitcode.Database, err)
	}
	return id, nil
}

// filtering reports whether a filter other than the seq range is set: then
// rows are left out in the middle, and holes are written.
func (c *config) filtering() bool {
	f := &c.filter
	return !f.Since.IsZero() || !f.Until.IsZero() || len(f.Tenants) > 0 || len(f.Kinds) > 0
}

func (c *config) selectsRow(r *auditdb.Row) bool {
	f := &c.filter
	if !f.Since.IsZero() && r.TS < f.Since.UnixMilli() || !f.Until.IsZero() && r.TS >= f.Until.UnixMilli() {
		return false
	}
	return inStr(f.Tenants, r.TenantID) && inStr(f.Kinds, r.Kind)
}

func inStr(list []string, s string) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// awaitAcked keeps a one-shot read's hold on the exporter (its Read role)
// until the committed cursor covers last, the last seq it read, as long as
// an audit-ack holds the exporter's Ack role and the cursor keeps moving
// (ackStall). A drain reads everything long before its records are
// shipped and acked: had its audit-read let go at the end of its rows, a
// second drain starting then would read the cursor from before the first
// one's acks and ship those records again, unrefused. Nothing to wait for
// without an audit-ack (an export to a file), once the audit-ack is gone
// (its pipeline ended, or failed), or on a stop signal; and a downstream
// that goes away ends it as any closed output does (exit 141).
func (c *config) awaitAcked(ctx context.Context, db *auditdb.DB, last int64) {
	poll := c.poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	prev, moved := int64(-1), time.Now()
	for c.lock.Held(exportlock.Ack) {
		cur, err := db.Cursor(ctx, c.cursor)
		if err == nil {
			if cur.LastSeq >= last {
				return
			}
			if cur.LastSeq != prev {
				prev, moved = cur.LastSeq, time.Now()
			}
		}
		if time.Since(moved) > ackStall {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ackStall is how long awaitAcked waits on a cursor that does not move
// (an audit-ack serving other pipelines, a SIEM that stopped answering)
// before it lets go.
var ackStall = time.Minute

// flushEvery bounds how long a row waits in the output buffer in --follow.
const flushEvery = 25 * time.Millisecond

// setHead reads the head of the log once, capped at toSeq: the end of a
// scan, for the progress line.
func (c *config) setHead(ctx context.Context, db *auditdb.DB, toSeq int64) {
	h, err := db.HeadSeq(ctx)
	if err != nil {
		return // the scan will report it
	}
	if toSeq > 0 && toSeq < h {
		h = toSeq
	}
	c.head.Store(h)
}

// pollHead keeps declaragent_audit_last_seq and the progress line's head
// current while following, until ctx is done or stop is called. The head
// is read on its own connection, so a reader blocked on a full pipe (which
// polls nothing) still reports how far behind it is falling. A failed read
// keeps the last value: the follower reports database errors itself.
func (c *config) pollHead(ctx context.Context, db *auditdb.DB, toSeq int64) (stop func()) {
	gauge := c.ms.LastSeq()
	return db.WatchHead(ctx, func(h int64) {
		gauge.Set(float64(h))
		if toSeq > 0 && toSeq < h {
			h = toSeq
		}
		c.head.Store(h)
	})
}
func isWriteErr(err error) bool {
	var dbe *auditdb.DBError
	return !errors.As(err, &dbe)
}

// readFiles replays NDJSON exports. With no filter every line is passed on
// as it stands, so audit-verify sees (and reports) even the bad ones; with a
// filter each line must parse as a record to be selected.
func (c *config) readFiles(ctx context.Context, stdin io.Reader, out *ndjson.Writer, st *stats, stderr io.Writer) error {
	filtering := c.filter.FromSeq > 0 || c.filter.ToSeq > 0 || c.filtering()
	if filtering && !c.quarantine {
		// Every line left out is checked, and each run of them becomes a
		// skip mark (see holes): a filtered export still verifies.
		st.holes = newHoles(nil, 0)
		st.holes.silent = !c.writeMarks
	}
	h := st.holes
	var p chain.LineParser
	var qp fastjson.Parser
	seen := map[string]bool{} // quarantined records already emitted
	var firstProblem error
	problem := func(err error) {
		st.problems++
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		if firstProblem == nil {
			firstProblem = err
		}
	}
	for _, name := range c.files {
		var src io.Reader = stdin
		display := "stdin"
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return exitcode.New(exitcode.Input, fmt.Errorf("open input: %w", err))
			}
			defer f.Close()
			src, display = f, name
		}
		r, err := ndjson.NewReader(src, ndjson.Options{MaxLine: c.maxLine})
		if err != nil {
			return exitcode.New(exitcode.Input, fmt.Errorf("%s: %w", display, err))
		}
		for ctx.Err() == nil {
			line, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var le *ndjson.LineError
				if !errors.As(err, &le) {
					return exitcode.New(exitcode.Input, fmt.Errorf("read %s: %w", display, err))
				}
				problem(fmt.Errorf("%s: %w", display, err))
				continue
			}
			b, qseq := line.Bytes, int64(0)
			c.flow.Read(len(b))
			if framing.IsMark(b) {
				// Marks are audit-read's own, for audit-verify on the same
				// pipe; no export holds one (every stage after verify
				// drops them). One in an input was put there by hand.
				problem(fmt.Errorf("%s: line %d: a mark line (%s): exports never contain marks, so this input was edited; not passed on", display, line.Num, elide.To(b, 80)))
				continue
			}
			if c.quarantine {
				q, err := parseQuarantined(&qp, b)
				if err != nil {
					problem(fmt.Errorf("%s: line %d: %w", display, line.Num, err))
					continue
				}
				// The same record quarantined twice (two runs, or two
				// shippers sharing the file) is emitted once.
				k := strconv.FormatInt(q.seq, 10) + "/" + q.hash
				if seen[k] {
					continue
				}
				seen[k] = true
				b, qseq = q.line, q.seq
			}
			var seq int64 // known only when filtering parsed the line
			if filtering {
				rec, err := p.Parse(b)
				if err != nil {
					problem(fmt.Errorf("%s: line %d: %w", display, line.Num, err))
					continue
				}
				if !c.selects(&rec) {
					if h != nil {
						h.dropped(line.Num, rec.Seq, b)
					}
					continue
				}
				if h != nil {
					if err := h.flush(out); err != nil {
						return fmt.Errorf("write stdout: %w", err)
					}
					h.kept(rec.Seq, rec.RecordHash)
				}
				st.add(rec.Seq)
				seq = rec.Seq
			} else if c.quarantine {
				st.add(qseq)
				seq = qseq
			} else {
				st.records++
				st.noSeq = true
			}
			if err := out.Write(b); err != nil {
				return fmt.Errorf("write stdout: %w", err)
			}
			c.flow.Wrote(len(b), seq)
		}
	}
	if h != nil {
		if err := h.flush(out); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
	}
	if firstProblem != nil {
		return exitcode.New(exitcode.Input, fmt.Errorf("%d bad input line(s), the first: %w", st.problems, firstProblem))
	}
	return nil
}

func (c *config) selects(r *chain.Record) bool {
	f := &c.filter
	if f.FromSeq > 0 && r.Seq < f.FromSeq || f.ToSeq > 0 && r.Seq > f.ToSeq {
		return false
	}
	if !f.Since.IsZero() && r.TS < f.Since.UnixMilli() || !f.Until.IsZero() && r.TS >= f.Until.UnixMilli() {
		return false
	}
	return in(f.Tenants, r.TenantID) && in(f.Kinds, r.Kind)
}

func in(list []string, b []byte) bool {
	if len(list) == 0 {
		return true
	}
	for _, s := range list {
		if s == string(b) {
			return true
		}
	}
	return false
}
