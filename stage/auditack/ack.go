// Package auditack is audit-ack: it reads ack lines from audit-ship (over a
// FIFO or stdin) and commits the exporter's cursor in the audit database.
// The man page is cmd/audit-ack/doc.go.
package auditack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/auditdb"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/exportlock"
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
)

const prog = "audit-ack"

const synopsis = `usage: audit-ack --db PATH --exporter NAME [--fifo PATH] [--tenant A,B] [--kind K,L] [--from-seq N] [flags]

Reads ack lines from audit-ship (from the FIFO, which it creates if absent
and keeps open across shipper restarts, or from stdin) and commits the
exporter's cursor (audit_export_cursor.last_seq, monotonic) and the hash of
the last shipped record, durably, at most every --commit-interval.

An ack that skips rows the exporter ships is refused (exit 3, cursor kept):
give audit-ack the same --tenant/--kind/--from-seq as the pipeline's audit-read.

Examples:
  audit-ack --fifo /run/auditpipe/acks.fifo --db audit.db --exporter splunk:prod
  audit-ack --fifo /run/auditpipe/acme.fifo --db audit.db --exporter splunk:acme --tenant acme
  ... | audit-ship --kind file --path out.ndjson --acks - | audit-ack --db audit.db --exporter file:archive`

// DefaultCommitInterval is --commit-interval's default: an ack whose input
// then goes idle is committed at once unless the last commit is more recent
// than this, and under load commits (each one fsync) come at most this
// often, the acks in between committed together. It was 500 ms, which put
// the cursor ~250 ms (median) and up to 500 ms behind the ack line.
const DefaultCommitInterval = 50 * time.Millisecond

// Main is the entry point of the audit-ack binary.
func Main() int { return cli.MainProcs(prog, 1, Run) }

type config struct {
	db       string
	exporter string
	allowNew bool // --new-cursor
	fifo     string
	lockDir  string
	interval time.Duration
	busy     time.Duration
	quiet    bool
	chainID  string // --chain-id: the chain acks may name (default: the database's own)
	metrics  stagemetrics.Flags
	// The rows this exporter's audit-read selects (its --from-seq,
	// --tenant, --kind): the only rows its acks may skip are outside it.
	sel auditdb.Selection
}

// Run is audit-ack with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet(prog, "AUDIT_ACK", synopsis, stderr)
	c := &config{}
	fs.StringVar(&c.db, "db", "", "the audit database holding the cursor table")
	fs.StringVar(&c.exporter, "exporter", "", "exporter (cursor) name; acks for any other exporter are refused")
	fs.BoolVar(&c.allowNew, "new-cursor", false, "allow an --exporter name that has no cursor while other cursors exist (a new exporter)")
	fs.StringVar(&c.fifo, "fifo", "", "FIFO to read acks from (created 0600 if absent); default stdin")
	fs.StringVar(&c.lockDir, "lock-dir", "", "directory of the exporter's lock file (default: $AUDITPIPE_LOCK_DIR, else the database's directory)")
	fs.DurationVar(&c.interval, "commit-interval", DefaultCommitInterval, "commit the cursor at most this often (and always at EOF and on SIGTERM)")
	fs.DurationVar(&c.busy, "busy-timeout", 10*time.Second, "how long to wait for the database write lock")
	fs.BoolVar(&c.quiet, "quiet", false, "no summary line on stderr")
	fs.StringVar(&c.chainID, "chain-id", "", "the chain id acks may name (audit-verify --chain-mark labels them); default the database's own (the recordHash of seq 1): give it when the first row is gone, as to audit-read")
	var tenants, kinds string
	fs.Int64Var(&c.sel.FromSeq, "from-seq", 0, "the pipeline started at this seq on purpose (audit-read --from-seq): acks may skip the rows before it")
	fs.StringVar(&tenants, "tenant", "", "the pipeline ships only these tenants (audit-read --tenant): acks may skip other tenants' rows")
	fs.StringVar(&kinds, "kind", "", "the pipeline ships only these kinds (audit-read --kind): acks may skip rows of other kinds")
	c.metrics.Register(fs)
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, "AUDIT_ACK"); err != nil {
		return err
	}
	c.sel.Tenants, c.sel.Kinds = splitList(tenants), splitList(kinds)
	switch {
	case c.sel.FromSeq < 0:
		return cli.Usagef("--from-seq must not be negative")
	case c.db == "":
		return cli.Usagef("--db is required")
	case c.exporter == "":
		return cli.Usagef("--exporter is required (the name audit-ship was given, e.g. splunk:prod)")
	case c.interval < 0:
		return cli.Usagef("--commit-interval must not be negative")
	case c.chainID != "" && !chain.IsChainID(c.chainID):
		return cli.Usagef("--chain-id %q: want 1..128 of A-Z a-z 0-9 . _ : - (the chain's first recordHash, or the name it was shipped under)", c.chainID)
	}
	// One pipeline per exporter: a second audit-ack on it stops here.
	// (Waiting a few seconds if another just-started pipeline holds it:
	// that one's audit-read may be refused, and then it lets go.)
	lock, err := exportlock.AcquireFollower(ctx, c.db, c.lockDir, c.exporter, exportlock.Ack, prog, 0,
		func(msg string) { fmt.Fprintf(stderr, "%s: %s\n", prog, msg) })
	if err != nil {
		return err
	}
	defer lock.Close()
	dbID, _ := auditdb.StatID(c.db)
	w, err := openWriter(ctx, c)
	if err != nil {
		if ctx.Err() != nil { // stopped while waiting for the database: a clean stop
			if !c.quiet {
				fmt.Fprintf(stderr, "%s: %s: stopped before the database was open: no acks taken\n", prog, c.exporter)
			}
			return nil
		}
		return exitcode.New(exitcode.Database, err)
	}
	defer func() { w.Close() }()
	if err := auditdb.CheckCursorName(ctx, w, "--exporter", c.exporter, c.allowNew); err != nil {
		return err
	}

	in := ack.NewReader(stderr, prog)
	defer in.Close()
	stopInput := context.AfterFunc(ctx, in.Stop) // unblock the reads when asked to stop
	defer stopInput()
	if c.fifo != "" {
		if err := in.OpenFIFO(ctx, c.fifo); err != nil {
			return exitcode.New(exitcode.Usage, fmt.Errorf("--fifo: %w", err))
		}
	} else {
		in.ReadStream(ctx, stdin)
	}
	ms, err := c.metrics.Start(ctx, prog, c.metrics.Labels(c.exporter, ""), stderr)
	if err != nil {
		return err
	}
	defer ms.Close()
	a := &acker{c: c, w: w, dbID: dbID, stderr: stderr, cursor: ms.ExportLastSeq(), recordsIn: ms.RecordsIn()}
	defer func() { w = a.w }() // reopened if the database was replaced
	cur, err := w.Cursor(ctx, c.exporter)
	if err != nil {
		return exitcode.New(exitcode.Database, err)
	}
	a.committed = cur.LastSeq
	a.cursor.Set(float64(cur.LastSeq))
	if c.metrics.Enabled() {
		// declaragent_audit_last_seq (and so auditpipe_export_lag_records),
		// read on a connection of its own so that it never waits behind a
		// cursor commit, following a replaced file.
		g := ms.LastSeq()
		stop, err := auditdb.WatchHeadAt(ctx, c.db, func(h int64) { g.Set(float64(h)) })
		if err != nil {
			return exitcode.New(exitcode.Database, err)
		}
		defer stop()
	}
	start := time.Now()
	err = a.loop(ctx, in)
	// The final commit runs even when ctx is cancelled (SIGTERM), but then
	// it waits for the database lock at most finalCommitWait: a stop is
	// prompt, and an ack left uncommitted is only shipped again.
	fctx, cancel := context.WithoutCancel(ctx), func() {}
	if ctx.Err() != nil {
		fctx, cancel = context.WithTimeout(fctx, finalCommitWait)
	}
	if cerr := a.commit(fctx); err == nil {
		if cerr != nil && ctx.Err() != nil && errors.Is(cerr, context.DeadlineExceeded) {
			fmt.Fprintf(stderr, "%s: %s: stopping: the final commit (seq %d) waited %v for the database lock and was given up; the cursor stays at seq %d and those records will be shipped again\n",
				prog, c.exporter, a.lastSeq, finalCommitWait, a.committed)
		} else {
			err = cerr
		}
	}
	cancel()
	if !c.quiet {
		fmt.Fprintf(stderr, "%s: %s: %s (%s, %d quarantined), %s, cursor at seq %d, in %.1fs\n",
			prog, c.exporter, cli.Count(a.acks, "ack", ""), cli.Count(a.records, "record", ""), a.quarantined, cli.Count(a.commits, "commit", ""), a.committed, time.Since(start).Seconds())
	}
	return err
}

type acker struct {
	c      *config
	w      *auditdb.Writer
	dbID   auditdb.FileID // the file w has open
	stderr io.Writer

	chain       string // the database's chain id, once an ack named one
	have        bool   // an ack not yet committed
	lastSeq     int64
	lastHash    string
	pending     ack.Spans // the acks not yet committed, contiguous clean runs merged
	committed   int64
	lastCommit  time.Time
	acks        int64
	records     int64
	quarantined int64
	commits     int64
	bad         int64

	cursor    prometheus.Gauge   // declaragent_audit_export_last_seq
	recordsIn prometheus.Counter // records covered by the acks taken
}

// finalCommitWait bounds the final commit after SIGINT/SIGTERM.
const finalCommitWait = time.Second

func (a *acker) loop(ctx context.Context, in *ack.Reader) error {
	var p fastjson.Parser
	var timer *time.Timer
	var timerC <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// commit is a.commit, where a commit cut short by a stop is no error:
	// the final commit in Run tries again.
	commit := func() error {
		err := a.commit(ctx)
		if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return nil
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-in.Errs():
			if err == nil || err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, syscall.EINTR) {
				return nil
			}
			return fmt.Errorf("read acks: %w", err)
		case <-timerC:
			timerC = nil
			if err := commit(); err != nil {
				return err
			}
		case line := <-in.Lines():
			if err := a.take(&p, line.Num, line.B); err != nil {
				return err
			}
			// Group commit: the acks already waiting are taken before a
			// commit, so one commit (one fsync) covers all of them, and a
			// burst of acks, or acks piled up behind a slow commit, never
			// costs a commit each.
			if err := a.takeWaiting(&p, in); err != nil {
				return err
			}
			if !a.have {
				continue
			}
			if wait := a.c.interval - time.Since(a.lastCommit); wait <= 0 || len(a.pending.List) >= maxPending {
				if err := commit(); err != nil {
					return err
				}
			} else if timerC == nil {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				timerC = timer.C
			}
		}
	}
}

// takeWaiting takes the ack lines in.Lines() already has for it (the
// reader goroutine is given a moment to hand over what it has buffered), up
// to maxPending held acks; it returns as soon as none is waiting.
func (a *acker) takeWaiting(p *fastjson.Parser, in *ack.Reader) error {
	for len(a.pending.List) < maxPending {
		runtime.Gosched()
		select {
		case line := <-in.Lines():
			if err := a.take(p, line.Num, line.B); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// take validates one ack line. A line that is not a valid ack (a torn line
// from a shipper that crashed mid-write) is reported and skipped: acks are
// cumulative, so the next one covers it. An ack for another exporter, or
// one that names a chain (lib/ack: reserved for multi-chain consumers), is
// a configuration error and stops the acker.
func (a *acker) take(p *fastjson.Parser, num int64, line []byte) error {
	line = ack.TrimEOL(line)
	if len(line) == 0 {
		return nil
	}
	k, err := ack.Parse(p, line)
	if err != nil {
		a.bad++
		fmt.Fprintf(a.stderr, "%s: line %d: skipping an invalid ack line: %v\n", prog, num, err)
		return nil
	}
	if k.Exporter != a.c.exporter {
		return exitcode.Errorf(exitcode.Usage, "ack for exporter %q, but this audit-ack commits %q: each exporter needs its own FIFO and acker", k.Exporter, a.c.exporter)
	}
	if k.Chain != "" {
		if err := a.checkChain(num, k); err != nil {
			return err
		}
	}
	a.acks++
	a.records += int64(k.Count)
	a.recordsIn.Add(float64(k.Count))
	a.quarantined += int64(len(k.Quarantined))
	if len(k.Quarantined) > 0 {
		fmt.Fprintf(a.stderr, "%s: %s: seqs %v were quarantined, not delivered; the cursor moves past them\n", prog, a.c.exporter, k.Quarantined)
	}
	// Whether the ack skips rows the exporter ships is checked when it is
	// committed, in the commit's transaction (auditdb.CommitAcks, the gap
	// rule of lib/ack). Since/SinceCount (what the ack's shipper delivered
	// in its run) cover the acks lost between, e.g. with an acker killed
	// before it committed the acks it had read.
	if !a.pending.Add(a.committed, ack.SpanOf(k)) {
		return nil // a replay of what is already committed or taken
	}
	a.lastSeq, a.lastHash, a.have = k.LastSeq, k.LastHash, true
	return nil
}

// checkChain accepts an ack that names the database's own chain (a host
// pipeline with audit-verify --chain-mark labels its batches, so its acks,
// with the chain id): --chain-id, else auditdb.ChainID, read once. An ack
// naming another chain is for a multi-chain consumer (audit-consume), not
// for this database's cursor: a configuration error (exit 2).
func (a *acker) checkChain(num int64, k ack.Ack) error {
	if a.chain == "" {
		a.chain = a.c.chainID
	}
	if a.chain == "" {
		r, err := auditdb.OpenReader(context.Background(), a.c.db, auditdb.ReaderOptions{BusyTimeout: a.c.busy})
		if err != nil {
			return err
		}
		id, found, err := r.ChainID(context.Background())
		r.Close()
		if err != nil {
			return exitcode.Errorf(exitcode.Usage, "line %d: ack for chain %q: %v (audit-ack --chain-id)", num, k.Chain, err)
		}
		if !found {
			return exitcode.Errorf(exitcode.Usage, "line %d: ack for chain %q, but %s holds no record: not its chain", num, k.Chain, a.c.db)
		}
		a.chain = id
	}
	if k.Chain != a.chain {
		return exitcode.Errorf(exitcode.Usage, "line %d: ack for chain %q of exporter %q, but this database's chain is %q: audit-ack commits the cursor of one database's chain; acks of other chains are for a multi-chain consumer (audit-consume), not audit-ack", num, k.Chain, k.Exporter, a.chain)
	}
	return nil
}

// openWriter opens the database read-write, unless the -wal beside it is
// another database's (see auditdb.DB.ForeignWAL): opening it for writing
// would make SQLite apply that -wal to the file, corrupting a healthy file
// for good.
func openWriter(ctx context.Context, c *config) (*auditdb.Writer, error) {
	if r, err := auditdb.OpenReader(ctx, c.db, auditdb.ReaderOptions{BusyTimeout: c.busy}); err == nil {
		foreign := r.ForeignWAL()
		r.Close()
		if foreign {
			return nil, exitcode.Errorf(exitcode.Database, "open %s: the %s-wal beside it belongs to another database (one this file replaced): "+
				"opening the file for writing would make SQLite apply that -wal to it and corrupt it for good, so the cursor is not committed. "+
				"Move %s-wal and %s-shm away once no process has the old database open, then start audit-ack again", c.db, c.db, c.db, c.db)
		}
	}
	return auditdb.OpenWriter(ctx, c.db, auditdb.WriterOptions{BusyTimeout: c.busy})
}

// followDB reopens the database when the file at its path is another one
// than the one open (removed and recreated, a copy renamed over it): a
// cursor committed to the old file is lost to everyone reading the path,
// and a connection left on it would write through the -wal the new file is
// read with. The commit that follows checks the acks against the new file.
func (a *acker) followDB(ctx context.Context) error {
	id, ok := auditdb.StatID(a.c.db)
	if !ok || id == a.dbID {
		return nil // gone from the path: commit to the file open until another is there
	}
	w, err := openWriter(ctx, a.c)
	if err != nil {
		return exitcode.New(exitcode.Database, fmt.Errorf("the database %s was replaced, and the new file: %w", a.c.db, err))
	}
	fmt.Fprintf(a.stderr, "%s: %s: the database %s was replaced (another file is at the path now): committing to the new file, where each ack is checked again\n",
		prog, a.c.exporter, a.c.db)
	a.w.Close()
	a.w, a.dbID = w, id
	return nil
}

// maxPending bounds the acks held between commits: past it, commit now.
const maxPending = 1024

func (a *acker) commit(ctx context.Context) error {
	if !a.have {
		return nil
	}
	if err := a.followDB(ctx); err != nil {
		return err
	}
	got, err := a.w.CommitAcks(ctx, a.c.exporter, a.pending.List, a.c.sel, time.Now())
	if ge := (*auditdb.AckGapError)(nil); errors.As(err, &ge) {
		// The acks before the gap are committed; the rest are dropped.
		a.committed = got
		a.cursor.Set(float64(got))
		a.have = false
		a.pending.Reset()
		a.commits++
		return err // says it all, with exit code 3 (or 2)
	}
	if mm := (*auditdb.AckMismatchError)(nil); errors.As(err, &mm) {
		a.have = false
		a.pending.Reset() // nothing of them is committed, at exit either
		return err        // says it all, with exit code 3
	}
	if err != nil {
		return exitcode.New(exitcode.Database, fmt.Errorf("commit cursor %s at seq %d: %w", a.c.exporter, a.lastSeq, err))
	}
	a.committed = got
	a.cursor.Set(float64(got))
	a.have = false
	a.pending.Reset()
	a.lastCommit = time.Now()
	a.commits++
	return nil
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
