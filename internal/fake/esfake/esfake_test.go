package esfake

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

type call struct {
	method, path, ctype, auth string
	body                      string
	gzip                      bool
}

func do(t *testing.T, s *Server, c call) (int, string) {
	t.Helper()
	body := []byte(c.body)
	if c.gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body = b.Bytes()
	}
	req, err := http.NewRequest(c.method, s.URL+c.path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const nd = "application/x-ndjson"

func TestProtocol(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:pw"))
	s := New(Options{APIKeys: []string{"k1"}, Users: map[string]string{"elastic": "pw"}, Tokens: []string{"t1"}, ReadOnly: []string{"t1"},
		MaxContentLength: 4096, NoAutoCreate: true, Indexes: []string{"audit"}})
	defer s.Close()
	doc := `{"create":{"_index":"audit","_id":"a"}}` + "\n" + `{"m":1}` + "\n"
	fp := "?filter_path=errors,items.*.status,items.*.error,items.*._id"
	tests := []struct {
		name   string
		c      call
		status int
		body   string // exact answer, or a substring when prefixed with "~"
	}{
		{"root needs auth", call{method: "GET", path: "/"}, 401, "~missing authentication credentials for REST request [/]"},
		{"root with api key", call{method: "GET", path: "/", auth: "ApiKey k1"}, 200, `~"tagline":"You Know, for Search"`},
		{"root with read-only token", call{method: "GET", path: "/", auth: "Bearer t1"}, 200, `~"number":"8.15.0"`},
		{"wrong key", call{method: "POST", path: "/_bulk", ctype: nd, auth: "ApiKey nope", body: doc}, 401, "~unable to authenticate"},
		{"read-only token may not write", call{method: "POST", path: "/_bulk", ctype: nd, auth: "Bearer t1", body: doc}, 403, "~action [indices:data/write/bulk] is unauthorized"},
		{"no content type", call{method: "POST", path: "/_bulk", auth: "ApiKey k1", body: doc}, 406, "~is not supported"},
		{"no final newline", call{method: "POST", path: "/_bulk", ctype: nd, auth: "ApiKey k1", body: strings.TrimSuffix(doc, "\n")}, 400, "~must be terminated by a newline"},
		{"unknown action", call{method: "POST", path: "/_bulk", ctype: nd, auth: "ApiKey k1", body: `{"delete":{"_id":"a"}}` + "\n"}, 400, "~unknown parameter [delete]"},
		{"too large", call{method: "POST", path: "/_bulk", ctype: nd, auth: "ApiKey k1", body: strings.Repeat(doc, 100)}, 413, "~content_too_long_exception"},
		{"create, filtered", call{method: "POST", path: "/_bulk" + fp, ctype: nd, auth: basic, body: doc, gzip: true}, 200,
			`{"errors":false,"items":[{"create":{"_id":"a","status":201}}]}`},
		{"create again: 409", call{method: "POST", path: "/_bulk" + fp, ctype: nd, auth: basic, body: doc}, 200,
			`{"errors":true,"items":[{"create":{"_id":"a","error":{"index":"audit","reason":"[a]: version conflict, document already exists (current version [1])","type":"version_conflict_engine_exception"},"status":409}}]}`},
		{"mixed per item", call{method: "POST", path: "/_bulk" + fp, ctype: nd, auth: "ApiKey k1", body: `{"create":{"_index":"audit","_id":"b"}}` + "\n" + `[1]` + "\n" +
			`{"create":{"_index":"Bad","_id":"c"}}` + "\n" + `{}` + "\n" + `{"create":{"_index":"other","_id":"d"}}` + "\n" + `{}` + "\n" +
			`{"index":{"_index":"audit","_id":"a"}}` + "\n" + `{"m":2}` + "\n"}, 200,
			`{"errors":true,"items":[` +
				`{"create":{"_id":"b","error":{"index":"audit","reason":"[1:1] failed to parse: json: cannot unmarshal array into Go value of type map[string]json.RawMessage","type":"document_parsing_exception"},"status":400}},` +
				`{"create":{"_id":"c","error":{"index":"Bad","reason":"Invalid index name [Bad], must be lowercase","type":"invalid_index_name_exception"},"status":400}},` +
				`{"create":{"_id":"d","error":{"index":"other","reason":"no such index [other]","type":"index_not_found_exception"},"status":404}},` +
				`{"index":{"_id":"a","status":200}}]}`},
		{"unfiltered answer has everything", call{method: "POST", path: "/audit/_bulk", ctype: "application/json", auth: "ApiKey k1", body: `{"create":{"_id":"e"}}` + "\n" + `{}` + "\n"}, 200,
			`~"items":[{"create":{"_id":"e","_index":"audit","_version":1,"result":"created","status":201}}]`},
		{"unknown path", call{method: "GET", path: "/_cluster/health", auth: "ApiKey k1"}, 400, "~no handler found for uri [/_cluster/health]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, s, tt.c)
			ok := body == tt.body
			if sub, found := strings.CutPrefix(tt.body, "~"); found {
				ok = strings.Contains(body, sub)
			}
			if status != tt.status || !ok {
				t.Fatalf("%d %s\nwant %d %s", status, body, tt.status, tt.body)
			}
		})
	}
	if d, ok := s.Doc("audit", "a"); !ok || d.Source != `{"m":2}` || d.Version != 2 {
		t.Errorf("doc a = %+v, %v: want overwritten by the index action", d, ok)
	}
	if docs := s.Docs(); len(docs) != 2 {
		t.Errorf("%d docs, want a and e", len(docs))
	}
	if n := len(s.Requests()); n != len(tests) {
		t.Errorf("%d requests recorded, want %d", n, len(tests))
	}
}

func TestItemFuncAndFault(t *testing.T) {
	s := New(Options{
		Item: func(it *Item) ItemResult {
			if it.ID == "x" {
				return ItemResult{Status: 429, Type: "es_rejected_execution_exception", Reason: "busy"}
			}
			return ItemResult{}
		},
		Fault: func(r *Request) Fault {
			if r.N == 1 {
				return Fault{Status: 429, RetryAfter: "3"}
			}
			return Fault{}
		},
	})
	defer s.Close()
	body := `{"create":{"_index":"a","_id":"x"}}` + "\n{}\n" + `{"create":{"_index":"a","_id":"y"}}` + "\n{}\n"
	req, _ := http.NewRequest("POST", s.URL+"/_bulk", strings.NewReader(body))
	req.Header.Set("Content-Type", nd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("fault: %d %v", resp.StatusCode, resp.Header)
	}
	status, answer := do(t, s, call{method: "POST", path: "/_bulk?filter_path=items.*.status", ctype: nd, body: body})
	if status != 200 || answer != `{"items":[{"create":{"status":429}},{"create":{"status":201}}]}` {
		t.Fatalf("%d %s", status, answer)
	}
	if _, ok := s.Doc("a", "x"); ok {
		t.Fatal("a refused item was stored")
	}
}

func TestLoopbackOnly(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	host, _, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("listening on %s", s.Listener.Addr())
	}
}
