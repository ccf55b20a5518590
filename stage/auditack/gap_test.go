package auditack

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditsample"
)

func sampleDB(t *testing.T, n int) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", fmt.Sprint(n)}, nil, &events, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	return db
}

// realAck is an ack line carrying the real hash of its last seq.
func realAck(t *testing.T, db, exporter string, first, last, count int64) string {
	return fmt.Sprintf(`{"ack":{"exporter":%q,"firstSeq":%d,"lastSeq":%d,"lastHash":%q,"count":%d,"quarantined":[]}}`+"\n",
		exporter, first, last, HashAt(t, db, last), count)
}

func cursorOf(t *testing.T, db, exporter string) int64 {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var cur int64
	err = d.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?`, exporter).Scan(&cur)
	if err == sql.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

// Issue 12 item 2c: a forged ack whose firstSeq is past cursor+1 moved the
// cursor over 99 records never shipped. It is refused with exit 3, the
// cursor stays where the good acks put it, and the message names both
// seqs and the rows never acked. The gaps a filter or a deliberate start
// makes are taken when audit-ack is given the same filter.
func TestGappedAckRefused(t *testing.T) {
	db := sampleDB(t, 300)
	const ex = "file:x"
	in := realAck(t, db, ex, 1, 100, 100) + realAck(t, db, ex, 200, 210, 11) + realAck(t, db, ex, 211, 220, 10)
	var stderr bytes.Buffer
	err := Run(context.Background(), []string{"--db", db, "--exporter", ex}, strings.NewReader(in), io.Discard, &stderr)
	if exitcode.Of(err) != exitcode.Verify {
		t.Fatalf("err %v (exit %d), want exit 3\n%s", err, exitcode.Of(err), stderr.String())
	}
	for _, want := range []string{"covers seqs 200..210", "cursor is at seq 100", "seqs 101..199, were never acked", "not moved"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if cur := cursorOf(t, db, ex); cur != 100 {
		t.Errorf("cursor %d, want 100 (the good ack, and nothing past the gap)", cur)
	}
	if !strings.Contains(stderr.String(), "cursor at seq 100") {
		t.Errorf("summary:\n%s", stderr.String())
	}
}

func TestFilteredAcks(t *testing.T) {
	db := sampleDB(t, 300)
	// The seqs of tenant acme, as audit-read --tenant acme would ship them.
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var acme []int64
	rows, err := d.Query(`SELECT seq FROM audit_records WHERE tenant_id = 'acme' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s int64
		rows.Scan(&s)
		acme = append(acme, s)
	}
	rows.Close()
	d.Close()
	if len(acme) < 20 {
		t.Fatalf("only %d acme rows", len(acme))
	}
	// Batches of 5 acme records each.
	var in strings.Builder
	for i := 0; i+5 <= len(acme); i += 5 {
		in.WriteString(realAck(t, db, "file:acme", acme[i], acme[i+4], 5))
	}
	last := acme[len(acme)/5*5-1]
	ctx := context.Background()

	// Without the filter: refused, as a configuration mistake (exit 2).
	err = Run(ctx, []string{"--db", db, "--exporter", "file:acme", "--quiet"}, strings.NewReader(in.String()), io.Discard, io.Discard)
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--tenant") {
		t.Fatalf("no filter: err %v (exit %d), want exit 2 naming --tenant", err, exitcode.Of(err))
	}
	// With it: every ack taken.
	var stderr bytes.Buffer
	err = Run(ctx, []string{"--db", db, "--exporter", "file:acme", "--tenant", "acme"}, strings.NewReader(in.String()), io.Discard, &stderr)
	if err != nil {
		t.Fatalf("--tenant acme: %v\n%s", err, stderr.String())
	}
	if cur := cursorOf(t, db, "file:acme"); cur != last {
		t.Errorf("cursor %d, want %d", cur, last)
	}
	// The wrong tenant's filter does not license skipping acme rows.
	ack := realAck(t, db, "file:g", acme[0], acme[0], 1) + realAck(t, db, "file:g", acme[2], acme[2], 1)
	err = Run(ctx, []string{"--db", db, "--exporter", "file:g", "--new-cursor", "--tenant", "acme", "--quiet"}, strings.NewReader(ack), io.Discard, io.Discard)
	if exitcode.Of(err) != exitcode.Verify || !strings.Contains(err.Error(), fmt.Sprintf("seqs %d..%d, were never acked", acme[1], acme[1])) {
		t.Errorf("skipped acme row: err %v (exit %d), want exit 3 naming seq %d", err, exitcode.Of(err), acme[1])
	}

	// A pipeline started on purpose at seq 101 (audit-read --from-seq 101).
	ack = realAck(t, db, "file:late", 101, 150, 50)
	err = Run(ctx, []string{"--db", db, "--exporter", "file:late", "--new-cursor", "--quiet"}, strings.NewReader(ack), io.Discard, io.Discard)
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "give audit-ack --from-seq 101") {
		t.Errorf("first ack at 101 without --from-seq: err %v (exit %d), want exit 2 naming --from-seq 101", err, exitcode.Of(err))
	}
	if err := Run(ctx, []string{"--db", db, "--exporter", "file:late", "--from-seq", "101", "--new-cursor", "--quiet"}, strings.NewReader(ack), io.Discard, io.Discard); err != nil {
		t.Errorf("--from-seq 101: %v", err)
	}
	if cur := cursorOf(t, db, "file:late"); cur != 150 {
		t.Errorf("cursor %d, want 150", cur)
	}
}
