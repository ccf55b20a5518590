package auditack

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"
	_ "modernc.org/sqlite"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditsample"
)

// HashAt is the record_hash at seq in db: what a real ack carries. It is
// exported for the external tests (metrics_test.go) of this package.
func HashAt(t *testing.T, db string, seq int64) string {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var h string
	if err := d.QueryRow(`SELECT record_hash FROM audit_records WHERE seq = ?`, seq).Scan(&h); err != nil {
		t.Fatalf("seq %d: %v", seq, err)
	}
	return h
}

// ackLineFor is an ack line with a made-up lastHash (the seq in hex), for
// tests that never commit it.
func ackLineFor(exporter string, first, last int64) string {
	return fmt.Sprintf(`{"ack":{"exporter":%q,"firstSeq":%d,"lastSeq":%d,"lastHash":"%064x","count":%d,"quarantined":[]}}`+"\n",
		exporter, first, last, last, last-first+1)
}

// Bad ack lines are skipped with their line number (they were reported
// without one), a line far over ack.MaxLine is dropped without being held,
// and the good ack before them is committed.
func TestBadAckLinesNamed(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	var events bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", "5"}, nil, &events, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 3*ack.MaxLine)
	first := ackLineFor("x:y", 1, 2)
	first = strings.Replace(first, fmt.Sprintf("%064x", 2), HashAt(t, db, 2), 1) // a real ack's hash
	in := first +                                                                // line 1
		"\xff\xfe garbage\n" + // 2
		`{"ack":{"exporter":"x:y","firstSeq":"3","lastSeq":true}}` + "\n" + // 3
		`{"seq":3,"record":{}}` + "\n" + // 4
		long + "\n" + // 5
		`[1,2,3]` + "\n" // 6
	var stderr bytes.Buffer
	err := Run(ctx, []string{"--db", db, "--exporter", "x:y", "--quiet"}, strings.NewReader(in), io.Discard, &stderr)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	for _, n := range []int{2, 3, 4, 5, 6} {
		if !strings.Contains(stderr.String(), fmt.Sprintf("audit-ack: line %d: skipping", n)) {
			t.Errorf("stderr does not name line %d:\n%s", n, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), strings.Repeat("a", 100)) {
		t.Errorf("stderr echoes the long line")
	}
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var cur int64
	if err := d.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = 'x:y'`).Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if cur != 2 {
		t.Errorf("cursor %d, want 2 (the good ack before the bad lines)", cur)
	}
}

// FuzzAckStream feeds arbitrary bytes to audit-ack's line reader and ack
// parser (everything but the database): no panic, and the cursor it would
// commit is the highest lastSeq among the valid acks of its exporter, a
// bad line never moving it. The committed corpus is in
// testdata/fuzz/FuzzAckStream.
func FuzzAckStream(f *testing.F) {
	for _, s := range []string{
		ackLineFor("x:y", 1, 2),
		ackLineFor("x:y", 1, 2) + ackLineFor("x:y", 3, 9) + ackLineFor("x:y", 1, 4),
		ackLineFor("x:y", 1, 2) + "\xff\xfe\n" + ackLineFor("x:y", 3, 4)[:40],
		`{"ack":{"exporter":"x:y","firstSeq":"3","lastSeq":true,"lastHash":1,"count":"2","quarantined":{}}}` + "\n",
		`{"ack":{"exporter":"x:y","firstSeq":5,"lastSeq":4,"lastHash":"` + strings.Repeat("a", 64) + `","count":0,"quarantined":[]}}` + "\n",
		`{"ack":{"exporter":"x:y","firstSeq":1,"lastSeq":3,"lastHash":"` + strings.Repeat("b", 64) + `","count":3,"quarantined":[2,2,9]}}` + "\r\n",
		"\n\n\r\n",
		"[]\n{}\nnull\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		a := &acker{
			c:         &config{exporter: "x:y"},
			stderr:    io.Discard,
			cursor:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "c"}),
			recordsIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "r"}),
		}
		var p fastjson.Parser
		br := bufio.NewReaderSize(bytes.NewReader(in), 64)
		for num := int64(1); ; num++ {
			line, err := ack.ReadLine(br, 256)
			if err == ack.ErrLineTooLong {
				continue
			}
			if len(line) > 0 && err == nil {
				if terr := a.take(&p, num, line); terr != nil {
					return // an ack for another exporter stops the acker
				}
			}
			if err != nil {
				break
			}
		}
		// What it holds must be the highest valid ack of complete lines.
		var want int64
		var q fastjson.Parser
		lines := bytes.Split(in, []byte("\n"))
		for i, l := range lines {
			if i == len(lines)-1 || len(l)+1 > 256 {
				continue // no \n: partial; or over the bound
			}
			if k, err := ack.Parse(&q, ack.TrimEOL(l)); err == nil && k.LastSeq > want {
				want = k.LastSeq
			}
		}
		if want > 0 && (!a.have || a.lastSeq != want) {
			t.Fatalf("would commit %d (have %v), want %d", a.lastSeq, a.have, want)
		}
		if want == 0 && a.have {
			t.Fatalf("would commit %d from no valid ack", a.lastSeq)
		}
	})
}

// An ack that names a chain (lib/ack: reserved for the Kafka fleet's
// multi-chain consumer) is not one audit-ack can commit: it stops with
// exit 2 naming the line and the chain, and commits nothing of it; the
// good ack before it is committed.
func TestChainAckRefused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	var events bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", "5"}, nil, &events, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	first := strings.Replace(ackLineFor("x:y", 1, 2), fmt.Sprintf("%064x", 2), HashAt(t, db, 2), 1)
	chained := strings.Replace(ackLineFor("x:y", 3, 4), `"exporter":"x:y"`, `"exporter":"x:y","chain":"tenant-a"`, 1)
	chained = strings.Replace(chained, fmt.Sprintf("%064x", 4), HashAt(t, db, 4), 1)
	var stderr bytes.Buffer
	err := Run(ctx, []string{"--db", db, "--exporter", "x:y", "--quiet", "--commit-interval", "0s"}, strings.NewReader(first+chained), io.Discard, &stderr)
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(fmt.Sprint(err), `line 2: ack for chain "tenant-a"`) {
		t.Fatalf("Run: %v (exit %d), want exit 2 naming line 2 and the chain\n%s", err, exitcode.Of(err), stderr.String())
	}
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var cur int64
	if err := d.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = 'x:y'`).Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if cur != 2 {
		t.Errorf("cursor %d, want 2 (the ack before the chained one)", cur)
	}
}

// An ack that names the database's own chain (audit-verify --chain-mark on
// the host labels the batches, so the acks) is committed: the chain is the
// recordHash of seq 1, or --chain-id when given (a database whose first row
// is gone); --chain-id naming another chain refuses it (exit 2).
func TestOwnChainAckCommitted(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		flag    string // --chain-id: "own" = seq 1's hash
		wantErr bool
	}{
		{"the database's chain", "", false},
		{"--chain-id", "own", false},
		{"--chain-id of another chain", "host-b", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "audit.db")
			var events bytes.Buffer
			if err := auditsample.Run(ctx, []string{"--count", "5"}, nil, &events, io.Discard); err != nil {
				t.Fatal(err)
			}
			if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			own := HashAt(t, db, 1)
			line := strings.Replace(ackLineFor("x:y", 1, 4), `"exporter":"x:y"`, `"exporter":"x:y","chain":"`+own+`"`, 1)
			line = strings.Replace(line, fmt.Sprintf("%064x", 4), HashAt(t, db, 4), 1)
			args := []string{"--db", db, "--exporter", "x:y", "--quiet", "--commit-interval", "0s"}
			switch tc.flag {
			case "own":
				args = append(args, "--chain-id", own)
			case "":
			default:
				args = append(args, "--chain-id", tc.flag)
			}
			var stderr bytes.Buffer
			err := Run(ctx, args, strings.NewReader(line), io.Discard, &stderr)
			if tc.wantErr {
				if exitcode.Of(err) != exitcode.Usage || !strings.Contains(fmt.Sprint(err), `this database's chain is "host-b"`) {
					t.Fatalf("Run: %v (exit %d), want exit 2\n%s", err, exitcode.Of(err), stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, stderr.String())
			}
			d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var cur int64
			if err := d.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = 'x:y'`).Scan(&cur); err != nil {
				t.Fatal(err)
			}
			if cur != 4 {
				t.Errorf("cursor %d, want 4", cur)
			}
		})
	}
}
