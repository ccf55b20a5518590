package auditverify

import (
	"context"
	"fmt"
	"io"

	"github.com/auditpipe/auditpipe/lib/auditdb"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// mark handles a mark line (issue 12 items 1a, 1b). A mark has the trust
// of the stream it arrives in: on stdin it comes from audit-read on the
// same pipe and is applied; in a FILE argument (forensic replay of an
// export, which never holds marks) it is a finding and is not applied. A
// returned error is a configuration mistake (exit 2).
func (c *config) mark(ctx context.Context, v *chain.Verifier, name string, num int64, line []byte, stderr io.Writer) ([]chain.Finding, error) {
	if name != "-" {
		return v.Note(num, chain.ReasonMarkIgnored, fmt.Sprintf("a mark line in %s: marks are trusted only on stdin from audit-read, so it is not applied (the records are verified on their own: a hole it claims is still a seq_gap)", name)), nil
	}
	m, err := chain.ParseMark(line)
	if err != nil {
		if !c.firstSeen {
			c.applyGiven(v)
			c.firstSeen = true
		}
		return v.Note(num, chain.ReasonBadMark, err.Error()), nil
	}
	if m.Type == chain.MarkChain {
		// One chain's stream (many chains start at a chain mark before
		// anything else): only its own chain may be named.
		if m.Chain == c.chainID {
			return nil, nil
		}
		what := "after the records of one chain"
		if c.chainID != "" {
			what = "in the stream of chain " + c.chainID
		}
		return v.Note(num, chain.ReasonBadMark, fmt.Sprintf("a chain mark for chain %s %s: a stream of many chains starts with its first chain mark, before any record (audit-consume writes it so)", m.Chain, what)), nil
	}
	if m.Type == chain.MarkAnchor && !c.firstSeen {
		c.firstSeen = true
		c.hasMarks = true
		c.chainID = m.Chain
		if m.Seq > 0 {
			c.markAnchor = &chain.Anchor{Seq: m.Seq, Hash: m.Hash}
		}
		if err := c.reconcile(ctx, v, &m, stderr); err != nil {
			return nil, err
		}
	}
	if m.Type == chain.MarkSkip && !c.firstSeen {
		// A filtered read with no anchor: audit-read started at genesis.
		if err := c.firstAt(ctx, v, m.FromSeq, nil); err != nil {
			return nil, err
		}
	}
	return v.ApplyMark(num, &m), nil
}

// reconcile checks audit-read's anchor mark against --from-cursor or
// --anchor when given. The mark is the anchor: audit-read read the cursor
// and the shipped hash in one statement, and the records follow it. Our own
// reading of the cursor came at another moment: acks may have landed in
// between (it is ahead: the stream must carry its hash at its seq), or the
// cursor was moved back (behind: noted).
func (c *config) reconcile(ctx context.Context, v *chain.Verifier, m *chain.Mark, stderr io.Writer) error {
	if c.cursor != "" && m.Exporter != "" && m.Exporter != c.cursor {
		return usage("audit-read anchored on exporter %s's cursor (audit-read --from-cursor %s) but audit-verify has --from-cursor %s: give both the same --from-cursor", m.Exporter, m.Exporter, c.cursor)
	}
	g := c.given
	if g == nil && c.cursor != "" && m.Seq > 0 && m.Exporter != "" {
		fmt.Fprintf(stderr, "%s: audit-read anchored at seq %d, but --from-cursor %s has shipped nothing now (was it reset in between?): anchoring on audit-read's\n", prog, m.Seq, c.cursor)
	}
	if g == nil {
		if c.cursor != "" && m.Seq > 0 && m.Exporter == "" {
			// The cursor is at genesis but audit-read started later
			// (--from-seq): the records before were never shipped.
			return usage("audit-read starts after seq %d (audit-read --from-seq %d) but cursor %s has shipped nothing: seq 1..%d would never be shipped; give audit-read --from-cursor %s instead of --from-seq", m.Seq, m.Seq+1, c.cursor, m.Seq, c.cursor)
		}
		return nil
	}
	switch {
	case g.Seq > m.Seq:
		v.Expect(g.Seq, g.Hash, fmt.Sprintf("%s's hash", c.givenWhat))
		fmt.Fprintf(stderr, "%s: audit-read anchored at seq %d; %s is at seq %d (acks landed in between): seq %d..%d will be passed on again, and the record at seq %d must have its hash\n",
			prog, m.Seq, c.givenWhat, g.Seq, m.Seq+1, g.Seq, g.Seq)
	case g.Seq < m.Seq && m.Exporter == "" && c.cursor != "":
		return usage("audit-read starts after seq %d (audit-read --from-seq %d) but cursor %s is at seq %d: seq %d..%d would never be shipped; give audit-read --from-cursor %s instead of --from-seq", m.Seq, m.Seq+1, c.cursor, g.Seq, g.Seq+1, m.Seq, c.cursor)
	case g.Seq < m.Seq:
		fmt.Fprintf(stderr, "%s: audit-read anchored at seq %d, ahead of %s at seq %d (was it moved back in between?): anchoring on audit-read's\n", prog, m.Seq, c.givenWhat, g.Seq)
	case g.Hash != m.Hash:
		return exitcode.Errorf(exitcode.Verify, "%s has hash %s at seq %d, audit-read's anchor there has %s: two histories", c.givenWhat, g.Hash, g.Seq, m.Hash)
	}
	return nil
}

// first handles the first record when no anchor mark came (an audit-read
// without --from-cursor, or one older than the marks, or a file).
func (c *config) first(ctx context.Context, v *chain.Verifier, line []byte, stderr io.Writer) error {
	var p chain.LineParser
	r, err := p.Parse(line)
	if err != nil {
		c.applyGiven(v)
		c.firstSeen = true
		return nil
	}
	return c.firstAt(ctx, v, r.Seq, r.PrevHash)
}

// firstAt applies --from-cursor or --anchor to an input whose first record
// (or hole) is at seq, with prevHash (nil for a hole). When the evidence
// fits a configuration mistake rather than tampering it returns a usage
// error that names the flag to fix (issue 12 item 1c):
//   - the input starts at genesis while the cursor has shipped records;
//   - it starts right after another exporter's cursor;
//   - it starts past the cursor, right after a row the database holds
//     with the record's prevHash (audit-read --from-seq).
//
// An input that starts at or before the cursor (an audit-read that read the
// cursor before acks landed) is a replay: proven against the cursor's hash
// when it reaches it, its records up to there are duplicates, not passed.
func (c *config) firstAt(ctx context.Context, v *chain.Verifier, seq int64, prevHash []byte) error {
	c.firstSeen = true
	g := c.given
	if g == nil || g.Seq == 0 || seq == g.Seq+1 {
		c.applyGiven(v)
		return nil
	}
	if prevHash == nil && seq <= g.Seq && seq > 1 {
		// A skip mark first: audit-read filtered an input that starts
		// inside what the cursor shipped, without the cursor.
		return usage("the input (filtered by audit-read) starts at seq %d, at or below %s at seq %d: give audit-read the same %s, or verify a filtered export without it", seq, c.givenWhat, g.Seq, c.givenWhat)
	}
	if seq <= g.Seq && seq > 1 {
		c.applyGiven(v) // a replay, proven against the cursor's hash
		return nil
	}
	if seq == 1 && len(prevHash) == 0 {
		return usage("the input starts at genesis (seq 1) but %s is at seq %d: audit-read was not given the cursor; give audit-read the same %s (not evidence of tampering; nothing was passed on)", c.givenWhat, g.Seq, c.givenWhat)
	}
	if c.db != "" && seq > g.Seq+1 {
		db, err := auditdb.OpenReader(ctx, c.db, auditdb.ReaderOptions{})
		if err != nil {
			return exitcode.New(exitcode.Database, err)
		}
		defer db.Close()
		others, err := db.ExportersAt(ctx, seq-1)
		if err != nil {
			return exitcode.New(exitcode.Database, err)
		}
		for _, o := range others {
			if o != c.cursor {
				return usage("the input starts at seq %d, right after exporter %s's cursor (seq %d), but %s is at seq %d: audit-read was given --from-cursor %s; give audit-read the same %s (not evidence of tampering; nothing was passed on)", seq, o, seq-1, c.givenWhat, g.Seq, o, c.givenWhat)
			}
		}
		if prevHash != nil {
			h, ok, err := db.RecordHashAt(ctx, seq-1)
			if err != nil {
				return exitcode.New(exitcode.Database, err)
			}
			if ok && h == string(prevHash) {
				return usage("the input starts at seq %d, past %s at seq %d, and links to the database's row %d: audit-read skipped seq %d..%d (--from-seq?); give audit-read the same %s (not evidence of tampering; nothing was passed on)", seq, c.givenWhat, g.Seq, seq-1, g.Seq+1, seq-1, c.givenWhat)
			}
		}
	}
	c.applyGiven(v) // the gap, or the link, is then a finding
	return nil
}

// applyGiven sets --from-cursor's or --anchor's anchor as the chain's
// start.
func (c *config) applyGiven(v *chain.Verifier) {
	c.firstSeen = true
	if g := c.given; g != nil && g.Seq > 0 && !v.Started() {
		v.ApplyMark(0, &chain.Mark{Type: chain.MarkAnchor, Source: chain.SourceDBRow, Seq: g.Seq, Hash: g.Hash})
	}
}

func usage(format string, args ...any) error {
	return usageErr{cli.Usagef(format, args...)}
}

// tooLong is the finding's text for a line longer than --max-line (issue 12
// item 1e): a size limit, not evidence of tampering.
func tooLong(le *ndjson.LineError, v *chain.Verifier) string {
	where := ""
	if seq, _ := v.Head(); seq > 0 {
		where = fmt.Sprintf(" (the record after seq %d)", seq)
	}
	return fmt.Sprintf("record larger than --max-line (%d bytes)%s: not evidence of tampering; raise --max-line (now %d)", le.Len, where, le.Max)
}
