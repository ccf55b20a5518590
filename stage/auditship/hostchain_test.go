package auditship

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/stage/auditack"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// TestHostChainMarkLabels: a single host's pipeline with
// audit-verify --chain-mark, read from genesis, labels every event and
// every ack with the chain id (the recordHash of seq 1), and audit-ack
// commits those acks: they name its database's own chain.
func TestHostChainMarkLabels(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, read, verified, stderr bytes.Buffer
	if err := auditsample.Run(ctx, []string{"--count", "30"}, nil, &events, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := auditread.Run(ctx, []string{"--db", db, "--quiet"}, nil, &read, &stderr); err != nil {
		t.Fatalf("audit-read: %v\n%s", err, stderr.String())
	}
	if err := auditverify.Run(ctx, []string{"--chain-mark", "--quiet"}, &read, &verified, &stderr); err != nil {
		t.Fatalf("audit-verify: %v\n%s", err, stderr.String())
	}
	first, _, _ := strings.Cut(verified.String(), "\n")
	m, err := chain.ParseMark([]byte(first))
	if err != nil || m.Type != chain.MarkChain {
		t.Fatalf("audit-verify --chain-mark from genesis wrote %q first (%v), want a chain mark", first, err)
	}
	id := m.Chain
	f := esfake.New(esfake.Options{})
	t.Cleanup(f.Close)
	stdout, errs, err := runShip(t, verified.Bytes(), "--kind", "elastic", "--url", f.URL, "--index", "audit", "--exporter", "elastic:host", "--acks", "-", "--quiet", "--batch-size", "7")
	if err != nil {
		t.Fatalf("audit-ship: %v\n%s", err, errs)
	}
	acks := acksOf(t, stdout)
	if len(acks) == 0 {
		t.Fatal("no ack")
	}
	for _, a := range acks {
		if a.Chain != id {
			t.Fatalf("ack %+v does not name chain %s", a, id)
		}
	}
	docs := f.Docs()
	if len(docs) != 30 {
		t.Fatalf("%d documents, want 30", len(docs))
	}
	for _, d := range docs {
		if !strings.Contains(d.Source, `"chain":"`+id+`"`) {
			t.Fatalf("document not labelled with chain %s: %s", id, d.Source)
		}
	}
	stderr.Reset()
	if err := auditack.Run(ctx, []string{"--db", db, "--exporter", "elastic:host", "--quiet"}, strings.NewReader(stdout), io.Discard, &stderr); err != nil {
		t.Fatalf("audit-ack: %v\n%s", err, stderr.String())
	}
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var cur int64
	if err := d.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = 'elastic:host'`).Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if cur != 30 {
		t.Fatalf("cursor %d, want 30", cur)
	}
}
