// Package auditverify is audit-verify: a filter that passes verified record
// lines through byte for byte and reports every break in the chain. The man
// page is cmd/audit-verify/doc.go.
package auditverify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

const prog = "audit-verify"

const synopsis = `usage: audit-verify [flags] [FILE ...]

Reads record lines (stdin, or FILEs: plain, gzip or zstd), verifies the hash
chain, and writes the verified lines to stdout byte for byte. Fail-closed by
default: at the first break it stops passing records on and exits 3.

Examples:
  audit-read --db audit.db | audit-verify | audit-batch | audit-ship --kind splunk ...
  audit-read --db audit.db --from-cursor splunk:prod | audit-verify --db audit.db --from-cursor splunk:prod | ...
  audit-verify --mode report --report breaks.json export-2026-11.ndjson.gz >/dev/null`

// Main is the entry point of the audit-verify binary.
func Main() int { return cli.MainProcs(prog, 1, Run) }

type config struct {
	mode       string
	duplicates string
	anchor     string
	db         string
	cursor     string
	newCur     bool // --new-cursor
	lockDir    string
	report     string
	maxLine    int
	window     int
	quiet      bool
	files      []string
	metrics    stagemetrics.Flags

	flow *stagemetrics.Flow // while running

	// The anchor of --anchor or --from-cursor, applied when the first line
	// shows whether audit-read sent its own (an anchor mark): see first.
	given      *chain.Anchor
	givenWhat  string // "--from-cursor splunk:prod" or "--anchor"
	firstSeen  bool
	hasMarks   bool // an anchor mark came: the read's own anchor is in force
	markAnchor *chain.Anchor

	// Chains (issue 15, chains.go).
	chainWindow int
	maxChains   int
	holds       string       // --holds: where hold lines go
	holdW       *os.File     // opened at the first hold
	chainID     string       // one chain: the chain its anchor mark named
	chainMarked bool         // one chain: its chain mark was written downstream
	marksOut    bool         // one chain: write the chain mark (--chain-mark)
	chainMark   bool         // --chain-mark
	recordsSeen bool         // a record line came (a chain mark then no longer starts many chains)
	multi       *chain.Multi // many chains: a chain mark came first
	lastOut     string       // many chains: the chain of the last record written
}

// Run is audit-verify with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet(prog, "AUDIT_VERIFY", synopsis, stderr)
	var c config
	fs.StringVar(&c.mode, "mode", "fail-closed", "fail-closed: stop at the first break; report: go on, report every break, pass only intact records")
	fs.StringVar(&c.anchor, "anchor", "", "trusted anchor SEQ:HASH: the first record must be SEQ+1 and link to HASH")
	fs.StringVar(&c.db, "db", "", "audit database, to read the anchor of --from-cursor")
	fs.StringVar(&c.cursor, "from-cursor", "", "exporter name: anchor on that exporter's cursor (the last shipped seq and hash) in --db")
	fs.BoolVar(&c.newCur, "new-cursor", false, "allow a --from-cursor name that does not exist while other cursors do (the stream must then start at genesis)")
	fs.StringVar(&c.lockDir, "lock-dir", "", "with --from-cursor: directory of the exporter's lock file (default: $AUDITPIPE_LOCK_DIR, else the database's directory)")
	fs.StringVar(&c.report, "report", "", "write a JSON report of the run to this file")
	fs.IntVar(&c.maxLine, "max-line", ndjson.DefaultMaxLine, "maximum line length in bytes")
	fs.IntVar(&c.window, "window", 4096, "recent records remembered to prove a duplicate record by record (a longer replay is proven as a run when it reaches the head)")
	fs.StringVar(&c.duplicates, "duplicates", "drop", "drop: records delivered twice (proven identical) are counted and not passed on; pass: pass on those the window proves record by record")
	fs.IntVar(&c.chainWindow, "chain-window", 64, "many chains (audit-consume's stream): each chain's duplicate window; 40 bytes an entry per chain")
	fs.IntVar(&c.maxChains, "max-chains", 100000, "many chains: the most chains verified at once; a chain first seen beyond it is held (not passed on)")
	fs.StringVar(&c.holds, "holds", "", "many chains: write a hold line for each chain held to this file or FIFO (audit-consume's --acks), so the consumer stops counting its records in flight")
	fs.BoolVar(&c.chainMark, "chain-mark", false, "write a chain mark naming the chain (from audit-read's anchor, or seq 1's recordHash from genesis) before the first record: audit-ship --kind kafka keys by it, and SIEM events and acks are labelled with it; off by default, so that what audit-verify writes holds records only")
	fs.BoolVar(&c.quiet, "quiet", false, "no summary line, and no progress line on a terminal, on stderr (findings are still printed)")
	c.metrics.Register(fs)
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, "AUDIT_VERIFY"); err != nil {
		return err
	}
	c.files = fs.Args()
	if c.mode != "fail-closed" && c.mode != "report" {
		return cli.Usagef("--mode must be fail-closed or report, not %q", c.mode)
	}
	if c.duplicates != "drop" && c.duplicates != "pass" {
		return cli.Usagef("--duplicates must be drop or pass, not %q", c.duplicates)
	}
	if c.db != "" && c.cursor != "" { // one pipeline per exporter (lib/exportlock)
		lock, err := exportlock.AcquireFollower(ctx, c.db, c.lockDir, c.cursor, exportlock.Verify, prog, 0,
			func(msg string) { fmt.Fprintf(stderr, "%s: %s\n", prog, msg) })
		if err != nil {
			return err
		}
		defer lock.Close()
	}
	anchor, err := c.resolveAnchor(ctx, stderr)
	if err != nil {
		return err
	}
	ms, err := c.metrics.Start(ctx, prog, c.metrics.Labels(c.cursor, ""), stderr)
	if err != nil {
		return err
	}
	defer ms.Close()
	c.flow = ms.Flow()
	rep := &report{breaks: breakCounters(ms)}
	c.given = anchor
	v := chain.NewVerifier(chain.Options{Window: c.window, PassDuplicates: c.duplicates == "pass"})
	if f, ok := stdout.(*os.File); ok {
		ndjson.SetPipeSize(f, 1<<20)
	}
	out := ndjson.NewWriter(ms.Stdout(stdout), 0)
	var pl *progress.Line
	if !c.quiet && (len(c.files) > 0 || !progress.FedByPipe(stdin)) {
		var head atomic.Int64
		pl = progress.Start(prog, stderr, func() progress.Status {
			return progress.Status{Records: c.flow.In.Load(), Seq: c.flow.Seq.Load(), Head: head.Load()}
		})
		if pl != nil && c.db != "" {
			defer c.pollHead(ctx, &head)()
		}
		stderr = pl.Writer(stderr)
	}
	start := time.Now()
	c.marksOut = c.chainMark
	runErr := c.run(ctx, v, stdin, out, stderr, rep)
	if ferr := out.Flush(); runErr == nil && ferr != nil {
		runErr = fmt.Errorf("write stdout: %w", ferr)
	}
	if c.multi != nil {
		for _, f := range c.multi.Finish() {
			rep.print(stderr, f)
		}
		pl.Stop()
		return c.endChains(runErr, stderr, rep, start)
	}
	for _, f := range v.Finish() {
		rep.print(stderr, f)
	}
	pl.Stop()
	if ue, ok := runErr.(usageErr); ok {
		// A configuration mistake, found at the first record: nothing was
		// passed on. Not a verification failure.
		if c.report != "" {
			_ = writeReport(c.report, v.Stats(), rep, c.anchorUsed(v), ue.error, false)
		}
		return ue.error
	}
	st := v.Stats()
	if !c.quiet {
		fmt.Fprintln(stderr, prog+": "+summary(st, rep, time.Since(start)))
	}
	if c.report != "" {
		if err := writeReport(c.report, st, rep, c.anchorUsed(v), runErr, v.Failed()); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return runErr
	}
	if v.Failed() {
		first := rep.firstError
		return exitcode.Errorf(exitcode.Verify, "chain verification failed: %s (%d error(s) in all)", first, st.Errors)
	}
	if st.InputErrors > 0 {
		return exitcode.Errorf(exitcode.Input, "%s (%d such record(s))", rep.firstTooLong, st.InputErrors)
	}
	return nil
}

// usageErr is a configuration mistake found in the input (exit 2).
type usageErr struct{ error }

func (c *config) anchorUsed(v *chain.Verifier) *chain.Anchor {
	if c.hasMarks {
		return c.markAnchor
	}
	return c.given
}

func (c *config) resolveAnchor(ctx context.Context, stderr io.Writer) (*chain.Anchor, error) {
	if c.anchor != "" && c.cursor != "" {
		return nil, cli.Usagef("--anchor and --from-cursor are exclusive")
	}
	if c.anchor != "" {
		seqs, h, ok := strings.Cut(c.anchor, ":")
		seq, err := strconv.ParseInt(seqs, 10, 64)
		if !ok || err != nil || seq < 0 || !chain.IsHexHashString(h) {
			return nil, cli.Usagef("--anchor must be SEQ:HASH with HASH 64 lowercase hex, got %q", c.anchor)
		}
		c.givenWhat = "--anchor " + c.anchor
		return &chain.Anchor{Seq: seq, Hash: h}, nil
	}
	c.givenWhat = "--from-cursor " + c.cursor
	if c.cursor == "" {
		return nil, nil
	}
	if c.db == "" {
		return nil, cli.Usagef("--from-cursor needs --db")
	}
	db, err := auditdb.OpenReader(ctx, c.db, auditdb.ReaderOptions{})
	if err != nil {
		return nil, exitcode.New(exitcode.Database, err)
	}
	defer db.Close()
	if err := auditdb.CheckCursorName(ctx, db, "--from-cursor", c.cursor, c.newCur); err != nil {
		return nil, err
	}
	cur, err := db.Cursor(ctx, c.cursor)
	if err != nil {
		return nil, exitcode.New(exitcode.Database, err)
	}
	if !cur.Found || cur.LastSeq == 0 {
		return nil, nil // nothing shipped yet: the stream must start at genesis
	}
	if cur.LastHash != "" {
		return &chain.Anchor{Seq: cur.LastSeq, Hash: cur.LastHash}, nil
	}
	h, ok, err := db.RecordHashAt(ctx, cur.LastSeq)
	if err != nil {
		return nil, exitcode.New(exitcode.Database, err)
	}
	if !ok {
		return nil, exitcode.Errorf(exitcode.Verify, "cursor %s is at seq %d but the database has no such row (rows removed?)", c.cursor, cur.LastSeq)
	}
	fmt.Fprintf(stderr, "%s: cursor %s has no shipped hash (written by another tool); anchoring on the database's own record_hash at seq %d, which proves less\n", prog, c.cursor, cur.LastSeq)
	return &chain.Anchor{Seq: cur.LastSeq, Hash: h}, nil
}

func (c *config) run(ctx context.Context, v *chain.Verifier, stdin io.Reader, out *ndjson.Writer, stderr io.Writer, rep *report) error {
	inputs := c.files
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	for _, name := range inputs {
		var src io.Reader = stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return exitcode.New(exitcode.Input, fmt.Errorf("open input: %w", err))
			}
			defer f.Close()
			src = f
		}
		stop, err := c.verifyStream(ctx, v, name, src, out, stderr, rep)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// verifyStream verifies one input. stop is true when fail-closed mode hit a
// break.
func (c *config) verifyStream(ctx context.Context, v *chain.Verifier, name string, src io.Reader, out *ndjson.Writer, stderr io.Writer, rep *report) (stop bool, err error) {
	// The record parser checks NUL and UTF-8 in the pass it makes anyway.
	r, err := ndjson.NewReader(src, ndjson.Options{MaxLine: c.maxLine, NoValidate: true})
	if err != nil {
		return false, exitcode.New(exitcode.Input, fmt.Errorf("%s: %w", displayName(name), err))
	}
	failClosed := c.mode == "fail-closed"
	for {
		if ctx.Err() != nil {
			return true, nil // asked to stop: what passed is verified; exit cleanly
		}
		line, err := r.Next()
		if err == nil && name == "-" && c.multi == nil && !c.recordsSeen && !c.hasMarks && isChainMark(line.Bytes) {
			if uerr := c.startChains(); uerr != nil {
				return true, uerr
			}
		}
		if c.multi != nil {
			if err == io.EOF {
				return false, nil
			}
			if err := c.chainLine(name, line, err, out, stderr, rep); err != nil {
				return false, err
			}
			if r.Buffered() == 0 {
				for _, f := range c.multi.Flush() {
					rep.print(stderr, f)
				}
				if err := out.Flush(); err != nil {
					return false, fmt.Errorf("write stdout: %w", err)
				}
			}
			continue
		}
		var done []chain.Finding
		pass := false
		switch {
		case err == io.EOF:
			return false, nil
		case err == nil && framing.IsMark(line.Bytes):
			// A control line, not a record: not counted as one.
			var uerr error
			done, uerr = c.mark(ctx, v, name, line.Num, line.Bytes, stderr)
			if uerr != nil {
				return true, uerr
			}
		case err == nil:
			c.flow.Read(len(line.Bytes))
			c.recordsSeen = true
			if !c.firstSeen {
				if uerr := c.first(ctx, v, line.Bytes, stderr); uerr != nil {
					return true, uerr
				}
			}
			pass, done = v.Check(line.Num, line.Bytes)
		default:
			var le *ndjson.LineError
			if !errors.As(err, &le) {
				return false, fmt.Errorf("read %s: %w", displayName(name), err)
			}
			if !c.firstSeen {
				c.applyGiven(v)
			}
			detail := strings.TrimPrefix(le.Error(), fmt.Sprintf("line %d: ", le.Num)) // not "line 3: line 3: …"
			if errors.Is(le.Kind, ndjson.ErrTooLong) {
				detail = tooLong(le, v)
				if rep.firstTooLong == "" {
					rep.firstTooLong = fmt.Sprintf("line %d: %s", le.Num, detail)
				}
			}
			done = v.LineProblem(le.Num, chain.LineReason(le.Kind), detail)
		}
		for _, f := range done {
			rep.print(stderr, f)
		}
		if failClosed && (v.Failed() || v.InputFailed()) {
			return true, nil
		}
		if pass && c.chainID == "" && !c.chainMarked && c.marksOut {
			// Read from genesis: no anchor named the chain, the first
			// record does (its recordHash is the chain id), so a first
			// drain is labelled as every later one.
			if seq, hash := v.Head(); seq == 1 && chain.IsChainID(hash) {
				c.chainID = hash
			}
		}
		if pass && c.chainID != "" && !c.chainMarked && c.marksOut {
			// The anchor named the chain: say it downstream, once.
			c.chainMarked = true
			if err := out.Write(chain.AppendChainMark(nil, c.chainID, nil)); err != nil {
				return false, fmt.Errorf("write stdout: %w", err)
			}
		}
		if pass {
			if err := out.Write(line.Bytes); err != nil {
				return false, fmt.Errorf("write stdout: %w", err)
			}
			c.flow.Wrote(len(line.Bytes), v.LastSeq())
		}
		if r.Buffered() == 0 {
			// Input has paused: pass on what we hold so a follower sees it
			// now, and report what was found (a run of breaks open at the
			// pause is reported now, in two parts if it goes on).
			for _, f := range v.Flush() {
				rep.print(stderr, f)
			}
			if err := out.Flush(); err != nil {
				return false, fmt.Errorf("write stdout: %w", err)
			}
		}
	}
}

func displayName(n string) string {
	if n == "-" {
		return "stdin"
	}
	return n
}

// report accumulates findings for the summary and the JSON report. It keeps
// at most maxKept findings (the count of all is always exact).
type report struct {
	firstTooLong string
	holesShown   bool
	findings     []chain.Finding
	dropped      int64
	byReason     map[chain.Reason]int64
	firstError   string
	breaks       func(chain.Reason) prometheus.Counter // auditpipe_verify_breaks_total
}

// reasons are every finding reason, whose break counters exist at 0 from
// the start: an alert on increase(...[5m]) > 0 then sees the first break
// as a step from 0, not as a new series at 1 (which increase ignores).
var reasons = []chain.Reason{
	chain.ReasonHashMismatch, chain.ReasonPrevLink, chain.ReasonSeqGap, chain.ReasonSeqRegress,
	chain.ReasonEquivocation, chain.ReasonBadJSON, chain.ReasonBadField, chain.ReasonTruncated,
	chain.ReasonLineTooLong, chain.ReasonDuplicate, chain.ReasonTombstone, chain.ReasonUnanchored,
	chain.ReasonReplayUnproven, chain.ReasonFiltered, chain.ReasonBadMark, chain.ReasonMarkIgnored,
	chain.ReasonChainHeld,
}

// breakCounters makes the break counter of every reason and returns them
// by reason.
func breakCounters(ms *stagemetrics.Stage) func(chain.Reason) prometheus.Counter {
	m := make(map[chain.Reason]prometheus.Counter, len(reasons))
	for _, r := range reasons {
		m[r] = ms.VerifyBreaks(string(r))
	}
	return func(r chain.Reason) prometheus.Counter {
		if c, ok := m[r]; ok {
			return c
		}
		return ms.VerifyBreaks(string(r)) // a reason added to lib/chain later
	}
}

// pollHead keeps head at the database's MAX(seq), for the progress line's
// time left, until the returned stop is called; without a readable
// database the head stays unknown.
func (c *config) pollHead(ctx context.Context, head *atomic.Int64) (stop func()) {
	stop, err := auditdb.WatchHeadAt(ctx, c.db, head.Store)
	if err != nil {
		return func() {}
	}
	return stop
}

const maxKept = 10000

func (r *report) print(w io.Writer, f chain.Finding) {
	if f.Reason == chain.ReasonFiltered {
		// One line for the first hole; the others are counted (summary,
		// report, metric), or a --tenant read would print one per record.
		if r.holesShown {
			if r.breaks != nil {
				r.breaks(f.Reason).Add(float64(f.Count))
			}
			if r.byReason == nil {
				r.byReason = make(map[chain.Reason]int64)
			}
			r.byReason[f.Reason] += f.Count
			return
		}
		r.holesShown = true
		f.Detail += "; further holes are counted in the summary, not listed"
	}
	fmt.Fprintf(w, "%s: %s\n", prog, f)
	if r.breaks != nil {
		r.breaks(f.Reason).Add(float64(f.Count))
	}
	if r.byReason == nil {
		r.byReason = make(map[chain.Reason]int64)
	}
	r.byReason[f.Reason] += f.Count
	if f.Severity == chain.SeverityError && r.firstError == "" {
		r.firstError = f.String()
	}
	if len(r.findings) < maxKept {
		r.findings = append(r.findings, f)
	} else {
		r.dropped++
	}
}

func summary(st chain.Stats, rep *report, d time.Duration) string {
	var b strings.Builder
	b.WriteString(cli.Count(st.Records, "record", ""))
	switch {
	case st.Records == 1 && st.FirstSeq > 0:
		fmt.Fprintf(&b, " (seq %d, head %s)", st.FirstSeq, elide.Hash(st.HeadHash))
	case st.Records > 1 && st.FirstSeq > 0: // (many chains: per chain, in the report)
		fmt.Fprintf(&b, " (seq %d..%d, head %s)", st.FirstSeq, st.LastSeq, elide.Hash(st.HeadHash))
	}
	fmt.Fprintf(&b, ", %d verified (%d fast, %d canonicalised)", st.Verified, st.FastPath, st.SlowPath)
	if len(st.Tenants) > 0 {
		b.WriteString(", tenants ")
		for i, t := range sortedTenants(st.Tenants) {
			if i > 0 {
				b.WriteByte(' ')
			}
			if i == 10 {
				fmt.Fprintf(&b, "+%d more", len(st.Tenants)-10)
				break
			}
			fmt.Fprintf(&b, "%s=%d", t, st.Tenants[t])
		}
	}
	if st.Holes > 0 {
		fmt.Fprintf(&b, ", %d left out by audit-read's filter in %d holes (checked by audit-read)", st.Filtered, st.Holes)
	}
	if st.Duplicates > 0 || st.Unproven > 0 {
		fmt.Fprintf(&b, ", %d duplicates dropped", st.Duplicates)
		if st.Unproven > 0 {
			fmt.Fprintf(&b, " and %d replayed records not proven (dropped)", st.Unproven)
		}
	}
	if len(rep.byReason) == 0 {
		b.WriteString("; no breaks")
	} else {
		b.WriteString("; ")
		keys := make([]string, 0, len(rep.byReason))
		for k := range rep.byReason {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%d", k, rep.byReason[chain.Reason(k)])
		}
	}
	if secs := d.Seconds(); secs > 0 && st.Records > 0 {
		fmt.Fprintf(&b, "; %.0f records/s", float64(st.Records)/secs)
	}
	return b.String()
}

func sortedTenants(m map[string]int64) []string {
	ts := make([]string, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

type jsonReport struct {
	OK       bool             `json:"ok"`
	Records  int64            `json:"records"`
	Verified int64            `json:"verified"`
	FastPath int64            `json:"fastPath"`
	SlowPath int64            `json:"slowPath"`
	FirstSeq int64            `json:"firstSeq"`
	LastSeq  int64            `json:"lastSeq"`
	HeadHash string           `json:"headHash"`
	Anchor   *chain.Anchor    `json:"anchor,omitempty"`
	Tenants  map[string]int64 `json:"tenants"`
	Breaks   map[string]int64 `json:"breaks"`
	Errors   int64            `json:"errors"`
	// Holes and Filtered: the holes audit-read's filter made (skip marks)
	// and the records in them; Duplicates: records delivered again and
	// proven identical; Unproven: replayed records not proven (dropped);
	// TooLarge: records longer than --max-line (not checked, exit 4).
	Holes      int64           `json:"holes"`
	Filtered   int64           `json:"filtered"`
	Duplicates int64           `json:"duplicates"`
	Unproven   int64           `json:"unproven"`
	TooLarge   int64           `json:"tooLarge"`
	Findings   []chain.Finding `json:"findings"`
	Dropped    int64           `json:"findingsNotListed"`
	RunError   string          `json:"runError,omitempty"`
	// Chains: a stream of many chains, each chain's state (issue 15).
	Chains []chainReport `json:"chains,omitempty"`
}

func writeReport(path string, st chain.Stats, rep *report, anchor *chain.Anchor, runErr error, failed bool) error {
	return writeReportWith(path, st, rep, anchor, runErr, failed, nil)
}

func writeReportWith(path string, st chain.Stats, rep *report, anchor *chain.Anchor, runErr error, failed bool, chains []chainReport) error {
	jr := jsonReport{Chains: chains, OK: !failed && runErr == nil && st.InputErrors == 0, Records: st.Records, Verified: st.Verified, FastPath: st.FastPath,
		SlowPath: st.SlowPath, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, HeadHash: st.HeadHash, Anchor: anchor,
		Tenants: st.Tenants, Breaks: map[string]int64{}, Errors: st.Errors, Findings: rep.findings, Dropped: rep.dropped,
		Holes: st.Holes, Filtered: st.Filtered, Duplicates: st.Duplicates, Unproven: st.Unproven, TooLarge: st.InputErrors}
	for k, n := range rep.byReason {
		jr.Breaks[string(k)] = n
	}
	if jr.Findings == nil {
		jr.Findings = []chain.Finding{}
	}
	if runErr != nil {
		jr.RunError = runErr.Error()
	}
	b, err := json.MarshalIndent(jr, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
