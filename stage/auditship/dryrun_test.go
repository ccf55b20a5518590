package auditship

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDryRun: --dry-run prints the exact requests of the first batch
// (method, URL, headers with the secrets masked, the body decoded), for
// every kind, and sends nothing: the server sees no request, no ack is
// written, the file is not created.
func TestDryRun(t *testing.T) {
	const secret = "c2VjcmV0LWtleS12YWx1ZS0xMjM0NTY3ODkw"
	t.Setenv("AP_TEST_DRY", secret)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	recs := makeChain(t, 3, 1_700_000_000_000)
	path := filepath.Join(t.TempDir(), "archive.ndjson")
	for _, tc := range []struct {
		kind string
		args []string
		want []string
	}{
		{"splunk", []string{"--url", srv.URL, "--token", "env:AP_TEST_DRY"},
			[]string{"POST " + srv.URL + "/services/collector/event\n", "Authorization: Splunk ******** (masked)\n", "Content-Encoding: gzip\n", `"event":`}},
		{"elastic", []string{"--url", srv.URL, "--api-key", "env:AP_TEST_DRY", "--index", "audit"},
			[]string{"POST " + srv.URL + "/_bulk", "Authorization: ApiKey ******** (masked)\n", `{"create":{"_index":"audit"`}},
		{"datadog", []string{"--url", srv.URL, "--api-key", "env:AP_TEST_DRY"},
			[]string{"POST " + srv.URL + "/api/v2/logs", "Dd-Api-Key: ******** (masked)\n", `"ddsource":`}},
		{"file", []string{"--path", path},
			[]string{"append to " + path, recs[0].text + "\n" + recs[1].text + "\n" + recs[2].text + "\n"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			stdout, stderr, err := runShip(t, ndjsonOf(recs), append([]string{"--kind", tc.kind, "--dry-run", "--acks", "-"}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			for _, w := range append(tc.want, "--dry-run: the first batch, seq 1..3 (3 records)", "nothing was sent") {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if tc.kind != "file" {
				for _, r := range recs {
					if !strings.Contains(stdout, r.hash) {
						t.Errorf("the decoded body lacks seq %d's recordHash", r.seq)
					}
				}
			}
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("the secret is shown:\n%s", stdout)
			}
			if strings.Contains(stdout, `"ack":`) {
				t.Errorf("an ack was written:\n%s", stdout)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server saw %d requests", n)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the file sink's path exists: %v", err)
	}
	if _, _, err := runShip(t, nil, "--kind", "file", "--path", path, "--dry-run", "--check"); err == nil {
		t.Errorf("--dry-run with --check: no error")
	}
}
