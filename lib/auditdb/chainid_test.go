package auditdb

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestChainID(t *testing.T) {
	rows := chainRows(5, 1764244800000, []string{"acme"}, []string{"tool_call"}, 0)
	tests := []struct {
		name    string
		rows    []testRow
		want    string
		found   bool
		wantErr string // substring; ErrNoGenesis expected when set
	}{
		{name: "empty database", rows: nil},
		{name: "whole chain", rows: rows, want: rows[0].Hash, found: true},
		{name: "genesis only", rows: rows[:1], want: rows[0].Hash, found: true},
		{name: "first row removed", rows: rows[1:], wantErr: "first row is seq 2"},
		{name: "first rows removed", rows: rows[3:], wantErr: "give the id the chain was shipped under before with --chain-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempDB(t)
			cli(t, path, declaragentSchema)
			if len(tt.rows) > 0 {
				insertRows(t, path, tt.rows)
			}
			db := openReader(t, path, ReaderOptions{})
			id, found, err := db.ChainID(context.Background())
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrNoGenesis) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ChainID = %q, %v, %v; want an ErrNoGenesis error containing %q", id, found, err, tt.wantErr)
				}
				return
			}
			if err != nil || id != tt.want || found != tt.found {
				t.Fatalf("ChainID = %q, %v, %v; want %q, %v", id, found, err, tt.want, tt.found)
			}
		})
	}
}

func TestChainIDStableAcrossAppends(t *testing.T) {
	rows := chainRows(6, 1764244800000, []string{"acme"}, []string{"tool_call"}, 0)
	path := tempDB(t)
	insertRows(t, path, rows[:2])
	db := openReader(t, path, ReaderOptions{})
	first, _, err := db.ChainID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	insertRows(t, path, rows[2:])
	again, _, err := db.ChainID(context.Background())
	if err != nil || again != first || first != rows[0].Hash {
		t.Fatalf("chain id %q then %q (%v), want %q both times", first, again, err, rows[0].Hash)
	}
}

func TestIsChainID(t *testing.T) {
	for s, want := range map[string]bool{
		strings.Repeat("a", 64): true, "host-17.prod:audit": true, "A_b.c": true,
		"": false, "has space": false, "slash/x": false, strings.Repeat("a", 129): false, "é": false,
	} {
		if got := IsChainID(s); got != want {
			t.Errorf("IsChainID(%q) = %v, want %v", s, got, want)
		}
	}
}
