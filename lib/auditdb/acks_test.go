package auditdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// CommitAcks refuses an ack that skips rows the exporter ships (issue 12
// item 2c: a forged ack starting past cursor+1 moved the cursor over 99
// records never shipped), and takes the gaps a filter or a deliberate
// start makes.
func TestCommitAcksGaps(t *testing.T) {
	ctx := context.Background()
	// 200 rows: odd seqs of tenant acme, even seqs of tenant globex; seqs
	// 1..100 of kind a, 101..200 of kind b.
	path := tempDB(t)
	app := openWriter(t, path, WriterOptions{Create: true})
	var evs [][]byte
	for i := 1; i <= 200; i++ {
		tenant, kind := "acme", "a"
		if i%2 == 0 {
			tenant = "globex"
		}
		if i > 100 {
			kind = "b"
		}
		evs = append(evs, fmt.Appendf(nil, `{"kind":%q,"tenantId":%q,"i":%d}`, kind, tenant, i))
	}
	if _, _, err := app.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	db := openReader(t, path, ReaderOptions{})
	h := func(seq int64) string { return mustHash(t, db, seq) }
	span := func(first, last, count int64) AckSpan {
		return AckSpan{FirstSeq: first, LastSeq: last, LastHash: h(last), Count: count}
	}
	// since is an ack of a shipper that says what it delivered in its run.
	since := func(a AckSpan, since, count int64) AckSpan { a.Since, a.SinceCount = since, count; return a }
	acme := Selection{Tenants: []string{"acme"}}
	for _, c := range []struct {
		name    string
		cursor  int64 // committed first (0: none)
		acks    []AckSpan
		sel     Selection
		want    int64  // the cursor after
		code    int    // 0: no error
		message string // in the error
	}{
		{name: "contiguous", acks: []AckSpan{span(1, 50, 50), span(51, 100, 50)}, want: 100},
		{name: "contiguous from cursor", cursor: 100, acks: []AckSpan{span(101, 150, 50)}, want: 150},
		{name: "overlap and replay", cursor: 100, acks: []AckSpan{span(51, 120, 70), span(1, 10, 10)}, want: 120},
		{name: "forged gap after cursor", cursor: 1, acks: []AckSpan{span(51, 60, 10)}, want: 1, code: 3,
			message: "covers seqs 51..60 (10 records) but the cursor is at seq 1: 49 rows it ships (no filter) between them, seqs 2..50, were never acked; the cursor is not moved over them (it stays at 1)"},
		{name: "gap after good acks: prefix committed", acks: []AckSpan{span(1, 50, 50), span(60, 70, 11)}, want: 50, code: 3,
			message: "but the cursor is at seq 50: 9 rows it ships (no filter) between them, seqs 51..59"},
		{name: "short count inside", cursor: 100, acks: []AckSpan{span(101, 200, 10)}, want: 100, code: 2,
			message: "says its pipeline read a filtered stream, but this audit-ack has no filter"},
		{name: "first ack past genesis", acks: []AckSpan{span(51, 60, 10)}, want: 0, code: 2,
			message: "first for this exporter (no cursor yet): 50 rows it ships (no filter) between them, seqs 1..50, were never acked; the cursor is not moved over them (it stays at 0). This is the exporter's first ack: if its pipeline started at seq 51 on purpose (audit-read --from-seq 51), give audit-ack --from-seq 51 too"},
		{name: "deliberate start", acks: []AckSpan{span(51, 60, 10)}, sel: Selection{FromSeq: 51}, want: 60},
		{name: "deliberate start after a cursor", cursor: 10, acks: []AckSpan{span(51, 60, 10)}, sel: Selection{FromSeq: 51}, want: 60},
		{name: "start is no licence past it", cursor: 10, acks: []AckSpan{span(61, 70, 10)}, sel: Selection{FromSeq: 51}, want: 10, code: 3,
			message: "10 rows it ships (--from-seq 51) between them, seqs 51..60"},
		// A per-tenant exporter: acks of acme rows only (one record each).
		{name: "tenant filter", cursor: 0, acks: []AckSpan{span(1, 1, 1), span(3, 3, 1), span(5, 9, 3)}, sel: acme, want: 9},
		{name: "tenant filter, acme row skipped", cursor: 1, acks: []AckSpan{span(5, 5, 1)}, sel: acme, want: 1, code: 3,
			message: "1 rows it ships (--tenant acme) between them, seqs 3..3"},
		{name: "tenant filter, short count", cursor: 1, acks: []AckSpan{span(3, 9, 2)}, sel: acme, want: 1, code: 3,
			message: "at least 2 of them (first 3, last 9) were never shipped"},
		{name: "kind filter", cursor: 0, acks: []AckSpan{span(101, 110, 10)}, sel: Selection{Kinds: []string{"b"}}, want: 110},
		{name: "tenant pipeline, acker without the filter", cursor: 1, acks: []AckSpan{span(3, 3, 1)}, want: 1, code: 2,
			message: "The acked rows are all of tenant_id acme and the skipped ones of others: the look of a pipeline read with audit-read --tenant"},
		{name: "kind pipeline, acker without the filter", cursor: 1, acks: []AckSpan{span(101, 110, 10)}, want: 1, code: 2,
			message: "give audit-ack the same --kind"},
		// An acker killed -9 loses the acks it read and did not commit
		// (31..60, delivered): the restarted acker reads 61.. from the
		// same shipper, whose "since" says its run delivered all from 1.
		{name: "lost acks, shipper's run covers them", cursor: 30, acks: []AckSpan{since(span(61, 80, 20), 1, 80), since(span(81, 90, 10), 1, 90)}, want: 90},
		{name: "lost acks, run starts at cursor+1", cursor: 30, acks: []AckSpan{since(span(61, 80, 20), 31, 50)}, want: 80},
		{name: "no cursor yet, run from genesis", acks: []AckSpan{since(span(61, 80, 20), 1, 80)}, want: 80},
		// A restarted shipper re-sends from an older cursor read.
		{name: "since behind the cursor", cursor: 50, acks: []AckSpan{since(span(41, 60, 20), 41, 20)}, want: 60},
		{name: "since behind the cursor, lost acks", cursor: 50, acks: []AckSpan{since(span(71, 80, 10), 21, 60)}, want: 80},
		// "since" excuses nothing its run did not cover.
		{name: "since past cursor+1", cursor: 30, acks: []AckSpan{since(span(61, 80, 20), 41, 40)}, want: 30, code: 3,
			message: "but the cursor is at seq 30: 10 rows it ships (no filter) between them, seqs 31..40, were never acked, and its shipper's run began after them (at seq 41, its \"since\")"},
		{name: "since count short", cursor: 30, acks: []AckSpan{since(span(61, 80, 20), 1, 70)}, want: 30, code: 2,
			message: "its shipper says it delivered 70 records from seq 1 to 80 in its run (\"since\", \"sinceCount\"), but 80 rows of those seqs that it ships (no filter) are in the database, so at least 10 of them were never shipped"},
		{name: "since count short, tenant filter", cursor: 1, acks: []AckSpan{since(span(11, 19, 5), 3, 8)}, sel: acme, want: 1, code: 3,
			message: "at least 1 of them were never shipped"},
		{name: "prefix committed before a bad since", acks: []AckSpan{span(1, 30, 30), since(span(61, 80, 20), 41, 40)}, want: 30, code: 3,
			message: "seqs 31..40, were never acked"},
		// With a filter: the shipper's run starts at the first row of
		// the selection after the cursor, rows outside it lie between.
		{name: "tenant filter, lost acks, since past a foreign row", cursor: 1, acks: []AckSpan{since(span(11, 19, 5), 3, 9)}, sel: acme, want: 19},
		{name: "tenant filter, since past an acme row", cursor: 1, acks: []AckSpan{since(span(11, 19, 5), 5, 8)}, sel: acme, want: 1, code: 3,
			message: "1 rows it ships (--tenant acme) between them, seqs 3..3, were never acked, and its shipper's run began after them (at seq 5"},
		{name: "from-seq and since", cursor: 10, acks: []AckSpan{since(span(71, 80, 10), 51, 30)}, sel: Selection{FromSeq: 51}, want: 80},
		// An ack without since is refused as before (the forged ack).
		{name: "no since, lost acks refused", cursor: 30, acks: []AckSpan{span(61, 80, 20)}, want: 30, code: 3,
			message: "30 rows it ships (no filter) between them, seqs 31..60, were never acked"},
		{name: "rows that do not exist are no gap", cursor: 200, acks: []AckSpan{span(200, 200, 1)}, want: 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := strings.ReplaceAll(c.name, " ", "_")
			if c.cursor > 0 {
				if _, err := app.CommitCursor(ctx, ex, c.cursor, h(c.cursor), time.UnixMilli(1)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := app.CommitAcks(ctx, ex, c.acks, c.sel, time.UnixMilli(2))
			if exitcode.Of(err) != c.code {
				t.Fatalf("err %v (exit %d), want exit %d", err, exitcode.Of(err), c.code)
			}
			if c.code != 0 {
				var ge *AckGapError
				if !errors.As(err, &ge) {
					t.Fatalf("err %T %v, want an AckGapError", err, err)
				}
				if !strings.Contains(err.Error(), c.message) {
					t.Errorf("message:\n%v\nwant in it:\n%s", err, c.message)
				}
			}
			cur, err := db.Cursor(ctx, ex)
			if err != nil {
				t.Fatal(err)
			}
			if cur.LastSeq != c.want || got != c.want {
				t.Errorf("cursor %d (returned %d), want %d", cur.LastSeq, got, c.want)
			}
			if c.want > 0 && cur.LastHash != h(c.want) {
				t.Errorf("cursor hash %s, want the row's", cur.LastHash)
			}
		})
	}
}

// The hash check of CommitCursor holds for CommitAcks: a wrong hash moves
// nothing, even when the acks before it were good.
func TestCommitAcksHash(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	app := openWriter(t, path, WriterOptions{Create: true})
	if _, _, err := app.Append(ctx, [][]byte{[]byte(`{"kind":"k"}`), []byte(`{"kind":"k"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	db := openReader(t, path, ReaderOptions{})
	_, err := app.CommitAcks(ctx, "e:x", []AckSpan{{FirstSeq: 1, LastSeq: 1, LastHash: mustHash(t, db, 1), Count: 1}, {FirstSeq: 2, LastSeq: 2, LastHash: strings.Repeat("e", 64), Count: 1}}, Selection{}, time.Now())
	var mm *AckMismatchError
	if !errors.As(err, &mm) || exitcode.Of(err) != exitcode.Verify {
		t.Fatalf("err %v, want an AckMismatchError with exit 3", err)
	}
	if cur, _ := db.Cursor(ctx, "e:x"); cur.Found {
		t.Errorf("cursor moved to %d", cur.LastSeq)
	}
}
