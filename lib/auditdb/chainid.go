package auditdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/auditpipe/auditpipe/lib/chain"
)

// ErrNoGenesis is the kind of ChainID's error when the database's first row
// is not the chain's first record (seq 1 with an empty prev_hash): the rows
// before it were removed, so the chain's id cannot be read from the file.
var ErrNoGenesis = errors.New("the chain's first record is not in the database")

// ChainID returns the id of the database's chain (docs/contract.md section
// 5): the record_hash of its first record, the row at seq 1 whose prev_hash
// is "" (the genesis). It is the same on every read, on every host and in
// every copy of the file, and needs no configuration. found is false when
// the database holds no row yet (the id exists from the first row on).
//
// One query on the primary key. When the first row is not the genesis (a
// pruned or truncated database) the error wraps ErrNoGenesis, names the
// first row and the fix: give the id explicitly (--chain-id).
func (db *DB) ChainID(ctx context.Context) (id string, found bool, err error) {
	var (
		seq        int64
		prev, hash string
	)
	err = db.db.QueryRowContext(ctx, `SELECT seq, prev_hash, record_hash FROM audit_records ORDER BY seq LIMIT 1`).Scan(&seq, &prev, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify(ctx, db.path, "read chain id", db.busy, err)
	}
	if seq != 1 || prev != "" {
		return "", false, fmt.Errorf("%s: %w: its first row is seq %d (prevHash %.12s…), not seq 1 with an empty prevHash, so the chain id (the first record's recordHash) cannot be read from it; give the id the chain was shipped under before with --chain-id (the \"chain\" field of its records in Kafka or the SIEM), or a new stable name for it",
			db.path, ErrNoGenesis, seq, prev)
	}
	if !IsChainID(hash) {
		return "", false, fmt.Errorf("%s: the first record's record_hash %q is not 64 lowercase hex: not a chain id; give --chain-id", db.path, hash)
	}
	return hash, true, nil
}

// IsChainID reports whether s is usable as a chain id (chain.IsChainID:
// 1..128 of A-Z a-z 0-9 . _ : -; a recordHash is one).
func IsChainID(s string) bool { return chain.IsChainID(s) }
