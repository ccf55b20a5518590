package auditdb

import (
	"context"
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
