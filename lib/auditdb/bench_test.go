package auditdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkScan reads 200k rows of about 500 bytes of record_json; one op
// is a full scan. PERF.md: modernc sequential read is about 476k rows/s.
func BenchmarkScan(b *testing.B) {
	const n = 200000
	path := b.TempDir() + "/audit.db"
	rows := chainRows(n, 1764244800000, []string{"acme", "globex", "initech", "_system"},
		[]string{"tool_call", "auth_check", "policy_decision"}, 420)
	if l := len(rows[0].Rec); l < 480 || l > 520 {
		b.Fatalf("record is %d bytes", l)
	}
	insertRows(b, path, rows)
	ctx := context.Background()
	db := openReader(b, path, ReaderOptions{})

	run := func(b *testing.B, f Filter, want int, fn func(*Row) error) {
		b.ReportAllocs()
		for b.Loop() {
			got := 0
			if _, err := db.Scan(ctx, f, func(r *Row) error { got++; return fn(r) }); err != nil {
				b.Fatal(err)
			}
			if got != want {
				b.Fatalf("%d rows, want %d", got, want)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	// The baseline: one plain query through database/sql, no chunks, no
	// buffering; what PERF.md's figure measures. Scan read its chunks this
	// way until it moved to SQLite's C API (capiConn), and was slower than
	// this floor; "rows" against "raw-driver" is the gain.
	b.Run("raw-driver", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs, err := db.db.QueryContext(ctx, `SELECT `+rowColumns+` FROM audit_records ORDER BY seq`)
			if err != nil {
				b.Fatal(err)
			}
			var r Row
			var rec []byte
			got := 0
			for rs.Next() {
				if err := rs.Scan(&r.Seq, &r.TS, &r.TenantID, &r.Kind, (*sql.RawBytes)(&rec), &r.PrevHash, &r.RecordHash); err != nil {
					b.Fatal(err)
				}
				got++
			}
			if err := rs.Close(); err != nil || got != n {
				b.Fatal(err, got)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("rows", func(b *testing.B) {
		run(b, Filter{}, n, func(*Row) error { return nil })
	})
	b.Run("lines", func(b *testing.B) { // audit-read's hot path
		buf := make([]byte, 0, 4096)
		var bytes int64
		run(b, Filter{}, n, func(r *Row) error {
			buf = AppendLine(buf[:0], r)
			bytes += int64(len(buf))
			return nil
		})
		b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/1e6, "MB/s")
	})
	b.Run("rows-mmap", func(b *testing.B) {
		mdb := openReader(b, path, ReaderOptions{MmapSize: 1 << 30})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mdb.Scan(ctx, Filter{}, func(*Row) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("tenant-filter", func(b *testing.B) { // examines every row, delivers a quarter
		run(b, Filter{Tenants: []string{"globex"}}, n/4, func(*Row) error { return nil })
	})
}

// BenchmarkAppend appends events of about 500 bytes, canonicalising and
// hashing each, committing (synchronous=FULL) once per batch.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			path := b.TempDir() + "/audit.db"
			w := openWriter(b, path, WriterOptions{Create: true})
			ctx := context.Background()
			events := make([][]byte, batch)
			for i := range events {
				events[i] = fmt.Appendf(nil, `{"tenantId":"acme","kind":"tool_call","actor":"agent:orders","tool":"tool_%d","decision":"allow","durationMs":%d,"detail":{"z":[3,{"b":1,"a":2}],"pad":%q}}`,
					i, i, strings.Repeat("x", 330))
			}
			if l := len(events[0]); l < 450 || l > 550 {
				b.Fatalf("event is %d bytes", l)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := w.Append(ctx, events, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkCommitCursor(b *testing.B) {
	path := b.TempDir() + "/audit.db"
	w := openWriter(b, path, WriterOptions{Create: true})
	ctx := context.Background()
	h := strings.Repeat("a", 64)
	seq := int64(0)
	for b.Loop() {
		seq++
		if _, err := w.CommitCursor(ctx, "splunk:default", seq, h, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendLine(b *testing.B) {
	r := &Row{Seq: 1764244800, TS: 1764244800123, TenantID: "acme", Kind: "tool_call",
		RecordJSON: []byte(`{"kind":"tool_call","pad":"` + strings.Repeat("x", 460) + `"}`),
		PrevHash:   strings.Repeat("a", 64), RecordHash: strings.Repeat("b", 64)}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendLine(buf[:0], r)
	}
	b.SetBytes(int64(len(buf)))
}
