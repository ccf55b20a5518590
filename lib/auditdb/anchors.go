package auditdb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// ExportersAt returns the exporters whose committed cursor is at seq, in
// name order (none if there is no cursor table). audit-verify uses it to
// tell an input that starts after another exporter's cursor (a
// configuration mistake) from one that skipped records.
func (db *DB) ExportersAt(ctx context.Context, seq int64) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT exporter_name FROM audit_export_cursor WHERE last_seq = ? ORDER BY exporter_name`, seq)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, classify(ctx, db.path, "read cursors", db.busy, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, classify(ctx, db.path, "read cursors", db.busy, err)
		}
		names = append(names, n)
	}
	return names, classify(ctx, db.path, "read cursors", db.busy, rows.Err())
}

// FirstSeqFrom returns the lowest seq whose ts is at or after ms (found is
// false if none). audit-read --since starts there and anchors on the row
// before, instead of checking the whole prefix: every row before it has an
// earlier ts. A scan in seq order that stops at the first match (there is
// no index on ts alone), in SQLite, without a row leaving the database.
func (db *DB) FirstSeqFrom(ctx context.Context, ms int64) (seq int64, found bool, err error) {
	err = db.db.QueryRowContext(ctx, `SELECT seq FROM audit_records WHERE ts >= ? ORDER BY seq LIMIT 1`, ms).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, classify(ctx, db.path, "find --since", db.busy, err)
	}
	return seq, true, nil
}

// LastSeqBefore returns the highest seq whose ts is before ms (found is
// false if none): the end of a drain with --until, past which every row has
// a later ts.
func (db *DB) LastSeqBefore(ctx context.Context, ms int64) (seq int64, found bool, err error) {
	err = db.db.QueryRowContext(ctx, `SELECT seq FROM audit_records WHERE ts < ? ORDER BY seq DESC LIMIT 1`, ms).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, classify(ctx, db.path, "find --until", db.busy, err)
	}
	return seq, true, nil
}
