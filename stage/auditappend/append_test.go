package auditappend

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// A bad line stops the run with exit 4 naming it, and every good event
// before it is appended, even those of the same transaction (Append is all
// or nothing; the chaos suite's bad-input table found them rolled back).
func TestBadLineKeepsTheGoodOnesBefore(t *testing.T) {
	for _, tc := range []struct {
		name, bad, want string
	}{
		{"not an object", `[1,2,3]`, "line 3: event is not a JSON object"},
		{"kind not a string", `{"kind":2}`, "line 3: event kind is number"},
		{"no kind", `{"tenantId":"acme"}`, "line 3: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "a.db")
			in := `{"kind":"tool_call","tenantId":"acme","n":1}` + "\n" +
				`{"kind":"tool_call","tenantId":"acme","n":2}` + "\n" +
				tc.bad + "\n" +
				`{"kind":"tool_call","tenantId":"acme","n":4}` + "\n"
			var stderr bytes.Buffer
			err := Run(context.Background(), []string{"--db", db, "--quiet"}, strings.NewReader(in), &bytes.Buffer{}, &stderr)
			if code := exitcode.Of(err); code != exitcode.Input {
				t.Fatalf("exit code %d (%v), want 4", code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the line (want %q)", err, tc.want)
			}
			if n := count(t, db); n != 2 {
				t.Errorf("%d records appended, want the 2 good ones before the bad line", n)
			}
		})
	}
}

func count(t *testing.T, path string) int {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	if err := d.QueryRow(`SELECT COUNT(*) FROM audit_records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
