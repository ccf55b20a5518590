package elastic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
)

func TestSendBody(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			f := startFake(t, esfake.Options{APIKeys: []string{apiKey}})
			s := newSink(t, Config{URL: f.URL, Gzip: gz, Index: "audit-acme", Auth: apiKeyAuth(t)})
			recs := records(t, 2*len(sinktest.Awkward), 300)
			recs[0].TS = 1764244800000 // whole second: .000 kept
			res, err := s.Send(context.Background(), recs)
			if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, len(recs))) {
				t.Fatalf("Send: %v %v", res.Status, err)
			}
			reqs := f.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			wantEnc := ""
			if gz {
				wantEnc = "gzip"
			}
			if r.Method != "POST" || r.Path != "/_bulk" || r.Query != "filter_path=errors,items.*.status,items.*.error,items.*._id" {
				t.Errorf("request %s %s?%s", r.Method, r.Path, r.Query)
			}
			h := r.Header
			if h.Get("Authorization") != "ApiKey "+apiKey || h.Get("Content-Type") != "application/x-ndjson" ||
				h.Get("Content-Encoding") != wantEnc || h.Get("VL-Msg-Field") != "message" || h.Get("VL-Time-Field") != "@timestamp" {
				t.Errorf("headers: %v", h)
			}

			// The body, byte for byte.
			var want strings.Builder
			for _, r := range recs {
				tm := time.UnixMilli(r.TS).UTC().Format("2006-01-02T15:04:05.000Z")
				fmt.Fprintf(&want, `{"create":{"_index":"audit-acme","_id":"%s"}}`+"\n", r.Hash)
				fmt.Fprintf(&want, `{"@timestamp":"%s","seq":%d,"tenantId":"acme","kind":"tool_call","recordHash":"%s","prevHash":"%s","message":%s}`+"\n",
					tm, r.Seq, r.Hash, r.PrevHash, sinktest.JSONString(string(r.Line)))
			}
			if string(r.Body) != want.String() {
				t.Fatalf("body:\n got %s\nwant %s", r.Body, want.String())
			}

			// Decoded independently: the message is the record line, byte for byte.
			lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
			if len(lines) != 2*len(recs) {
				t.Fatalf("%d body lines for %d records", len(lines), len(recs))
			}
			for i, rec := range recs {
				var act map[string]map[string]string
				if err := json.Unmarshal([]byte(lines[2*i]), &act); err != nil || len(act) != 1 ||
					act["create"]["_index"] != "audit-acme" || act["create"]["_id"] != rec.Hash || len(act["create"]) != 2 {
					t.Fatalf("action %d: %s (%v)", i, lines[2*i], err)
				}
				var doc struct {
					Timestamp  string `json:"@timestamp"`
					Seq        int64  `json:"seq"`
					TenantID   string `json:"tenantId"`
					Kind       string `json:"kind"`
					RecordHash string `json:"recordHash"`
					PrevHash   string `json:"prevHash"`
					Message    string `json:"message"`
				}
				dec := json.NewDecoder(strings.NewReader(lines[2*i+1]))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&doc); err != nil {
					t.Fatalf("doc %d: %v", i, err)
				}
				if doc.Message != string(rec.Line) {
					t.Fatalf("doc %d message:\n got %q\nwant %q", i, doc.Message, rec.Line)
				}
				if tm, err := time.Parse(time.RFC3339Nano, doc.Timestamp); err != nil || tm.UnixMilli() != rec.TS {
					t.Errorf("doc %d @timestamp %s for ts %d", i, doc.Timestamp, rec.TS)
				}
				if doc.Seq != rec.Seq || doc.TenantID != "acme" || doc.Kind != "tool_call" || doc.RecordHash != rec.Hash || doc.PrevHash != rec.PrevHash {
					t.Errorf("doc %d fields: %+v", i, doc)
				}
				// The fake stored it under its recordHash.
				if d, ok := f.Doc("audit-acme", rec.Hash); !ok || d.Source != lines[2*i+1] {
					t.Errorf("doc %d not stored under its _id", i)
				}
			}
			if recs[0].PrevHash != "" || !strings.Contains(lines[1], `"prevHash":""`) {
				t.Errorf("genesis prevHash not sent as \"\": %s", lines[1])
			}
		})
	}
}

func TestSendLineShapeAndSeqID(t *testing.T) {
	f := startFake(t, esfake.Options{})
	s := newSink(t, Config{URL: f.URL + "/_bulk/", DocShape: ShapeLine, IDField: IDSeq})
	recs := records(t, 5, 200)
	res, err := s.Send(context.Background(), recs)
	if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, 5)) {
		t.Fatalf("Send: %v %v", res.Status, err)
	}
	r := f.Requests()[0]
	if r.Path != "/_bulk" || r.Header.Get("Authorization") != "" || r.Header.Get("VL-Msg-Field") != "" || r.Header.Get("Content-Encoding") != "" {
		t.Errorf("request %s %v", r.Path, r.Header)
	}
	var want strings.Builder
	for _, rec := range recs {
		fmt.Fprintf(&want, `{"create":{"_index":"declaragent-audit","_id":"%d"}}`+"\n%s\n", rec.Seq, rec.Line)
	}
	if string(r.Body) != want.String() {
		t.Fatalf("body:\n got %s\nwant %s", r.Body, want.String())
	}
	for _, rec := range recs {
		if d, ok := f.Doc(DefaultIndex, fmt.Sprint(rec.Seq)); !ok || d.Source != string(rec.Line) {
			t.Errorf("seq %d: _source is not the record line byte for byte: %q", rec.Seq, d.Source)
		}
	}
}

// TestReplayIsIdempotent: sending the same records again creates nothing:
// every item is a 409, reported as Duplicate.
func TestReplayIsIdempotent(t *testing.T) {
	f := startFake(t, esfake.Options{})
	s := newSink(t, Config{URL: f.URL, Gzip: true})
	recs := records(t, 10, 200)
	for i, want := range []sink.Status{sink.Delivered, sink.Duplicate} {
		res, err := s.Send(context.Background(), recs)
		if err != nil || !slices.Equal(res.Status, repeat(want, len(recs))) {
			t.Fatalf("send %d: %v %v", i, res.Status, err)
		}
	}
	// A reset database: a new chain reuses seq 40.. but not the hashes.
	fresh := chainRecords(t, 3, 200, 1764300000000, "")
	res, err := s.Send(context.Background(), fresh)
	if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, 3)) {
		t.Fatalf("new chain: %v %v", res.Status, err)
	}
	if n := len(f.Docs()); n != 13 {
		t.Fatalf("%d documents stored, want 13", n)
	}
}

// TestMixedItems: one answer holding every per-item outcome gives exactly
// the statuses, and only the retryable ones stay Pending.
func TestMixedItems(t *testing.T) {
	type outcome struct {
		res  esfake.ItemResult
		want sink.Status
	}
	D, U, P, X := sink.Delivered, sink.Duplicate, sink.Pending, sink.Poison
	plan := []outcome{
		{esfake.ItemResult{}, D}, // stored normally: 201
		{esfake.ItemResult{}, U}, // already stored before: a real 409
		{esfake.ItemResult{Status: 429, Type: "es_rejected_execution_exception", Reason: "rejected execution of coordinating operation"}, P},
		{esfake.ItemResult{Status: 400, Type: "mapper_parsing_exception", Reason: "failed to parse field [seq] of type [long]"}, X},
		{esfake.ItemResult{Status: 404, Type: "index_not_found_exception", Reason: "no such index [audit]"}, X},
		{esfake.ItemResult{Status: 503, Type: "unavailable_shards_exception", Reason: "primary shard is not active"}, P},
		{esfake.ItemResult{Status: 200, Store: true}, D},
		{esfake.ItemResult{Status: 400, Type: "document_parsing_exception", Reason: "[1:2] failed to parse"}, X},
		{esfake.ItemResult{Status: 409, Type: "version_conflict_engine_exception", Reason: "[x]: version conflict"}, U},
		{esfake.ItemResult{Status: 500, Type: "illegal_state_exception", Reason: "boom"}, P},
		{esfake.ItemResult{Status: 201, Store: true}, D},
	}
	recs := records(t, len(plan), 200)
	pos := map[string]int{}
	for i, r := range recs {
		pos[r.Hash] = i
	}
	var mu sync.Mutex
	active := false
	f := startFake(t, esfake.Options{Item: func(it *esfake.Item) esfake.ItemResult {
		mu.Lock()
		defer mu.Unlock()
		if !active {
			return esfake.ItemResult{}
		}
		return plan[pos[it.ID]].res
	}})
	s := newSink(t, Config{URL: f.URL, Gzip: true})
	// Store record 1 first, so its create is a real 409.
	if res, err := s.Send(context.Background(), recs[1:2]); err != nil || res.Status[0] != D {
		t.Fatalf("first send: %v %v", res.Status, err)
	}
	mu.Lock()
	active = true
	mu.Unlock()
	res, err := s.Send(context.Background(), recs)
	var want []sink.Status
	for _, o := range plan {
		want = append(want, o.want)
	}
	if !slices.Equal(res.Status, want) {
		t.Fatalf("Status = %v\nwant     %v", res.Status, want)
	}
	wantReason := map[int]string{
		3: "400 mapper_parsing_exception: failed to parse field [seq] of type [long]",
		4: "404 index_not_found_exception: no such index [audit]",
		7: "400 document_parsing_exception: [1:2] failed to parse",
	}
	for i := range recs {
		if res.Reason[i] != wantReason[i] {
			t.Errorf("Reason[%d] = %q, want %q", i, res.Reason[i], wantReason[i])
		}
	}
	var se *sink.Error
	if !errors.As(err, &se) || se.Class != sink.Retryable || se.HTTPStatus != 429 ||
		!strings.Contains(se.Msg, "3 of 11 documents refused for now") || !strings.Contains(se.Msg, "es_rejected_execution_exception") {
		t.Fatalf("err = %v, want Retryable 429 naming 3 of 11", err)
	}

	// The shipper resends the Pending ones only; now they go through.
	mu.Lock()
	active = false
	mu.Unlock()
	var again []sink.Record
	for i, st := range res.Status {
		if st == P {
			again = append(again, recs[i])
		}
	}
	res2, err := s.Send(context.Background(), again)
	if err != nil || !slices.Equal(res2.Status, repeat(D, 3)) {
		t.Fatalf("resend: %v %v", res2.Status, err)
	}
}

// TestItem403 is configuration: the whole request fails with Config, and
// the other items' outcomes are still reported.
func TestItem403(t *testing.T) {
	recs := records(t, 4, 200)
	f := startFake(t, esfake.Options{APIKeys: []string{apiKey}, Item: func(it *esfake.Item) esfake.ItemResult {
		switch it.Pos {
		case 1, 2:
			return esfake.ItemResult{Status: 403, Type: "security_exception",
				Reason: "action [indices:data/write/bulk[s]] is unauthorized for API key id [VuaCfGcB] on indices [audit]"}
		case 3:
			return esfake.ItemResult{Status: 429, Type: "es_rejected_execution_exception", Reason: "busy"}
		}
		return esfake.ItemResult{}
	}})
	s := newSink(t, Config{URL: f.URL, Index: "audit", Auth: apiKeyAuth(t)})
	res, err := s.Send(context.Background(), recs)
	noSecret(t, err)
	if !slices.Equal(res.Status, statuses(sink.Delivered, sink.Pending, sink.Pending, sink.Pending)) {
		t.Fatalf("Status = %v", res.Status)
	}
	var se *sink.Error
	if !errors.As(err, &se) || se.Class != sink.Config || se.HTTPStatus != 403 {
		t.Fatalf("err = %v, want Config 403", err)
	}
	for _, c := range []string{"2 of 4 documents refused", "security_exception", `index "audit"`, "create_doc"} {
		if !strings.Contains(se.Msg, c) {
			t.Errorf("err %q does not contain %q", se.Msg, c)
		}
	}
}

func TestSendOutcomes(t *testing.T) {
	bulk := func(f esfake.Fault) func(*esfake.Request) esfake.Fault {
		return func(r *esfake.Request) esfake.Fault {
			if strings.HasSuffix(r.Path, "/_bulk") {
				return f
			}
			return esfake.Fault{}
		}
	}
	later := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	P := sink.Pending
	tests := []struct {
		name    string
		opts    esfake.Options
		cfg     Config
		n       int
		want    []sink.Status
		wantErr *sinktest.Failure
		stored  int
	}{
		{name: "ok", n: 3, want: repeat(sink.Delivered, 3), stored: 3},
		{name: "413 split", opts: esfake.Options{MaxContentLength: 200}, n: 3, want: repeat(P, 3),
			wantErr: &sinktest.Failure{Class: sink.TooLarge, Status: 413, Contains: []string{"too large", "content_too_long_exception"}}},
		{name: "429 retry-after seconds", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 429, RetryAfter: "7"})}, n: 2, want: repeat(P, 2),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 429, RetryAfter: 7}},
		{name: "503 retry-after date", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 503, RetryAfter: later})}, n: 1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 503, RetryAfter: 90}},
		{name: "500", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 500})}, n: 1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 500}},
		{name: "408", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 408, Body: "timeout"})}, n: 1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 408}},
		{name: "401 wrong key", opts: esfake.Options{APIKeys: []string{newAPIKey}}, cfg: Config{Auth: apiKeyAuth(t)}, n: 2, want: repeat(P, 2),
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 401, Contains: []string{"API key from file:", "not accepted", "unable to authenticate", "re-read"}}},
		{name: "401 no credentials configured", opts: esfake.Options{APIKeys: []string{apiKey}}, n: 1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 401, Contains: []string{"set Auth", "missing authentication credentials"}}},
		{name: "403 read-only key", opts: esfake.Options{APIKeys: []string{apiKey}, ReadOnly: []string{apiKey}}, cfg: Config{Auth: apiKeyAuth(t)}, n: 1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 403, Contains: []string{"may not write", "create_doc", "security_exception"}}},
		{name: "400 whole request", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 400, Body: `{"error":{"type":"illegal_argument_exception","reason":"Malformed action/metadata line [1]"},"status":400}`})},
			n: 1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Config, Status: 400, Contains: []string{"illegal_argument_exception: Malformed action/metadata line [1]"}}},
		{name: "404 wrong path", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 404, Body: "Not Found"})}, n: 1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 404, Contains: []string{"check the URL"}}},
		{name: "redirect not followed", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 302, Body: " ", Header: http.Header{"Location": {"https://u:p@sso.example/login"}}})},
			n: 1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Config, Status: 302, Contains: []string{"sso.example", "not followed"}}},
		{name: "200 with a proxy's HTML", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 200, Body: "<html>welcome</html>"})}, n: 2, want: repeat(P, 2),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 200, Contains: []string{"unusable", "not JSON"}}},
		{name: "item count short", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 200, Body: `{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}`})},
			n: 3, want: repeat(P, 3), wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 200, Contains: []string{"2 items for 3 documents", "no record counts as delivered"}}},
		{name: "item _id elsewhere", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 200, Body: `{"errors":false,"items":[{"create":{"_id":"other","status":201}}]}`})},
			n: 1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 200, Contains: []string{`_id "other"`}}},
		{name: "item without status", opts: esfake.Options{Fault: bulk(esfake.Fault{Status: 200, Body: `{"errors":false,"items":[{"create":{}}]}`})},
			n: 1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 200, Contains: []string{"no usable status"}}},
		{name: "502 from a proxy echoing the key", opts: esfake.Options{Fault: func(r *esfake.Request) esfake.Fault {
			return esfake.Fault{Status: 502, Body: "<html>bad gateway " + r.Header.Get("Authorization") + strings.Repeat(" filler", 200) + "</html>"}
		}}, cfg: Config{Auth: apiKeyAuth(t)}, n: 1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 502, Contains: []string{"bad gateway", "[secret]"}}},
		{name: "connection dropped", opts: esfake.Options{Fault: bulk(esfake.Fault{Drop: true})}, n: 2, want: repeat(P, 2),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 0}},
		{name: "timeout", opts: esfake.Options{Fault: bulk(esfake.Fault{Delay: 2 * time.Second})}, cfg: Config{Conn: sink.Conn{Timeout: 100 * time.Millisecond}},
			n: 1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 0, Contains: []string{"no complete response within 100ms"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.opts)
			cfg := tt.cfg
			cfg.URL = f.URL
			cfg.Gzip = true
			s := newSink(t, cfg)
			res, err := s.Send(context.Background(), records(t, tt.n, 300))
			noSecret(t, err)
			t.Logf("err: %v", err)
			if !slices.Equal(res.Status, tt.want) {
				t.Errorf("Status = %v, want %v", res.Status, tt.want)
			}
			if n := len(f.Docs()); n != tt.stored {
				t.Errorf("server stored %d documents, want %d", n, tt.stored)
			}
			sinktest.CheckErr(t, err, tt.wantErr)
		})
	}
}

func TestAuthKinds(t *testing.T) {
	key, _ := secretFile(t, apiKey)
	pw, _ := secretFile(t, password)
	tok, _ := secretFile(t, bearerTok)
	wrong, _ := secretFile(t, "wrong-secret")
	opts := esfake.Options{APIKeys: []string{apiKey}, Users: map[string]string{"elastic": password}, Tokens: []string{bearerTok}}
	tests := []struct {
		name       string
		auth       Auth
		wantHeader string
		wantErr    *sinktest.Failure
	}{
		{name: "apiKey", auth: Auth{Kind: "apiKey", APIKey: key}, wantHeader: "ApiKey " + apiKey},
		{name: "apikey any case", auth: Auth{Kind: "APIKEY", APIKey: key}, wantHeader: "ApiKey " + apiKey},
		{name: "basic", auth: Auth{Kind: "basic", Username: "elastic", Password: pw}, wantHeader: "Basic " + basicB64},
		{name: "bearer", auth: Auth{Kind: "bearer", Token: tok}, wantHeader: "Bearer " + bearerTok},
		{name: "basic wrong password", auth: Auth{Kind: "basic", Username: "elastic", Password: wrong},
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 401, RetryAfter: -1, Contains: []string{`password of user "elastic"`}}},
		{name: "bearer wrong", auth: Auth{Kind: "bearer", Token: wrong},
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 401, RetryAfter: -1, Contains: []string{"bearer token from file:"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, opts)
			s := newSink(t, Config{URL: f.URL, Auth: tt.auth})
			res, err := s.Send(context.Background(), records(t, 2, 100))
			cerr := s.Check(context.Background())
			noSecret(t, err)
			noSecret(t, cerr)
			sinktest.CheckErr(t, err, tt.wantErr)
			if tt.wantErr != nil {
				sinktest.CheckErr(t, cerr, tt.wantErr)
				return
			}
			if cerr != nil {
				t.Fatalf("Check: %v", cerr)
			}
			if !slices.Equal(res.Status, repeat(sink.Delivered, 2)) {
				t.Fatalf("Status %v", res.Status)
			}
			for _, r := range f.Requests() {
				if got := r.Header.Get("Authorization"); got != tt.wantHeader {
					t.Errorf("%s %s: Authorization %q, want %q", r.Method, r.Path, got, tt.wantHeader)
				}
			}
		})
	}
}

// TestRotation: after a 401 the secret is read again; a rotated key is
// used at once, with no restart and no error.
func TestRotation(t *testing.T) {
	f := startFake(t, esfake.Options{APIKeys: []string{apiKey}})
	src, path := secretFile(t, apiKey)
	s := newSink(t, Config{URL: f.URL, Auth: Auth{Kind: AuthAPIKey, APIKey: src}})
	if res, err := s.Send(context.Background(), records(t, 1, 100)); err != nil || res.Status[0] != sink.Delivered {
		t.Fatalf("before rotation: %v %v", res.Status, err)
	}
	f.SetAPIKeys(newAPIKey)
	rotate(t, path, newAPIKey)
	recs := chainRecords(t, 2, 100, 1764244900000, "")
	res, err := s.Send(context.Background(), recs)
	if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, 2)) {
		t.Fatalf("after rotation: %v %v", res.Status, err)
	}
	reqs := f.Requests()
	if len(reqs) != 3 || reqs[1].Header.Get("Authorization") != "ApiKey "+apiKey || reqs[2].Header.Get("Authorization") != "ApiKey "+newAPIKey {
		t.Fatalf("%d requests; want the old key refused, then the new one", len(reqs))
	}
	// Rotated on the server but not in the file: Config, naming the file.
	f.SetAPIKeys(apiKey)
	_, err = s.Send(context.Background(), recs)
	noSecret(t, err)
	sinktest.CheckErr(t, err, &sinktest.Failure{Class: sink.Config, Status: 401, RetryAfter: -1, Contains: []string{"file:" + path, "re-read after the refusal"}})
}

func TestNew(t *testing.T) {
	key, _ := secretFile(t, apiKey)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		bulk    string // want bulkURL
	}{
		{name: "defaults", cfg: Config{URL: "https://es.example.com:9200"}, bulk: "https://es.example.com:9200/_bulk?" + filterPath},
		{name: "VictoriaLogs prefix, trailing slash", cfg: Config{URL: "http://127.0.0.1:9428/insert/elasticsearch/"}, bulk: "http://127.0.0.1:9428/insert/elasticsearch/_bulk?" + filterPath},
		{name: "_bulk given", cfg: Config{URL: "https://es.example.com/_bulk"}, bulk: "https://es.example.com/_bulk?" + filterPath},
		{name: "no URL", cfg: Config{}, wantErr: "no URL"},
		{name: "bad scheme", cfg: Config{URL: "ftp://es"}, wantErr: "scheme must be https"},
		{name: "no host", cfg: Config{URL: "https:///x"}, wantErr: "no host"},
		{name: "credentials in URL", cfg: Config{URL: "https://u:" + apiKey + "@es.example.com"}, wantErr: "carries credentials"},
		{name: "query in URL", cfg: Config{URL: "https://es.example.com/?api_key=" + apiKey}, wantErr: "URL https://es.example.com/ has a query (not shown"},
		{name: "http to remote refused with a key", cfg: Config{URL: "http://es.example.com:9200", Auth: Auth{Kind: AuthAPIKey, APIKey: key}},
			wantErr: "refusing to send the apiKey credentials and the audit log over plain http to es.example.com:9200"},
		{name: "http to remote refused without auth", cfg: Config{URL: "http://10.0.0.5:9200"}, wantErr: "refusing to send the audit log over plain http"},
		{name: "http to remote allowed explicitly", cfg: Config{URL: "http://es.example.com:9200", Auth: Auth{Kind: AuthAPIKey, APIKey: key}, Conn: sink.Conn{AllowInsecureHTTP: true}},
			bulk: "http://es.example.com:9200/_bulk?" + filterPath},
		{name: "http to localhost", cfg: Config{URL: "http://localhost:9200", Auth: Auth{Kind: AuthAPIKey, APIKey: key}}, bulk: "http://localhost:9200/_bulk?" + filterPath},
		{name: "http to ::1", cfg: Config{URL: "http://[::1]:9200"}, bulk: "http://[::1]:9200/_bulk?" + filterPath},
		{name: "TLS options on http", cfg: Config{URL: "http://127.0.0.1:9200", Conn: sink.Conn{InsecureSkipVerify: true}}, wantErr: "plain http"},
		{name: "cert without key", cfg: Config{URL: "https://es.example.com", Conn: sink.Conn{CertFile: "c.pem"}}, wantErr: "both CertFile and KeyFile"},
		{name: "missing CA file", cfg: Config{URL: "https://es.example.com", Conn: sink.Conn{CAFile: "/nonexistent/ca.pem"}}, wantErr: "read CA file"},
		{name: "bad index", cfg: Config{URL: "https://es.example.com", Index: "Audit"}, wantErr: `index name "Audit" is invalid: it must be lowercase`},
		{name: "bad IDField", cfg: Config{URL: "https://es.example.com", IDField: "hash"}, wantErr: `IDField "hash"`},
		{name: "bad DocShape", cfg: Config{URL: "https://es.example.com", DocShape: "raw"}, wantErr: `DocShape "raw"`},
		{name: "bad auth kind", cfg: Config{URL: "https://es.example.com", Auth: Auth{Kind: "token"}}, wantErr: `Auth.Kind "token"`},
		{name: "apiKey without key", cfg: Config{URL: "https://es.example.com", Auth: Auth{Kind: AuthAPIKey}}, wantErr: "needs APIKey"},
		{name: "basic without password", cfg: Config{URL: "https://es.example.com", Auth: Auth{Kind: AuthBasic, Username: "u"}}, wantErr: "needs Username and Password"},
		{name: "basic user with colon", cfg: Config{URL: "https://es.example.com", Auth: Auth{Kind: AuthBasic, Username: "u:v", Password: key}}, wantErr: "may not contain ':'"},
		{name: "bearer without token", cfg: Config{URL: "https://es.example.com", Auth: Auth{Kind: AuthBearer}}, wantErr: "needs Token"},
		{name: "key set but kind none", cfg: Config{URL: "https://es.example.com", Auth: Auth{APIKey: key}}, wantErr: "Auth.Kind is none but apiKey credentials are set"},
		{name: "token set with kind basic", cfg: Config{URL: "https://es.example.com", Auth: Auth{Kind: AuthBasic, Username: "u", Password: key, Token: key}}, wantErr: "bearer credentials are set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				noSecret(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.bulkURL != tt.bulk {
				t.Errorf("bulkURL %s, want %s", s.bulkURL, tt.bulk)
			}
			if s.cfg.Index != DefaultIndex || s.cfg.IDField != IDRecordHash || s.cfg.DocShape != ShapeMessage || s.cfg.Timeout != DefaultTimeout {
				t.Errorf("defaults not applied: %+v", s.cfg)
			}
		})
	}
}

func TestValidIndex(t *testing.T) {
	long := strings.Repeat("a", 255)
	for _, c := range []struct {
		name, why string // why: "" valid
	}{
		{"declaragent-audit", ""}, {"audit_acme.2025", ""}, {".hidden", ""}, {"日本", ""}, {long, ""},
		{"", "empty"}, {".", `"." or ".."`}, {"..", `"." or ".."`}, {long + "a", "256 bytes"},
		{"Audit", "lowercase"}, {"auditÉ", "lowercase"},
		{"-a", "start with"}, {"_a", "start with"}, {"+a", "start with"},
		{`a\b`, `'\\'`}, {"a/b", "'/'"}, {"a*", "'*'"}, {"a?", "'?'"}, {`a"b`, `'"'`}, {"a<b", "'<'"}, {"a>b", "'>'"},
		{"a|b", "'|'"}, {"a,b", "','"}, {"a#b", "'#'"}, {"a b", "' '"}, {"remote:idx", "':'"},
		{"a\nb", "control"}, {"a\x00b", "control"}, {"\xff", "UTF-8"},
	} {
		err := ValidIndex(c.name)
		if c.why == "" {
			if err != nil {
				t.Errorf("ValidIndex(%q) = %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("ValidIndex(%q) = %v, want it to mention %s", c.name, err, c.why)
		}
	}
}

func TestCheck(t *testing.T) {
	root := func(f esfake.Fault) func(*esfake.Request) esfake.Fault {
		return func(r *esfake.Request) esfake.Fault {
			if r.Path == "/" {
				return f
			}
			return esfake.Fault{}
		}
	}
	tests := []struct {
		name    string
		opts    esfake.Options
		auth    bool
		wantErr *sinktest.Failure
	}{
		{name: "ok", opts: esfake.Options{APIKeys: []string{apiKey}}, auth: true},
		{name: "ok for a read-only key", opts: esfake.Options{APIKeys: []string{apiKey}, ReadOnly: []string{apiKey}}, auth: true},
		{name: "ok anonymous", opts: esfake.Options{}},
		{name: "wrong key", opts: esfake.Options{APIKeys: []string{newAPIKey}}, auth: true,
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 401, RetryAfter: -1, Contains: []string{"API key from file:", "not accepted"}}},
		{name: "credentials needed", opts: esfake.Options{APIKeys: []string{apiKey}},
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 401, RetryAfter: -1, Contains: []string{"set Auth"}}},
		{name: "403", opts: esfake.Options{Fault: root(esfake.Fault{Status: 403})}, auth: true,
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 403, RetryAfter: -1, Contains: []string{"may not call GET /"}}},
		{name: "login page", opts: esfake.Options{Fault: root(esfake.Fault{Status: 200, Body: "<html>sign in</html>"})},
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 200, RetryAfter: -1, Contains: []string{"not with Elasticsearch's JSON", "sign in"}}},
		{name: "404", opts: esfake.Options{Fault: root(esfake.Fault{Status: 404})},
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 404, RetryAfter: -1, Contains: []string{"no Elasticsearch at"}}},
		{name: "503", opts: esfake.Options{Fault: root(esfake.Fault{Status: 503, RetryAfter: "3"})},
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 503, RetryAfter: 3, Contains: []string{"GET "}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.opts)
			cfg := Config{URL: f.URL}
			if tt.auth {
				cfg.Auth = apiKeyAuth(t)
			}
			s := newSink(t, cfg)
			err := s.Check(context.Background())
			noSecret(t, err)
			t.Logf("Check: %v", err)
			sinktest.CheckErr(t, err, tt.wantErr)
			reqs := f.Requests()
			if len(reqs) < 1 || reqs[0].Method != "GET" || reqs[0].Path != "/" {
				t.Fatalf("Check sent %+v, want GET /", reqs)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		f := esfake.New(esfake.Options{})
		f.Close()
		s := newSink(t, Config{URL: f.URL})
		sinktest.CheckErr(t, s.Check(context.Background()), &sinktest.Failure{Class: sink.Retryable, Status: 0, RetryAfter: -1, Contains: []string{"cannot reach Elasticsearch"}})
	})
}

func TestLocalPoison(t *testing.T) {
	f := startFake(t, esfake.Options{})
	s := newSink(t, Config{URL: f.URL, DocShape: ShapeLine})
	recs := records(t, 3, 100)
	recs[0].Hash = ""
	recs[1].Line = []byte("{\"a\":1}\n{\"b\":2}")
	res, err := s.Send(context.Background(), recs)
	if err != nil || !slices.Equal(res.Status, statuses(sink.Poison, sink.Poison, sink.Delivered)) {
		t.Fatalf("Send: %v %v", res.Status, err)
	}
	if !strings.Contains(res.Reason[0], "no recordHash") || !strings.Contains(res.Reason[1], "newline") {
		t.Fatalf("reasons %q", res.Reason)
	}
	if docs := f.Docs(); len(docs) != 1 || docs[0].ID != recs[2].Hash {
		t.Fatalf("stored %+v", docs)
	}
	// Nothing left to send: no request.
	n := len(f.Requests())
	if res, err := s.Send(context.Background(), recs[:1]); err != nil || res.Status[0] != sink.Poison || len(f.Requests()) != n {
		t.Fatalf("all poison: %v %v, %d requests", res.Status, err, len(f.Requests())-n)
	}
}
