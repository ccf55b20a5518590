package auditship

import (
	"context"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/vlogs"
)

// TestVictoriaLogsAllKinds ships one chain through the real audit-ship
// stage to a real VictoriaLogs with each kind in turn, routed per tenant,
// reads every row back and re-verifies the chain from what the store
// holds: the HEC event, the bulk document's message and the Datadog
// message are each stored as _msg, byte for byte the record line. The
// acks cover every record. Skipped without the victoria-logs binary (see
// internal/vlogs) and under -short.
func TestVictoriaLogsAllKinds(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	ctx := context.Background()
	t.Setenv("AP_TEST_HEC_TOKEN", "00000000-0000-0000-0000-000000000000")
	t.Setenv("AP_TEST_DD_KEY", "0123456789abcdef0123456789abcdef")
	tenants := []string{"acme", "globex", "_system", "Initech"}
	const n = 240
	for i, c := range []struct {
		kind   string
		args   []string
		framed []string // audit-batch flags, or nil for plain records
		query  string
		field  string // the row field that carries the routed index or tag
		want   func(l line) string
	}{
		{kind: "splunk", args: []string{"--url", vl.URL(), "--token", "env:AP_TEST_HEC_TOKEN", "--source", "run-splunk", "--index", "declaragent_${tenant:id}"},
			query: `source:="run-splunk"`, field: "index", want: func(l line) string {
				return map[string]string{
					"acme": "declaragent_acme", "globex": "declaragent_globex", "_system": "declaragent__system", "Initech": "declaragent_initech-" + h8("Initech")}[l.tenant]
			}},
		{kind: "elastic", args: []string{"--url", vl.URL() + "/insert/elasticsearch", "--index", "declaragent-${tenant:id}-${date:YYYY.MM.DD}"},
			framed: []string{"--siem", "elastic", "--max-count", "50"}, field: "tenantId", want: func(l line) string { return l.tenant }},
		{kind: "datadog", args: []string{"--url", vl.URL(), "--api-key", "env:AP_TEST_DD_KEY", "--tags", "run:dd,tenant:${tenant:id}", "--batch-size", "40"},
			query: `run:="dd"`, field: "tenant", want: func(l line) string {
				return map[string]string{
					"acme": "acme", "globex": "globex", "_system": "_system", "Initech": "initech-" + h8("Initech")}[l.tenant]
			}},
	} {
		t.Run(c.kind, func(t *testing.T) {
			ts0 := int64(1764244800123 + i*10_000_000)
			lines := makeChain(t, n, ts0, tenants...)
			in := ndjsonOf(lines)
			if c.framed != nil {
				in = framed(t, in, c.framed...)
			}
			exporter := c.kind + ":vl"
			stdout, stderr, err := runShip(t, in, append([]string{"--kind", c.kind, "--exporter", exporter, "--acks", "-"}, c.args...)...)
			if err != nil {
				t.Fatalf("audit-ship: %v\n%s", err, stderr)
			}
			checkAcks(t, acksOf(t, stdout), lines, exporter)
			q := c.query
			if q == "" {
				q = `seq:* AND _time:[` + time.UnixMilli(ts0).UTC().Format(time.RFC3339Nano) + `, ` +
					time.UnixMilli(ts0+n-1).UTC().Format(time.RFC3339Nano) + `]`
			}
			if _, err := vl.WaitCount(ctx, q, n, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			rows, err := vl.Query(ctx, q+` | sort by (_time)`)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != n {
				t.Fatalf("%d rows, want exactly %d", len(rows), n)
			}
			msgs := make([]string, n)
			for j, row := range rows {
				l := lines[j]
				if row["_msg"] != l.text {
					t.Fatalf("row %d: _msg is not the record line:\n got %q\nwant %q", j, row["_msg"], l.text)
				}
				if got, want := row[c.field], c.want(l); got != want {
					t.Fatalf("row %d (tenant %q): %s = %q, want %q", j, l.tenant, c.field, got, want)
				}
				if tm, err := time.Parse(time.RFC3339Nano, row["_time"]); err != nil || tm.UnixMilli() != l.ts {
					t.Fatalf("row %d: _time %s, want ts %d", j, row["_time"], l.ts)
				}
				msgs[j] = row["_msg"]
			}
			reverify(t, msgs)
		})
	}
}
