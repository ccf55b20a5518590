//go:build memory.counters

package auditdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"modernc.org/libc"
)

// Scanning leaks no C memory: statements, strings and TLS are freed on
// every path. libc counts its allocations only when built with the
// memory.counters tag, so this test exists only with it:
// go test -tags memory.counters -run TestScanNoLeak ./lib/auditdb
// (scripts/test.sh runs it so). Without the tag it would only skip.
func TestScanNoLeak(t *testing.T) {
	if libc.MemStat().Allocs == 0 {
		t.Fatal("libc allocation counters off although built with -tags memory.counters")
	}
	path := tempDB(t)
	insertRows(t, path, chainRows(300, 1, []string{"a", "b"}, []string{"k"}, 100))
	db := openReader(t, path, ReaderOptions{ChunkRows: 7})
	ctx := context.Background()
	boom := errors.New("boom")
	round := func() {
		collect(t, db, Filter{Tenants: []string{"b"}, Since: time.UnixMilli(5000)})
		db.Scan(ctx, Filter{}, func(r *Row) error { // an error from fn mid-chunk
			if r.Seq == 20 {
				return boom
			}
			return nil
		})
		// Two at once: the second opens a connection of its own.
		db.Scan(ctx, Filter{ToSeq: 10}, func(*Row) error {
			collect(t, db, Filter{FromSeq: 290})
			return nil
		})
		fctx, cancel := context.WithCancel(ctx)
		db.Follow(fctx, Filter{}, time.Millisecond, func(r *Row) error {
			if r.Seq == 300 {
				cancel()
			}
			return nil
		})
		cancel()
	}
	round()
	before := libc.MemStat()
	for range 50 {
		round()
	}
	after := libc.MemStat()
	t.Logf("libc before %+v, after %+v", before, after)
	if after.Allocs > before.Allocs || after.Bytes > before.Bytes+64<<10 {
		t.Errorf("C memory grew over 50 rounds: %+v -> %+v", before, after)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	busyConns.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d connections left registered after Close", n)
	}
}
