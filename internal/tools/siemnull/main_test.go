package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// TestAnswers checks each intake's answer: the status and body the sinks
// take for success, and one bulk item per document, for plain and gzip
// bodies (the bulk count is the only thing the receiver must get right).
func TestAnswers(t *testing.T) {
	var hec, bulk, dd counts
	srv := httptest.NewServer(handler(&hec, &bulk, &dd))
	defer srv.Close()
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	docs := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(`{"create":{"_index":"bench","_id":"h` + string(rune('a'+i%26)) + `"}}` + "\n" + `{"message":"x\ny"}` + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name, method, path string
		body               []byte
		gzip               bool
		status             int
		want               string // the exact body, or "" for a bulk answer
		items              int
	}{
		{"hec event", "POST", "/services/collector/event", gz(`{"event":"x"}`), true, 200, `{"text":"Success","code":0}`, 0},
		{"hec raw", "POST", "/services/collector/raw", []byte("line\n"), false, 200, `{"text":"Success","code":0}`, 0},
		{"hec health", "GET", "/services/collector/health", nil, false, 200, `{"text":"HEC is healthy","code":17}`, 0},
		{"datadog", "POST", "/api/v2/logs", gz(`[{"message":"x"}]`), true, 202, `{}`, 0},
		{"datadog validate", "GET", "/api/v1/validate", nil, false, 200, `{"valid":true}`, 0},
		{"bulk plain", "POST", "/_bulk", []byte(docs(3)), false, 200, "", 3},
		{"bulk gzip", "POST", "/insert/elasticsearch/_bulk", gz(docs(1000)), true, 200, "", 1000},
		{"bulk gzip, one document", "POST", "/_bulk", gz(docs(1)), true, 200, "", 1},
		{"bulk empty", "POST", "/_bulk", nil, false, 200, "", 0},
		{"elastic root", "GET", "/", nil, false, 200, `{"name":"siemnull","version":{"number":"8.0.0"}}`, 0},
		{"unknown", "POST", "/nothing", []byte("x"), false, 404, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path+"?filter_path=errors,items.*.status", bytes.NewReader(tc.body))
			if tc.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 || !strings.HasSuffix(tc.path, "/_bulk") {
				if tc.want != "" && string(body) != tc.want {
					t.Fatalf("body %s, want %s", body, tc.want)
				}
				return
			}
			var ans struct {
				Errors *bool
				Items  []map[string]struct{ Status int }
			}
			if err := json.Unmarshal(body, &ans); err != nil {
				t.Fatalf("bulk answer %q: %v", body, err)
			}
			if ans.Errors == nil || *ans.Errors || len(ans.Items) != tc.items {
				t.Fatalf("bulk answer: errors %v, %d items, want false and %d", ans.Errors, len(ans.Items), tc.items)
			}
			for i, it := range ans.Items {
				if len(it) != 1 || it["create"].Status != 201 {
					t.Fatalf("item %d is %v, want one create with status 201", i, it)
				}
			}
		})
	}
	if got := bulk.docs.Load(); got != 1004 {
		t.Errorf("bulk documents counted %d, want 1004", got)
	}
}
