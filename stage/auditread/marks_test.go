package auditread_test

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/auditpipe/auditpipe/stage/auditread"
)

// Issue 12 items 1b and 3c: under --follow with a filter, the rows left
// out at the head of a quiet log are written as a skip mark once audit-read
// is caught up, so a break among them reaches audit-verify now, not when
// the next kept row is committed (which may be never).
func TestFollowFilterHoleWrittenWhenCaughtUp(t *testing.T) {
	db := newDB(t, 200)
	sdb, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	// Keep one tenant; the rows after its last one are another tenant's.
	var keep string
	var victim, last int64 = 200, 0
	if err := sdb.QueryRow(`SELECT tenant_id, max(seq) FROM audit_records WHERE tenant_id <> (SELECT tenant_id FROM audit_records WHERE seq = 200) GROUP BY tenant_id ORDER BY 2 DESC LIMIT 1`).Scan(&keep, &last); err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec(`UPDATE audit_records SET record_json = replace(record_json, '"actor":"agent:', '"actor":"agent:evil-') WHERE seq = ?`, victim); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	var stdout, stderr syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- auditread.Run(ctx, []string{"--db", db, "--follow", "--poll", "10ms", "--tenant", keep, "--quiet"}, nil, &stdout, &stderr)
	}()
	want := regexp.MustCompile(`\{"mark":\{"type":"skip","fromSeq":` + itoa(last+1) + `,"toSeq":200,"hash":"[0-9a-f]{64}","verified":[0-9]+,"tombstones":0,"breaks":1,"breakSeq":` + itoa(victim) + `,"breakReason":"hash_mismatch"`)
	deadline := time.Now().Add(5 * time.Second)
	for !want.MatchString(stdout.String()) {
		select {
		case err := <-done:
			t.Fatalf("audit-read exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no skip mark for seq %d..200 with the break at %d within 5 s while following; stdout ends:\n%s", last+1, victim, tail(stdout.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func tail(s string) string {
	if len(s) > 600 {
		return s[len(s)-600:]
	}
	return s
}
