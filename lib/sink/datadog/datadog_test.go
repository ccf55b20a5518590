package datadog

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

func TestSendBody(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			f := startFake(t, ddfake.Options{APIKeys: []string{apiKey}})
			s := newSink(t, Config{URL: f.URL, Gzip: gz, Tags: " env:prod, team:platform ,,", Hostname: "h1"})
			recs := records(t, 2*len(sinktest.Awkward), 300)
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
			if r.Method != "POST" || r.Path != "/api/v2/logs" || r.Header.Get("DD-API-KEY") != apiKey ||
				r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Content-Encoding") != wantEnc {
				t.Errorf("request %s %s %v", r.Method, r.Path, r.Header)
			}

			// The body, byte for byte.
			var logs []string
			for _, rec := range recs {
				logs = append(logs, fmt.Sprintf(`{"ddsource":"declaragent:audit","ddtags":"env:prod,team:platform","hostname":"h1","service":"declaragent",`+
					`"message":%s,"timestamp":%d,"seq":"%d","tenantId":"acme","kind":"tool_call","recordHash":"%s","prevHash":"%s"}`,
					sinktest.JSONString(string(rec.Line)), rec.TS, rec.Seq, rec.Hash, rec.PrevHash))
			}
			if want := "[" + strings.Join(logs, ",") + "]"; string(r.Body) != want {
				t.Fatalf("body:\n got %s\nwant %s", r.Body, want)
			}

			// Decoded independently: the message is the record line byte
			// for byte, every attribute but timestamp is a string.
			var got []map[string]any
			dec := json.NewDecoder(strings.NewReader(string(r.Body)))
			dec.UseNumber()
			if err := dec.Decode(&got); err != nil || len(got) != len(recs) {
				t.Fatalf("decode body: %d logs, %v", len(got), err)
			}
			for i, l := range got {
				rec := recs[i]
				if l["message"] != string(rec.Line) {
					t.Fatalf("log %d message:\n got %q\nwant %q", i, l["message"], rec.Line)
				}
				if l["timestamp"] != json.Number(fmt.Sprint(rec.TS)) {
					t.Errorf("log %d timestamp %v, want %d", i, l["timestamp"], rec.TS)
				}
				for k, v := range l {
					if _, ok := v.(string); !ok && k != "timestamp" {
						t.Errorf("log %d attribute %s = %v (%T) is not a string", i, k, v, v)
					}
				}
				want := map[string]any{"seq": fmt.Sprint(rec.Seq), "tenantId": "acme", "kind": "tool_call", "recordHash": rec.Hash, "prevHash": rec.PrevHash,
					"ddsource": "declaragent:audit", "service": "declaragent", "hostname": "h1", "ddtags": "env:prod,team:platform"}
				for k, v := range want {
					if l[k] != v {
						t.Errorf("log %d %s = %v, want %v", i, k, l[k], v)
					}
				}
				if len(l) != len(want)+2 {
					t.Errorf("log %d has %d attributes: %v", i, len(l), l)
				}
			}
			if msgs := f.Messages(); !slices.Equal(msgs, lines(recs)) {
				t.Fatalf("stored messages differ from the record lines")
			}
		})
	}
}

func lines(recs []sink.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Line)
	}
	return out
}

func TestSendDefaultsLeaveOutEmpty(t *testing.T) {
	f := startFake(t, ddfake.Options{})
	s := newSink(t, Config{URL: f.URL, Service: "svc", Source: "src"})
	s.meta = appendMeta(nil, s.cfg.Source, s.cfg.Tags, "", s.cfg.Service) // as if os.Hostname failed
	if _, err := s.Send(context.Background(), records(t, 1, 100)); err != nil {
		t.Fatal(err)
	}
	raw := f.Logs()[0].Raw
	if !strings.HasPrefix(raw, `{"ddsource":"src","service":"svc","message":`) {
		t.Fatalf("log %s: want no ddtags, no hostname", raw)
	}
}

// sized returns a record whose log in s is exactly n bytes.
func sized(t *testing.T, s *Sink, n int, ts int64) sink.Record {
	t.Helper()
	r := chainRecords(t, 1, 2000, ts, "")[0]
	l := len(appendLog(nil, s.meta, &r))
	r = chainRecords(t, 1, 2000+n-l, ts, "")[0]
	if got := len(appendLog(nil, s.meta, &r)); got != n {
		t.Fatalf("sized record: log of %d bytes, want %d", got, n)
	}
	return r
}

// TestOversizeLog: a log over 1 MB is never sent (Datadog would truncate
// it); it is Poison with its size, and the rest go.
func TestOversizeLog(t *testing.T) {
	f := startFake(t, ddfake.Options{})
	s := newSink(t, Config{URL: f.URL, Gzip: true})
	recs := []sink.Record{
		sized(t, s, 700, 1764244800000),
		sized(t, s, MaxLogBytes+1, 1764244800001),
		sized(t, s, MaxLogBytes, 1764244800002),
		sized(t, s, 5*MaxLogBytes, 1764244800003),
	}
	res, err := s.Send(context.Background(), recs)
	if err != nil || !slices.Equal(res.Status, statuses(sink.Delivered, sink.Poison, sink.Delivered, sink.Poison)) {
		t.Fatalf("Send: %v %v", res.Status, err)
	}
	want := fmt.Sprintf("too large: not sent: record is %d bytes, over Datadog's 1 MB per-log limit (Datadog would truncate it and break the chain)", MaxLogBytes+1)
	if res.Reason[1] != want || !strings.Contains(res.Reason[3], fmt.Sprint(5*MaxLogBytes)) || res.Reason[0] != "" || res.Reason[2] != "" {
		t.Fatalf("Reason = %q", res.Reason)
	}
	logs := f.Logs()
	if len(logs) != 2 || logs[0].Message != string(recs[0].Line) || logs[1].Message != string(recs[2].Line) || logs[1].Truncated {
		t.Fatalf("stored %d logs, want records 0 and 2 whole", len(logs))
	}
	// Only oversize records: nothing to send, no request.
	n := len(f.Requests())
	res, err = s.Send(context.Background(), recs[1:2])
	if err != nil || res.Status[0] != sink.Poison || len(f.Requests()) != n {
		t.Fatalf("all oversize: %v %v, %d requests", res.Status, err, len(f.Requests())-n)
	}
}

// TestTooLarge: more than 1000 logs or 5 MB is TooLarge without a
// request; exactly the limits go.
func TestTooLarge(t *testing.T) {
	f := startFake(t, ddfake.Options{})
	s := newSink(t, Config{URL: f.URL, Gzip: true})
	big := func(n int) []sink.Record {
		out := make([]sink.Record, n)
		for i := range out {
			out[i] = sized(t, s, 900_000, 1764244800000+int64(i))
		}
		return out
	}
	many := records(t, MaxLogs+1, 120)
	tests := []struct {
		name    string
		recs    []sink.Record
		wantErr bool
	}{
		{name: "1001 logs", recs: many, wantErr: true},
		{name: "1000 logs", recs: many[:MaxLogs]},
		{name: "6 x 900 kB", recs: big(6), wantErr: true},
		{name: "5 x 900 kB", recs: big(5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.Reset()
			res, err := s.Send(context.Background(), tt.recs)
			if !tt.wantErr {
				if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, len(tt.recs))) || len(f.Logs()) != len(tt.recs) {
					t.Fatalf("Send: %v, %d stored", err, len(f.Logs()))
				}
				return
			}
			sinktest.CheckErr(t, err, &sinktest.Failure{Class: sink.TooLarge, Status: 0, Contains: []string{"over Datadog's limits", "nothing sent"}})
			if !slices.Equal(res.Status, repeat(sink.Pending, len(tt.recs))) {
				t.Errorf("Status %v", res.Status)
			}
			if n := len(f.Requests()); n != 0 {
				t.Fatalf("%d requests sent", n)
			}
		})
	}
	// An oversize record among them is still Poison, the rest TooLarge.
	f.Reset()
	recs := append([]sink.Record{sized(t, s, MaxLogBytes+10, 1764244800000)}, many...)
	res, err := s.Send(context.Background(), recs)
	sinktest.CheckErr(t, err, &sinktest.Failure{Class: sink.TooLarge})
	if res.Status[0] != sink.Poison || res.Status[1] != sink.Pending || len(f.Requests()) != 0 {
		t.Fatalf("Status[:2] = %v, %d requests", res.Status[:2], len(f.Requests()))
	}
}

func TestSendOutcomes(t *testing.T) {
	intake := func(f ddfake.Fault) func(*ddfake.Request) ddfake.Fault {
		return func(r *ddfake.Request) ddfake.Fault {
			if r.Path == "/api/v2/logs" {
				return f
			}
			return ddfake.Fault{}
		}
	}
	poison := func(l *ddfake.Log) bool { return strings.Contains(l.Message, "POISON") }
	later := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	P := sink.Pending
	tests := []struct {
		name     string
		opts     ddfake.Options
		cfg      Config
		n        int
		poisonAt int
		want     []sink.Status
		wantErr  *sinktest.Failure
		stored   int
	}{
		{name: "202", n: 3, poisonAt: -1, want: repeat(sink.Delivered, 3), stored: 3},
		{name: "400 poison: bisect", opts: ddfake.Options{Poison: poison}, n: 4, poisonAt: 2, want: repeat(P, 4),
			wantErr: &sinktest.Failure{Class: sink.BadRequest, Status: 400, Contains: []string{"Bad Request: log 2 was rejected"}}, stored: 2},
		{name: "401 no key accepted", opts: ddfake.Options{Fault: intake(ddfake.Fault{Status: 401})}, n: 1, poisonAt: -1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 401, Contains: []string{"API key from file:", "was refused", "re-read"}}},
		{name: "403 wrong key", opts: ddfake.Options{APIKeys: []string{newAPIKey}}, n: 2, poisonAt: -1, want: repeat(P, 2),
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 403, Contains: []string{"Forbidden", "was refused"}}},
		{name: "413", opts: ddfake.Options{MaxBytes: 500}, n: 3, poisonAt: -1, want: repeat(P, 3),
			wantErr: &sinktest.Failure{Class: sink.TooLarge, Status: 413, Contains: []string{"too large", "Request Entity Too Large"}}},
		{name: "429 retry-after seconds", opts: ddfake.Options{Fault: intake(ddfake.Fault{Status: 429, RetryAfter: "7"})}, n: 2, poisonAt: -1, want: repeat(P, 2),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 429, RetryAfter: 7, Contains: []string{"Too Many Requests"}}},
		{name: "503 retry-after date", opts: ddfake.Options{Fault: intake(ddfake.Fault{Status: 503, RetryAfter: later})}, n: 1, poisonAt: -1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 503, RetryAfter: 90}},
		{name: "500", opts: ddfake.Options{Fault: intake(ddfake.Fault{Status: 500})}, n: 1, poisonAt: -1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 500}},
		{name: "408", opts: ddfake.Options{Fault: intake(ddfake.Fault{Status: 408})}, n: 1, poisonAt: -1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 408}},
		{name: "502 from a proxy echoing the key", opts: ddfake.Options{Fault: func(r *ddfake.Request) ddfake.Fault {
			return ddfake.Fault{Status: 502, Body: "<html>bad gateway key=" + r.Header.Get("DD-API-KEY") + strings.Repeat(" filler", 200) + "</html>"}
		}}, n: 1, poisonAt: -1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 502, Contains: []string{"bad gateway", "key=[secret]"}}},
		{name: "404", cfg: Config{URL: "/nothing"}, n: 1, poisonAt: -1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 404, Contains: []string{"no Datadog logs intake at", "/nothing"}}},
		{name: "redirect not followed", opts: ddfake.Options{Fault: intake(ddfake.Fault{Status: 301, Body: " ", Header: http.Header{"Location": {"https://elsewhere.example/api/v2/logs"}}})},
			n: 1, poisonAt: -1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Config, Status: 301, Contains: []string{"elsewhere.example", "not followed"}}},
		{name: "other 4xx", opts: ddfake.Options{Fault: intake(ddfake.Fault{Status: 422})}, n: 1, poisonAt: -1, want: repeat(P, 1),
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 422}},
		{name: "connection dropped", opts: ddfake.Options{Fault: intake(ddfake.Fault{Drop: true})}, n: 2, poisonAt: -1, want: repeat(P, 2),
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 0}},
		{name: "timeout", opts: ddfake.Options{Fault: intake(ddfake.Fault{Delay: 2 * time.Second})}, cfg: Config{Conn: sink.Conn{Timeout: 100 * time.Millisecond}},
			n: 1, poisonAt: -1, want: repeat(P, 1), wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 0, Contains: []string{"no complete response within 100ms"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.opts)
			cfg := tt.cfg
			cfg.URL = f.URL + cfg.URL
			cfg.Gzip = true
			s := newSink(t, cfg)
			recs := records(t, tt.n, 300)
			if tt.poisonAt >= 0 {
				r := &recs[tt.poisonAt]
				r.Line = []byte(strings.Replace(string(r.Line), `"msg":"`, `"msg":"POISON `, 1))
			}
			res, err := s.Send(context.Background(), recs)
			noSecret(t, err)
			t.Logf("err: %v", err)
			if !slices.Equal(res.Status, tt.want) {
				t.Errorf("Status = %v, want %v", res.Status, tt.want)
			}
			if n := len(f.Logs()); n != tt.stored {
				t.Errorf("stored %d logs, want %d", n, tt.stored)
			}
			sinktest.CheckErr(t, err, tt.wantErr)
		})
	}
}

// TestRotation: after a 403 the key is read again; a rotated key is used
// at once, with no restart and no error.
func TestRotation(t *testing.T) {
	f := startFake(t, ddfake.Options{APIKeys: []string{apiKey}})
	src, path := keySource(t, apiKey)
	s := newSink(t, Config{URL: f.URL, APIKey: src})
	if res, err := s.Send(context.Background(), records(t, 1, 100)); err != nil || res.Status[0] != sink.Delivered {
		t.Fatalf("before rotation: %v %v", res.Status, err)
	}
	f.SetAPIKeys(newAPIKey)
	rotate(t, path, newAPIKey)
	res, err := s.Send(context.Background(), records(t, 2, 100))
	if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, 2)) {
		t.Fatalf("after rotation: %v %v", res.Status, err)
	}
	reqs := f.Requests()
	if len(reqs) != 3 || reqs[1].Header.Get("DD-API-KEY") != apiKey || reqs[2].Header.Get("DD-API-KEY") != newAPIKey {
		t.Fatalf("%d requests; want the old key refused, then the new one", len(reqs))
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check with the new key: %v", err)
	}
	// Rotated on the server but not in the file: Config, naming the file.
	f.SetAPIKeys(apiKey + "x")
	_, err = s.Send(context.Background(), records(t, 1, 100))
	noSecret(t, err)
	sinktest.CheckErr(t, err, &sinktest.Failure{Class: sink.Config, Status: 403, Contains: []string{"file:" + path, "re-read after the refusal"}})
}

func TestNew(t *testing.T) {
	key, _ := keySource(t, apiKey)
	tests := []struct {
		name       string
		cfg        Config
		wantErr    string
		wantIntake string
		wantCheck  string
	}{
		{name: "default site", cfg: Config{},
			wantIntake: "https://http-intake.logs.datadoghq.com/api/v2/logs", wantCheck: "https://api.datadoghq.com/api/v1/validate"},
		{name: "eu", cfg: Config{Site: "datadoghq.eu"},
			wantIntake: "https://http-intake.logs.datadoghq.eu/api/v2/logs", wantCheck: "https://api.datadoghq.eu/api/v1/validate"},
		{name: "us3 any case", cfg: Config{Site: " US3.datadoghq.com "},
			wantIntake: "https://http-intake.logs.us3.datadoghq.com/api/v2/logs", wantCheck: "https://api.us3.datadoghq.com/api/v1/validate"},
		{name: "us5", cfg: Config{Site: "us5.datadoghq.com"}, wantIntake: "https://http-intake.logs.us5.datadoghq.com/api/v2/logs", wantCheck: "https://api.us5.datadoghq.com/api/v1/validate"},
		{name: "ap1", cfg: Config{Site: "ap1.datadoghq.com"}, wantIntake: "https://http-intake.logs.ap1.datadoghq.com/api/v2/logs", wantCheck: "https://api.ap1.datadoghq.com/api/v1/validate"},
		{name: "ap2", cfg: Config{Site: "ap2.datadoghq.com"}, wantIntake: "https://http-intake.logs.ap2.datadoghq.com/api/v2/logs", wantCheck: "https://api.ap2.datadoghq.com/api/v1/validate"},
		{name: "gov", cfg: Config{Site: "ddog-gov.com"}, wantIntake: "https://http-intake.logs.ddog-gov.com/api/v2/logs", wantCheck: "https://api.ddog-gov.com/api/v1/validate"},
		{name: "unknown site", cfg: Config{Site: "app.datadoghq.eu"}, wantErr: `unknown site "app.datadoghq.eu"`},
		{name: "URL override", cfg: Config{URL: "http://127.0.0.1:9428/"},
			wantIntake: "http://127.0.0.1:9428/api/v2/logs", wantCheck: "http://127.0.0.1:9428/api/v1/validate"},
		{name: "URL override with intake path", cfg: Config{URL: "https://proxy.example/dd/api/v2/logs"},
			wantIntake: "https://proxy.example/dd/api/v2/logs", wantCheck: "https://proxy.example/dd/api/v1/validate"},
		{name: "no key", cfg: Config{}, wantErr: "no API key"},
		{name: "http to remote refused", cfg: Config{URL: "http://dd-proxy.example:8080"}, wantErr: "refusing to send the API key and the audit log over plain http to dd-proxy.example:8080"},
		{name: "http to remote allowed", cfg: Config{URL: "http://dd-proxy.example:8080", Conn: sink.Conn{AllowInsecureHTTP: true}},
			wantIntake: "http://dd-proxy.example:8080/api/v2/logs", wantCheck: "http://dd-proxy.example:8080/api/v1/validate"},
		{name: "TLS options on http", cfg: Config{URL: "http://127.0.0.1:1", Conn: sink.Conn{CAFile: "ca.pem"}}, wantErr: "plain http"},
		{name: "bad scheme", cfg: Config{URL: "ftp://x"}, wantErr: "scheme must be https"},
		{name: "credentials in URL", cfg: Config{URL: "https://u:" + apiKey + "@x.example"}, wantErr: "carries credentials"},
		{name: "query in URL", cfg: Config{URL: "https://x.example/?dd-api-key=" + apiKey}, wantErr: "has a query"},
		{name: "cert without key", cfg: Config{Conn: sink.Conn{CertFile: "c.pem"}}, wantErr: "both CertFile and KeyFile"},
		{name: "missing CA file", cfg: Config{Conn: sink.Conn{CAFile: "/nonexistent/ca.pem"}}, wantErr: "read CA file"},
		{name: "control character in tags", cfg: Config{Tags: "env:prod,te\x01am:x"}, wantErr: "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if tt.name != "no key" {
				cfg.APIKey = key
			}
			s, err := New(cfg)
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
			if s.intakeURL != tt.wantIntake || s.validateURL != tt.wantCheck {
				t.Errorf("intake %s, check %s; want %s, %s", s.intakeURL, s.validateURL, tt.wantIntake, tt.wantCheck)
			}
			if s.cfg.Service != DefaultService || s.cfg.Source != DefaultSource || s.cfg.Timeout != DefaultTimeout {
				t.Errorf("defaults not applied: %+v", s.cfg)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	validate := func(f ddfake.Fault) func(*ddfake.Request) ddfake.Fault {
		return func(r *ddfake.Request) ddfake.Fault {
			if r.Path == "/api/v1/validate" {
				return f
			}
			return ddfake.Fault{}
		}
	}
	tests := []struct {
		name      string
		opts      ddfake.Options
		wantErr   *sinktest.Failure
		wantPaths []string
	}{
		{name: "valid key", opts: ddfake.Options{APIKeys: []string{apiKey}}, wantPaths: []string{"GET /api/v1/validate"}},
		{name: "wrong key", opts: ddfake.Options{APIKeys: []string{newAPIKey}},
			wantErr:   &sinktest.Failure{Class: sink.Config, Status: 403, RetryAfter: -1, Contains: []string{"API key from file:", "was refused", "Forbidden"}},
			wantPaths: []string{"GET /api/v1/validate"}},
		{name: "valid:false", opts: ddfake.Options{Fault: validate(ddfake.Fault{Status: 200, Body: `{"valid":false}`})},
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 200, RetryAfter: -1, Contains: []string{"was refused"}}, wantPaths: []string{"GET /api/v1/validate"}},
		{name: "VictoriaLogs-like {}", opts: ddfake.Options{Fault: validate(ddfake.Fault{Status: 200, Body: `{}`})}, wantPaths: []string{"GET /api/v1/validate"}},
		{name: "not JSON", opts: ddfake.Options{Fault: validate(ddfake.Fault{Status: 200, Body: `<html>hi</html>`})},
			wantErr: &sinktest.Failure{Class: sink.Config, Status: 200, RetryAfter: -1, Contains: []string{`not with Datadog's {"valid":true}`}}, wantPaths: []string{"GET /api/v1/validate"}},
		{name: "no validate endpoint: falls back to an empty POST", opts: ddfake.Options{Fault: validate(ddfake.Fault{Status: 404})},
			wantPaths: []string{"GET /api/v1/validate", "POST /api/v2/logs"}},
		{name: "no validate endpoint, key refused by the intake", opts: ddfake.Options{APIKeys: []string{newAPIKey}, Fault: validate(ddfake.Fault{Status: 404})},
			wantErr:   &sinktest.Failure{Class: sink.Config, Status: 403, RetryAfter: -1, Contains: []string{"was refused"}},
			wantPaths: []string{"GET /api/v1/validate", "POST /api/v2/logs"}},
		{name: "nothing there", opts: ddfake.Options{Fault: func(*ddfake.Request) ddfake.Fault { return ddfake.Fault{Status: 404} }},
			wantErr:   &sinktest.Failure{Class: sink.Config, Status: 404, RetryAfter: -1, Contains: []string{"no key validation at", "no Datadog logs intake"}},
			wantPaths: []string{"GET /api/v1/validate", "POST /api/v2/logs"}},
		{name: "503", opts: ddfake.Options{Fault: validate(ddfake.Fault{Status: 503, RetryAfter: "4"})},
			wantErr: &sinktest.Failure{Class: sink.Retryable, Status: 503, RetryAfter: 4, Contains: []string{"key check"}}, wantPaths: []string{"GET /api/v1/validate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.opts)
			s := newSink(t, Config{URL: f.URL})
			err := s.Check(context.Background())
			noSecret(t, err)
			t.Logf("Check: %v", err)
			sinktest.CheckErr(t, err, tt.wantErr)
			var paths []string
			for _, r := range f.Requests() {
				paths = append(paths, r.Method+" "+r.Path)
				if r.Header.Get("DD-API-KEY") != apiKey {
					t.Errorf("%s %s without the key", r.Method, r.Path)
				}
			}
			// A refused key is re-read and, unchanged, not sent again.
			if !slices.Equal(paths, tt.wantPaths) {
				t.Errorf("requests %q, want %q", paths, tt.wantPaths)
			}
			if n := len(f.Logs()); n != 0 {
				t.Errorf("Check stored %d logs", n)
			}
		})
	}
	t.Run("real site 404 is an error", func(t *testing.T) {
		s := newSink(t, Config{})
		r := &httpsink.Reply{Status: 404, Body: []byte(`{"errors":["Not Found"]}`)}
		e := s.statusError(r)
		if e.Class != sink.Config || !strings.Contains(e.Msg, "check Site or URL") {
			t.Fatalf("%v", e)
		}
	})
}
