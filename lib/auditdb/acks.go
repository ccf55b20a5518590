package auditdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// AckSpan is what one ack (or a run of contiguous acks) says was
// delivered: lib/ack's Span, whose package doc holds the protocol and the
// gap rule CommitAcks applies.
type AckSpan = ack.Span

// Selection is the part of the log an exporter ships: the rows with seq >=
// FromSeq (0: all), of one of Tenants and one of Kinds (empty: any). It is
// the filter its audit-read was given. A row outside it may be skipped by
// the acks; a row inside it may not.
type Selection struct {
	FromSeq int64
	Tenants []string
	Kinds   []string
}

func (s Selection) any() bool { return s.FromSeq > 0 || len(s.Tenants) > 0 || len(s.Kinds) > 0 }

// String is the selection as audit-read's flags.
func (s Selection) String() string {
	var p []string
	if s.FromSeq > 0 {
		p = append(p, fmt.Sprintf("--from-seq %d", s.FromSeq))
	}
	if len(s.Tenants) > 0 {
		p = append(p, "--tenant "+strings.Join(s.Tenants, ","))
	}
	if len(s.Kinds) > 0 {
		p = append(p, "--kind "+strings.Join(s.Kinds, ","))
	}
	if len(p) == 0 {
		return "no filter"
	}
	return strings.Join(p, " ")
}

// where is the SQL condition (after "WHERE seq > ? AND seq < ?") and its
// arguments selecting the rows of s.
func (s Selection) where() (string, []any) {
	var b strings.Builder
	var args []any
	if s.FromSeq > 0 {
		b.WriteString(` AND seq >= ?`)
		args = append(args, s.FromSeq)
	}
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		b.WriteString(` AND ` + col + ` IN (`)
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
			args = append(args, v)
		}
		b.WriteByte(')')
	}
	in("tenant_id", s.Tenants)
	in("kind", s.Kinds)
	return b.String(), args
}

// AckGapError is an ack that skips rows the exporter ships: rows of the
// selection with seq in (Cursor, FirstSeq) that no ack covered (Before), or,
// inside the ack's own range, more rows of the selection than the ack's
// count (Inside). Moving the cursor past them would claim they were shipped.
// CommitAcks returns it inside an *exitcode.Error: code 3 (Verify), or 2
// (Usage) when the evidence fits a configuration mistake (Mistake says
// which: a filtered stream acked by an audit-ack not given the filter, or a
// first ack of a pipeline started at --from-seq).
type AckGapError struct {
	Path      string
	Exporter  string
	Cursor    int64 // the cursor (or the last ack taken) before this ack
	NoCursor  bool  // no cursor row and no ack taken yet
	Ack       AckSpan
	Selection Selection
	// The rows never acked: how many, the first and the last; Inside, the
	// rows are inside the ack's range (its count is short); SinceShort,
	// the ack's "since" claim does not hold (ack.Gap).
	ack.Gap
	Mistake string
}

func (e *AckGapError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "commit cursor %s: the ack for %s covers seqs %d..%d (%d records)", e.Path, e.Exporter, e.Ack.FirstSeq, e.Ack.LastSeq, e.Ack.Count)
	if e.NoCursor {
		fmt.Fprintf(&b, ", the first for this exporter (no cursor yet)")
	} else {
		fmt.Fprintf(&b, " but the cursor is at seq %d", e.Cursor)
	}
	if e.SinceShort {
		fmt.Fprintf(&b, ": its shipper says it delivered %d records from seq %d to %d in its run (\"since\", \"sinceCount\"), but %d rows of those seqs that it ships (%s) are in the database, so at least %d of them were never shipped",
			e.Ack.SinceCount, e.Ack.Since, e.Ack.LastSeq, e.Missing+e.Ack.SinceCount, e.Selection, e.Missing)
	} else if e.Inside {
		fmt.Fprintf(&b, ": %d rows of seqs %d..%d that it ships (%s) are in the database, more than the ack's count, so at least %d of them (first %d, last %d) were never shipped",
			e.Missing+e.Ack.Count, max(e.Ack.FirstSeq, e.Cursor+1), e.Ack.LastSeq, e.Selection, e.Missing, e.MissFirst, e.MissLast)
	} else {
		fmt.Fprintf(&b, ": %d rows it ships (%s) between them, seqs %d..%d, were never acked", e.Missing, e.Selection, e.MissFirst, e.MissLast)
		if e.Ack.SinceCount > 0 {
			fmt.Fprintf(&b, ", and its shipper's run began after them (at seq %d, its \"since\")", e.Ack.Since)
		}
	}
	fmt.Fprintf(&b, "; the cursor is not moved over them (it stays at %d).", e.Cursor)
	if e.Mistake != "" {
		b.WriteString(" " + e.Mistake)
	} else {
		b.WriteString(" A shipper acks every record it is given in order: this ack is forged, or its pipeline read with a filter audit-ack was not given" +
			" (give audit-ack the same --tenant/--kind/--from-seq as audit-read). Compare what the SIEM holds for these seqs before going on")
	}
	return b.String()
}

// CommitAcks checks acks, in the order taken, against the database and
// the exporter's cursor, and commits the cursor to the last one that passes,
// as CommitCursor does (monotonic, durable, with its hash, which must match
// the row: *AckMismatchError otherwise, and nothing is committed). All in
// one transaction.
//
// An ack passes when it skips nothing the exporter ships: no row of sel
// lies between the cursor (or the ack before it) and its FirstSeq, and its
// own range holds no more rows of sel than its Count. A clean ack that
// follows on from the cursor needs no query. Rows of sel before FirstSeq
// are covered by the ack's shipper when it says what its run delivered
// (Since, SinceCount: acks lost with an acker killed before it committed
// them) and the claim holds: no row of sel between the cursor and Since
// (none when Since <= cursor+1, a shipper restarted from an older cursor
// read), and no more rows of sel in [Since, LastSeq] than SinceCount. At the first ack that fails,
// the acks before it are committed and an *AckGapError is returned (with
// the cursor value committed).
func (w *Writer) CommitAcks(ctx context.Context, exporter string, acks []AckSpan, sel Selection, now time.Time) (committed int64, err error) {
	if exporter == "" {
		return 0, errors.New("commit cursor: empty exporter name")
	}
	for _, a := range acks {
		if a.FirstSeq < 0 || a.LastSeq < a.FirstSeq {
			return 0, fmt.Errorf("commit cursor: bad ack range %d..%d", a.FirstSeq, a.LastSeq)
		}
		if a.LastHash != "" && !chain.IsHexHashString(a.LastHash) {
			return 0, fmt.Errorf("commit cursor: last hash %q is not 64 lowercase hex digits", elide.To(a.LastHash, 40))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ms := now.UnixMilli()
	var mismatch, gap error
	cond, condArgs := sel.where()
	err = w.inTx(ctx, func(tx *sql.Tx) error {
		var cursor int64
		err := tx.QueryRowContext(ctx, `SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?`, exporter).Scan(&cursor)
		noCursor := errors.Is(err, sql.ErrNoRows)
		if err != nil && !noCursor {
			return err
		}
		committed = cursor
		known, upto := cursor, -1
		for i, a := range acks {
			if a.LastSeq <= known {
				continue // a replay of what is committed
			}
			if a.FirstSeq > known+1 || !a.Clean() {
				g, err := w.checkSpan(ctx, tx, known, a, cond, condArgs)
				if err != nil {
					return err
				}
				if g != nil {
					g.Path, g.Exporter, g.Selection, g.NoCursor = w.path, exporter, sel, noCursor && upto < 0
					g.Mistake = mistake(ctx, tx, g, sel)
					gap = g
					break
				}
			}
			known, upto = a.LastSeq, i
		}
		if upto < 0 {
			return errRollback
		}
		last := acks[upto]
		if last.LastHash != "" {
			var have string
			err := tx.QueryRowContext(ctx, `SELECT record_hash FROM audit_records WHERE seq = ?`, last.LastSeq).Scan(&have)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				var head int64
				if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit_records`).Scan(&head); err != nil {
					return err
				}
				mismatch = &AckMismatchError{Path: w.path, Exporter: exporter, Seq: last.LastSeq, Shipped: last.LastHash, Head: head}
				return errRollback
			case err != nil:
				return err
			case have != last.LastHash:
				mismatch = &AckMismatchError{Path: w.path, Exporter: exporter, Seq: last.LastSeq, Shipped: last.LastHash, Have: have}
				return errRollback
			}
		}
		if _, err := tx.ExecContext(ctx, upsertCursorSQL, exporter, last.LastSeq, ms); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, upsertHashSQL, exporter, last.LastSeq, last.LastHash, ms); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?`, exporter).Scan(&committed)
	})
	if mismatch != nil {
		return 0, exitcode.New(exitcode.Verify, mismatch)
	}
	if err != nil && !errors.Is(err, errRollback) {
		return 0, classify(ctx, w.path, "commit cursor", w.busy, err)
	}
	if gap != nil {
		g := gap.(*AckGapError)
		if g.Mistake != "" {
			return committed, exitcode.New(exitcode.Usage, g)
		}
		return committed, exitcode.New(exitcode.Verify, g)
	}
	return committed, nil
}

// checkSpan applies the gap rule (ack.Check) to a after known, counting
// the rows of the selection in SQL: a non-nil *AckGapError if it skips
// any. NOT INDEXED keeps SQLite on the seq (rowid) range: given a tenant or
// kind it would otherwise walk that tenant's index over the whole log.
func (w *Writer) checkSpan(ctx context.Context, tx *sql.Tx, known int64, a AckSpan, cond string, condArgs []any) (*AckGapError, error) {
	count := func(lo, hi int64) (n, first, last int64, err error) { // rows with lo < seq < hi
		args := append([]any{lo, hi}, condArgs...)
		err = tx.QueryRowContext(ctx, `SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM audit_records NOT INDEXED WHERE seq > ? AND seq < ?`+cond, args...).Scan(&n, &first, &last)
		return
	}
	g, err := ack.Check(known, a, count)
	if g == nil || err != nil {
		return nil, err
	}
	return &AckGapError{Cursor: known, Ack: a, Gap: *g}, nil
}

// mistake says how a gap fits a configuration mistake rather than a forged
// ack, or "" if it does not.
func mistake(ctx context.Context, tx *sql.Tx, g *AckGapError, sel Selection) string {
	if sel.any() {
		return ""
	}
	if g.SinceShort {
		return fmt.Sprintf("The ack's \"sinceCount\" (%d records over %d seqs) says its pipeline read a filtered stream, but this audit-ack has no filter: "+
			"give audit-ack the same --tenant/--kind/--from-seq as the audit-read of that pipeline", g.Ack.SinceCount, g.Ack.LastSeq-g.Ack.Since+1)
	}
	if !g.Ack.Clean() {
		return fmt.Sprintf("The ack's own count (%d records over %d seqs) says its pipeline read a filtered stream, but this audit-ack has no filter: "+
			"give audit-ack the same --tenant/--kind/--from-seq as the audit-read of that pipeline", g.Ack.Count, g.Ack.LastSeq-g.Ack.FirstSeq+1)
	}
	// The skipped rows and the acked ones share no tenant (or no kind): the
	// look of a per-tenant (per-kind) pipeline whose acker lacks the filter.
	for _, col := range []string{"tenant_id", "kind"} {
		skipped, err := distinct(ctx, tx, col, g.MissFirst, g.MissLast)
		if err != nil || skipped == nil {
			continue
		}
		acked, err := distinct(ctx, tx, col, g.Ack.FirstSeq, g.Ack.LastSeq)
		if err != nil || acked == nil {
			continue
		}
		disjoint := true
		for v := range acked {
			if skipped[v] {
				disjoint = false
				break
			}
		}
		if disjoint {
			flag := map[string]string{"tenant_id": "--tenant", "kind": "--kind"}[col]
			vals := make([]string, 0, len(acked))
			for v := range acked {
				vals = append(vals, v)
			}
			sort.Strings(vals)
			return fmt.Sprintf("The acked rows are all of %s %s and the skipped ones of others: the look of a pipeline read with audit-read %s; "+
				"give audit-ack the same %s (and any other filter) as that audit-read", col, strings.Join(vals, ","), flag, flag)
		}
	}
	if g.NoCursor && !g.Inside {
		return fmt.Sprintf("This is the exporter's first ack: if its pipeline started at seq %d on purpose (audit-read --from-seq %d), "+
			"give audit-ack --from-seq %d too, and the rows before it are left unshipped by design", g.Ack.FirstSeq, g.Ack.FirstSeq, g.Ack.FirstSeq)
	}
	return ""
}

// distinct returns the values of col in the rows lo..hi, nil if there are
// more than 64 (or none).
func distinct(ctx context.Context, tx *sql.Tx, col string, lo, hi int64) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT `+col+` FROM audit_records NOT INDEXED WHERE seq >= ? AND seq <= ? LIMIT 65`, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		m[v] = true
	}
	if err := rows.Err(); err != nil || len(m) == 0 || len(m) > 64 {
		return nil, err
	}
	return m, nil
}
