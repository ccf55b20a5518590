package auditdb

// The cursor operations of audit-cursor (list, move, delete) and the check
// that a cursor name given to audit-read, audit-verify or audit-ack is not a
// typo of an existing one. The cursor tables are described in
// docs/design.md, "Cursor storage".

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// CursorSource is what lists the cursors of a database: *DB and *Writer.
type CursorSource interface {
	Cursors(ctx context.Context) ([]Cursor, error)
}

// Cursors returns every cursor of the database, by exporter name, each as
// Cursor returns it. A database without audit_export_cursor has none.
func (db *DB) Cursors(ctx context.Context) ([]Cursor, error) {
	return listCursors(ctx, db.db, db.path, db.busy)
}

// Cursors returns every cursor of the database, as DB.Cursors does.
func (w *Writer) Cursors(ctx context.Context) ([]Cursor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return listCursors(ctx, w.db, w.path, w.busy)
}

// HeadSeq returns the highest seq in audit_records, 0 if it is empty.
func (w *Writer) HeadSeq(ctx context.Context) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var head int64
	err := w.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit_records`).Scan(&head)
	return head, classify(ctx, w.path, "read head", w.busy, err)
}

func cursorTables(ctx context.Context, q queryer) (hasCursor, hasHash bool, err error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type='table' AND name IN ('audit_export_cursor', 'auditpipe_cursor_hash')`)
	if err != nil {
		return false, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, false, err
		}
		hasCursor = hasCursor || name == "audit_export_cursor"
		hasHash = hasHash || name == "auditpipe_cursor_hash"
	}
	return hasCursor, hasHash, rows.Err()
}

func listCursors(ctx context.Context, q queryer, path string, busy time.Duration) ([]Cursor, error) {
	fail := func(err error) ([]Cursor, error) { return nil, classify(ctx, path, "list cursors", busy, err) }
	hasCursor, hasHash, err := cursorTables(ctx, q)
	if err != nil {
		return fail(err)
	}
	if !hasCursor {
		return nil, nil
	}
	query := `SELECT exporter_name, last_seq, updated_at, NULL, NULL FROM audit_export_cursor ORDER BY exporter_name`
	if hasHash {
		query = `SELECT c.exporter_name, c.last_seq, c.updated_at, h.last_seq, h.last_hash
			FROM audit_export_cursor c LEFT JOIN auditpipe_cursor_hash h ON h.exporter_name = c.exporter_name
			ORDER BY c.exporter_name`
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []Cursor
	for rows.Next() {
		var c Cursor
		var updated int64
		var hseq sql.NullInt64
		var hhash sql.NullString
		if err := rows.Scan(&c.Exporter, &c.LastSeq, &updated, &hseq, &hhash); err != nil {
			return fail(err)
		}
		c.Found = true
		c.UpdatedAt = time.UnixMilli(updated)
		if hseq.Valid && hhash.Valid && hseq.Int64 == c.LastSeq {
			c.LastHash = hhash.String
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

// NewCursorFlag is the flag of audit-read, audit-verify and audit-ack that
// lets a cursor name that does not exist yet start from the beginning of
// the log while other cursors exist.
const NewCursorFlag = "--new-cursor"

// CheckCursorName returns nil if the cursor name may be used: it exists in
// the database, or the database has no cursor at all (a first run), or
// allowNew is set (NewCursorFlag). Otherwise the name is most likely a typo
// and using it would ship the whole log again: the error, with exit code 2,
// names the cursors there are, the closest one ("did you mean"), and
// NewCursorFlag. flag is the flag that gave the name ("--from-cursor",
// "--exporter"), for the message. An empty name is not checked.
func CheckCursorName(ctx context.Context, src CursorSource, flag, name string, allowNew bool) error {
	if name == "" || allowNew {
		return nil
	}
	cs, err := src.Cursors(ctx)
	if err != nil {
		if exitcode.Of(err) == exitcode.Failure {
			err = exitcode.New(exitcode.Database, err)
		}
		return err
	}
	if len(cs) == 0 {
		return nil
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		if c.Exporter == name {
			return nil
		}
		names[i] = c.Exporter
	}
	return exitcode.New(exitcode.Usage, &UnknownCursorError{Flag: flag, Name: name, Have: names})
}

// UnknownCursorError is a cursor name that is not in the database while
// other names are.
type UnknownCursorError struct {
	Flag string   // the flag that gave Name, "" for a positional argument
	Name string   // the name given
	Have []string // the cursors there are, sorted
}

func (e *UnknownCursorError) Error() string {
	var b strings.Builder
	if e.Flag != "" {
		b.WriteString(e.Flag + " ")
	}
	fmt.Fprintf(&b, "%q: no cursor of that name; the database has %s", e.Name, listNames(e.Have, 10))
	if s := Suggest(e.Name, e.Have); s != "" {
		fmt.Fprintf(&b, "; did you mean %q?", s)
	} else {
		b.WriteByte('.')
	}
	if e.Flag != "" {
		fmt.Fprintf(&b, " A new cursor starts at the beginning of the log and ships every record again: if that is what you want, add %s (or create it first: audit-cursor create)", NewCursorFlag)
	}
	return b.String()
}

func listNames(names []string, max int) string {
	q := make([]string, 0, max+1)
	for i, n := range names {
		if i == max {
			q = append(q, fmt.Sprintf("and %d more (audit-cursor list)", len(names)-max))
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	return strings.Join(q, ", ")
}

// Suggest returns the name in have closest to name, or "" if none is close
// enough to be a likely typo: same name but for case, one name containing
// the other ("prod" for "splunk:prod"), or an edit distance of at most a
// third of the name's length (at least 2).
func Suggest(name string, have []string) string {
	best, bestD := "", -1
	limit := max(2, utf8.RuneCountInString(name)/3)
	for _, h := range have {
		d := editDistance(strings.ToLower(name), strings.ToLower(h))
		if d > limit && !strings.Contains(h, name) && !strings.Contains(name, h) {
			continue
		}
		if bestD < 0 || d < bestD {
			best, bestD = h, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// CursorMove is what MoveCursor did.
type CursorMove struct {
	Exporter string
	From     Cursor // the cursor before the move
	To       Cursor // the cursor after it
	// Skipped is the number of records the move skipped (a forward move
	// with skip), 0 for a move back.
	Skipped int64
}

// MoveOptions are the checks of MoveCursor.
type MoveOptions struct {
	// Hash, if set, must be the record_hash of the row at the target seq:
	// the operator's confirmation that the database holds the record they
	// mean (for instance the last one the SIEM has).
	Hash string
	// SkipRecords allows a move forward, past records not shipped: they
	// will never be shipped to this exporter.
	SkipRecords bool
}

// MoveCursor sets exporter's cursor to seq, in one transaction on both
// cursor tables, as CommitCursor would have left them had seq been the last
// record shipped: audit_export_cursor.last_seq = seq and
// auditpipe_cursor_hash.last_hash = the record_hash of the row at seq (""
// for seq 0, the beginning of the log). Declaragent's cursor is a monotonic
// upsert, which cannot go back, so this is an explicit UPDATE.
//
// It refuses (exit code 2) a cursor that does not exist, a seq below 0 or
// past the head, and a move forward unless opt.SkipRecords; it refuses
// (exit code 3) a row whose record_hash is not opt.Hash, or does not match
// its own record_json (an erased row excepted): anchoring verification on a
// row that fails its own hash would hide the tampering.
//
// A running audit-ack for the same exporter moves the cursor forward again
// at its next commit: stop the pipeline first.
func (w *Writer) MoveCursor(ctx context.Context, exporter string, seq int64, opt MoveOptions, now time.Time) (CursorMove, error) {
	if exporter == "" {
		return CursorMove{}, exitcode.Errorf(exitcode.Usage, "move cursor: empty exporter name")
	}
	if seq < 0 {
		return CursorMove{}, exitcode.Errorf(exitcode.Usage, "move cursor %s: seq %d is negative (0 is the beginning of the log)", exporter, seq)
	}
	if opt.Hash != "" && !chain.IsHexHashString(opt.Hash) {
		return CursorMove{}, exitcode.Errorf(exitcode.Usage, "move cursor %s: --hash %q is not 64 lowercase hex digits", exporter, elide.To(opt.Hash, 40))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ms := now.UnixMilli()
	var mv CursorMove
	var refusal error
	err := w.inTx(ctx, func(tx *sql.Tx) error {
		all, err := listCursors(ctx, tx, w.path, w.busy)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(c Cursor) bool { return c.Exporter == exporter })
		if i < 0 {
			refusal = unknownCursor(exporter, all)
			return errRollback
		}
		mv = CursorMove{Exporter: exporter, From: all[i]}
		var head int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit_records`).Scan(&head); err != nil {
			return err
		}
		to := Cursor{Exporter: exporter, LastSeq: seq, UpdatedAt: time.UnixMilli(ms), Found: true}
		switch {
		case seq > head:
			refusal = exitcode.Errorf(exitcode.Usage, "move cursor %s to seq %d: the log ends at seq %d", exporter, seq, head)
			return errRollback
		case seq > mv.From.LastSeq && !opt.SkipRecords:
			refusal = exitcode.Errorf(exitcode.Usage, "move cursor %s forward from seq %d to seq %d: records %s would never be shipped to %s. "+
				"audit-cursor moves cursors back (to ship records again); to skip records on purpose, add --skip-records",
				exporter, mv.From.LastSeq, seq, seqRange(mv.From.LastSeq+1, seq), exporter)
			return errRollback
		}
		if seq > 0 {
			var prev, rec, have string
			err := tx.QueryRowContext(ctx, `SELECT prev_hash, record_json, record_hash FROM audit_records WHERE seq = ?`, seq).Scan(&prev, &rec, &have)
			if errors.Is(err, sql.ErrNoRows) {
				refusal = exitcode.Errorf(exitcode.Usage, "move cursor %s to seq %d: the database has no row with that seq (rows removed?); pick a seq that audit-read --from-seq N --to-seq N shows", exporter, seq)
				return errRollback
			}
			if err != nil {
				return err
			}
			switch {
			case opt.Hash != "" && have != opt.Hash:
				refusal = exitcode.Errorf(exitcode.Verify, "move cursor %s to seq %d: the row there has record_hash %s, not %s as --hash says: "+
					"this database does not hold the record you mean (another database, or rewritten); the cursor is not moved", exporter, seq, have, opt.Hash)
				return errRollback
			case !chain.IsHexHashString(have) || (string(w.hash(nil, prev, []byte(rec))) != have && !isErased(rec)):
				refusal = exitcode.Errorf(exitcode.Verify, "move cursor %s to seq %d: the row there does not match its own record_hash %q: "+
					"tampering evidence (check with audit-read --db %s | audit-verify); the cursor is not moved", exporter, seq, elide.To(have, 40), w.path)
				return errRollback
			}
			to.LastHash = have
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_export_cursor SET last_seq = ?, updated_at = ? WHERE exporter_name = ?`, seq, ms, exporter); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO auditpipe_cursor_hash(exporter_name, last_seq, last_hash, updated_at) VALUES(?, ?, ?, ?)
			ON CONFLICT(exporter_name) DO UPDATE SET last_seq = excluded.last_seq, last_hash = excluded.last_hash, updated_at = excluded.updated_at`,
			exporter, seq, to.LastHash, ms); err != nil {
			return err
		}
		mv.To = to
		if seq > mv.From.LastSeq {
			mv.Skipped = seq - mv.From.LastSeq
		}
		return nil
	})
	if refusal != nil {
		return CursorMove{}, refusal
	}
	if err != nil {
		return CursorMove{}, classify(ctx, w.path, "move cursor", w.busy, err)
	}
	return mv, nil
}

// CreateCursor creates exporter's cursor at seq 0, the beginning of the log
// (nothing shipped yet), so that audit-read, audit-verify and audit-ack
// accept the name without NewCursorFlag. A cursor that exists already is a
// usage error (exit code 2): use MoveCursor to change it.
func (w *Writer) CreateCursor(ctx context.Context, exporter string, now time.Time) (Cursor, error) {
	if exporter == "" {
		return Cursor{}, exitcode.Errorf(exitcode.Usage, "create cursor: empty exporter name")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ms := now.UnixMilli()
	var refusal error
	err := w.inTx(ctx, func(tx *sql.Tx) error {
		all, err := listCursors(ctx, tx, w.path, w.busy)
		if err != nil {
			return err
		}
		if i := slices.IndexFunc(all, func(c Cursor) bool { return c.Exporter == exporter }); i >= 0 {
			refusal = exitcode.Errorf(exitcode.Usage, "create cursor %s: it exists already, at seq %d (audit-cursor move changes it)", exporter, all[i].LastSeq)
			return errRollback
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_export_cursor(exporter_name, last_seq, updated_at) VALUES(?, 0, ?)`, exporter, ms); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO auditpipe_cursor_hash(exporter_name, last_seq, last_hash, updated_at) VALUES(?, 0, '', ?)
			ON CONFLICT(exporter_name) DO UPDATE SET last_seq = 0, last_hash = '', updated_at = excluded.updated_at`, exporter, ms)
		return err
	})
	if refusal != nil {
		return Cursor{}, refusal
	}
	if err != nil {
		return Cursor{}, classify(ctx, w.path, "create cursor", w.busy, err)
	}
	return Cursor{Exporter: exporter, UpdatedAt: time.UnixMilli(ms), Found: true}, nil
}

// DeleteCursor removes exporter's cursor from both cursor tables and
// returns it as it was. A cursor that does not exist is a usage error
// (exit code 2) naming the ones there are.
func (w *Writer) DeleteCursor(ctx context.Context, exporter string) (Cursor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var old Cursor
	var refusal error
	err := w.inTx(ctx, func(tx *sql.Tx) error {
		all, err := listCursors(ctx, tx, w.path, w.busy)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(c Cursor) bool { return c.Exporter == exporter })
		if i < 0 {
			refusal = unknownCursor(exporter, all)
			return errRollback
		}
		old = all[i]
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_export_cursor WHERE exporter_name = ?`, exporter); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM auditpipe_cursor_hash WHERE exporter_name = ?`, exporter)
		return err
	})
	if refusal != nil {
		return Cursor{}, refusal
	}
	if err != nil {
		return Cursor{}, classify(ctx, w.path, "delete cursor", w.busy, err)
	}
	return old, nil
}

func unknownCursor(name string, all []Cursor) error {
	if len(all) == 0 {
		return exitcode.Errorf(exitcode.Usage, "%q: the database has no cursors", name)
	}
	names := make([]string, len(all))
	for i, c := range all {
		names[i] = c.Exporter
	}
	return exitcode.New(exitcode.Usage, &UnknownCursorError{Name: name, Have: names})
}

func seqRange(a, b int64) string {
	if a == b {
		return fmt.Sprintf("seq %d", a)
	}
	return fmt.Sprintf("seq %d..%d (%d records)", a, b, b-a+1)
}

// isErased reports whether record_json is a tombstone (its kind is
// "erased"): Declaragent erases a record by replacing its record_json and
// keeping both hashes, so it cannot match its hash.
func isErased(rec string) bool {
	v, err := fastjson.Parse(rec)
	return err == nil && string(v.GetStringBytes("kind")) == "erased"
}
