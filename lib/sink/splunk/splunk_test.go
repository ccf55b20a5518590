package splunk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

const (
	token    = "11111111-2222-3333-4444-555555555555"
	newToken = "66666666-7777-8888-9999-000000000000"
)

// tokenSource writes tok to a file and returns a Source reading it, and
// the file's path for rotation.
func tokenSource(t *testing.T, tok string) (*secret.Source, string) {
	return sinktest.SecretFile(t, "hec-token", tok)
}

func rotate(t *testing.T, path, tok string) { sinktest.Rotate(t, path, tok) }

// records returns n chained record lines, each about size bytes.
func records(n, size int) []sink.Record { return recordsAt(n, size, 1764244800123) }

// recordsAt is records with the first ts given (milliseconds).
func recordsAt(n, size int, ts0 int64) []sink.Record { return sinktest.Records(n, size, ts0, "") }

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	if cfg.Token == nil {
		cfg.Token, _ = tokenSource(t, token)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func startFake(t *testing.T, opts hecfake.Options) *hecfake.Server {
	t.Helper()
	f := hecfake.New(opts)
	t.Cleanup(f.Close)
	return f
}

func statuses(ss ...sink.Status) []sink.Status { return ss }

func repeat(s sink.Status, n int) []sink.Status { return slices.Repeat([]sink.Status{s}, n) }

// noSecret fails if the error text holds a token.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, tok := range []string{token, newToken} {
		if strings.Contains(err.Error(), tok) {
			t.Fatalf("error leaks the token: %v", err)
		}
	}
}

func TestSendBody(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			var (
				mu     sync.Mutex
				bodies [][]byte
				hdrs   []http.Header
			)
			f := startFake(t, hecfake.Options{Tokens: []string{token}, Fault: func(r *hecfake.Request) hecfake.Fault {
				mu.Lock()
				bodies = append(bodies, r.Body)
				hdrs = append(hdrs, r.Header)
				mu.Unlock()
				return hecfake.Fault{}
			}})
			s := newSink(t, Config{URL: f.URL, Gzip: gz, Index: "audit", Source: "auditpipe", Host: "h1"})
			recs := records(len(sinktest.Awkward), 300)
			res, err := s.Send(context.Background(), recs)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !slices.Equal(res.Status, repeat(sink.Delivered, len(recs))) {
				t.Fatalf("Status = %v", res.Status)
			}

			// Headers.
			h := hdrs[0]
			wantEnc := ""
			if gz {
				wantEnc = "gzip"
			}
			if h.Get("Authorization") != "Splunk "+token || h.Get("Content-Type") != "application/json" ||
				h.Get("Content-Encoding") != wantEnc || h.Get("X-Splunk-Request-Channel") != "" {
				t.Fatalf("headers: %v", h)
			}

			// The body, byte for byte: events joined by "\n", no trailing newline.
			var want []string
			for _, r := range recs {
				ev, _ := json.Marshal(string(r.Line))
				want = append(want, fmt.Sprintf(`{"time":%d.%03d,"host":"h1","source":"auditpipe","sourcetype":"declaragent:audit","index":"audit","event":%s,"fields":{"seq":"%d","tenantId":"acme","kind":"tool_call","recordHash":"%s"}}`,
					r.TS/1000, r.TS%1000, ev, r.Seq, r.Hash))
			}
			// encoding/json escapes <, >, & and U+2028/9; the sink keeps them.
			wantBody := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&", `\u2028`, "\u2028", `\u2029`, "\u2029").
				Replace(strings.Join(want, "\n"))
			if string(bodies[0]) != wantBody {
				t.Fatalf("body:\n got %s\nwant %s", bodies[0], wantBody)
			}

			// Decoded with encoding/json: the event string is the record line.
			evs := f.Events()
			if len(evs) != len(recs) {
				t.Fatalf("server stored %d events, want %d", len(evs), len(recs))
			}
			for i, e := range evs {
				var m struct {
					Time       json.Number       `json:"time"`
					Event      string            `json:"event"`
					Fields     map[string]string `json:"fields"`
					Sourcetype string            `json:"sourcetype"`
				}
				if err := json.Unmarshal([]byte(e.Raw), &m); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if m.Event != string(recs[i].Line) || !e.IsString {
					t.Fatalf("event %d:\n got %q\nwant %q", i, m.Event, recs[i].Line)
				}
				if want := fmt.Sprintf("%d.%03d", recs[i].TS/1000, recs[i].TS%1000); m.Time.String() != want {
					t.Fatalf("time = %s, want %s", m.Time, want)
				}
				wantFields := map[string]string{"seq": fmt.Sprint(recs[i].Seq), "tenantId": "acme", "kind": "tool_call", "recordHash": recs[i].Hash}
				if fmt.Sprint(m.Fields) != fmt.Sprint(wantFields) {
					t.Fatalf("fields = %v, want %v", m.Fields, wantFields)
				}
				if e.Gzip != gz {
					t.Fatalf("gzip = %v", e.Gzip)
				}
			}
		})
	}
}

func TestSendDefaults(t *testing.T) {
	f := startFake(t, hecfake.Options{})
	s := newSink(t, Config{URL: strings.TrimSuffix(f.URL, "/")}) // no path: DefaultPath
	recs := records(1, 200)
	recs[0].TS = 0 // no time: HEC stamps arrival
	recs[0].Kind = ""
	if _, err := s.Send(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	e := f.Events()[0]
	if e.Sourcetype != DefaultSourcetype || e.Host != host || e.Index != "" || e.Source != "" || e.Time != "" {
		t.Fatalf("event metadata: %+v", e)
	}
	if _, ok := e.Fields["kind"]; ok {
		t.Fatalf("empty kind sent as a field: %v", e.Fields)
	}
	if c := f.Counts(); c.Event != 1 {
		t.Fatalf("counts %+v", c)
	}
	// Zero records: no request.
	res, err := s.Send(context.Background(), nil)
	if err != nil || len(res.Status) != 0 || f.Counts().Event != 1 {
		t.Fatalf("empty Send: %v %v %+v", res, err, f.Counts())
	}
}

// failure is the expected *sink.Error of a case (nil: no error).
type failure struct {
	class      sink.Class
	status     int
	code       int
	retryAfter time.Duration
	contains   []string
}

func TestSendOutcomes(t *testing.T) {
	poison := func(e *hecfake.Event) bool { return strings.Contains(e.Event, "POISON") }
	fault := func(f hecfake.Fault) func(*hecfake.Request) hecfake.Fault {
		return func(r *hecfake.Request) hecfake.Fault {
			if r.Path == "/services/collector/event" {
				return f
			}
			return hecfake.Fault{}
		}
	}
	later := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	P, D, X := sink.Pending, sink.Delivered, sink.Poison
	tests := []struct {
		name       string
		opts       hecfake.Options
		cfg        Config
		n          int
		poisonAt   int // record whose line gets the POISON marker, -1 none
		want       []sink.Status
		wantReason string // in Reason of the poison record
		wantErr    *failure
		wantStored int
	}{
		{name: "ok", n: 3, poisonAt: -1, want: statuses(D, D, D), wantStored: 3},
		{name: "invalid token 403 code 4", opts: hecfake.Options{Tokens: []string{newToken}}, n: 2, poisonAt: -1,
			want: statuses(P, P), wantErr: &failure{class: sink.Config, status: 403, code: 4, contains: []string{"Invalid token", "file:"}}},
		{name: "disabled token 403 code 1", opts: hecfake.Options{DisabledTokens: []string{token}}, n: 2, poisonAt: -1,
			want: statuses(P, P), wantErr: &failure{class: sink.Config, status: 403, code: 1, contains: []string{"Token disabled"}}},
		{name: "401 code 3", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 401, Code: 3, Text: "Invalid authorization"})}, n: 2, poisonAt: -1,
			want: statuses(P, P), wantErr: &failure{class: sink.Config, status: 401, code: 3}},
		{name: "poison at 2", opts: hecfake.Options{Poison: poison}, n: 5, poisonAt: 2,
			want: statuses(D, D, X, P, P), wantReason: "HEC code 6: Invalid data format", wantStored: 2},
		{name: "poison at 0", opts: hecfake.Options{Poison: poison}, n: 3, poisonAt: 0,
			want: statuses(X, P, P), wantReason: "code 6", wantStored: 0},
		{name: "poison at last", opts: hecfake.Options{Poison: poison}, n: 3, poisonAt: 2,
			want: statuses(D, D, X), wantReason: "code 6", wantStored: 2},
		{name: "poison with indexer ack: earlier records stay pending", opts: hecfake.Options{Poison: poison, IndexerAck: true},
			cfg: Config{IndexerAck: true}, n: 4, poisonAt: 1, want: statuses(P, X, P, P), wantReason: "code 6", wantStored: 1},
		{name: "code 6 position out of range", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 400, Body: `{"text":"Invalid data format","code":6,"invalid-event-number":9}`})},
			n: 2, poisonAt: -1, want: statuses(P, P), wantErr: &failure{class: sink.BadRequest, status: 400, code: 6}},
		{name: "code 6 without position", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 400, Code: 6})},
			n: 2, poisonAt: -1, want: statuses(P, P), wantErr: &failure{class: sink.BadRequest, status: 400, code: 6}},
		{name: "code 5 no data", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 400, Code: 5, Text: "No data"})},
			n: 2, poisonAt: -1, want: statuses(P, P), wantErr: &failure{class: sink.BadRequest, status: 400, code: 5}},
		{name: "incorrect index", opts: hecfake.Options{AllowedIndexes: []string{"main"}}, cfg: Config{Index: "tenant_acme"},
			n: 2, poisonAt: -1, want: statuses(P, P), wantErr: &failure{class: sink.Config, status: 400, code: 7, contains: []string{`index "tenant_acme"`, "Incorrect index"}}},
		{name: "token requires a channel", opts: hecfake.Options{IndexerAck: true}, n: 1, poisonAt: -1,
			want: statuses(P), wantErr: &failure{class: sink.Config, status: 400, code: 10, contains: []string{"--indexer-ack"}}},
		{name: "ack wanted but disabled on token", cfg: Config{IndexerAck: true}, n: 1, poisonAt: -1,
			want: statuses(P), wantErr: &failure{class: sink.Config, status: 200, code: 0, contains: []string{"no ackId"}}, wantStored: 1},
		{name: "413", opts: hecfake.Options{MaxContentLength: 100}, n: 3, poisonAt: -1,
			want: statuses(P, P, P), wantErr: &failure{class: sink.TooLarge, status: 413, code: -1, contains: []string{"too large"}}},
		{name: "503 busy retry-after seconds", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 503, Code: 9, Text: "Server is busy", RetryAfter: "2"})},
			n: 2, poisonAt: -1, want: statuses(P, P), wantErr: &failure{class: sink.Retryable, status: 503, code: 9, retryAfter: 2 * time.Second}},
		{name: "429 retry-after date", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 429, Code: -1, RetryAfter: later})},
			n: 1, poisonAt: -1, want: statuses(P), wantErr: &failure{class: sink.Retryable, status: 429, code: -1, retryAfter: 90 * time.Second}},
		{name: "500 internal", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 500, Code: 8})},
			n: 1, poisonAt: -1, want: statuses(P), wantErr: &failure{class: sink.Retryable, status: 500, code: 8}},
		{name: "408", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 408, Body: "timeout"})},
			n: 1, poisonAt: -1, want: statuses(P), wantErr: &failure{class: sink.Retryable, status: 408, code: -1}},
		{name: "502 from a proxy echoing the token, long HTML", opts: hecfake.Options{Fault: func(r *hecfake.Request) hecfake.Fault {
			return hecfake.Fault{Status: 502, Body: "<html>bad gateway " + r.Header.Get("Authorization") + strings.Repeat(" filler", 200) + "</html>"}
		}}, n: 1, poisonAt: -1, want: statuses(P), wantErr: &failure{class: sink.Retryable, status: 502, code: -1, contains: []string{"bad gateway", "[token]"}}},
		{name: "redirect not followed", opts: hecfake.Options{Fault: fault(hecfake.Fault{Status: 307, Body: " ", Header: http.Header{"Location": {"http://u:p@elsewhere.example/x"}}})},
			n: 1, poisonAt: -1, want: statuses(P), wantErr: &failure{class: sink.Config, status: 307, code: -1, contains: []string{"elsewhere.example", "not followed"}}},
		{name: "404 wrong path", cfg: Config{URL: "/prefix/services/collector/event"}, n: 1, poisonAt: -1,
			want: statuses(P), wantErr: &failure{class: sink.Config, status: 404, code: 404, contains: []string{"check the URL"}}},
		{name: "connection dropped", opts: hecfake.Options{Fault: fault(hecfake.Fault{Drop: true})}, n: 2, poisonAt: -1,
			want: statuses(P, P), wantErr: &failure{class: sink.Retryable, status: 0, code: -1}},
		{name: "timeout", opts: hecfake.Options{Fault: fault(hecfake.Fault{Delay: 2 * time.Second})}, cfg: Config{Conn: sink.Conn{Timeout: 100 * time.Millisecond}},
			n: 1, poisonAt: -1, want: statuses(P), wantErr: &failure{class: sink.Retryable, status: 0, code: -1, contains: []string{"no complete response within 100ms"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.opts)
			cfg := tt.cfg
			cfg.URL = f.URL + cfg.URL
			cfg.Gzip = true
			cfg.AckPoll = 20 * time.Millisecond
			s := newSink(t, cfg)
			recs := records(tt.n, 300)
			if tt.poisonAt >= 0 {
				r := &recs[tt.poisonAt]
				r.Line = []byte(strings.Replace(string(r.Line), `"msg":"`, `"msg":"POISON `, 1))
			}
			res, err := s.Send(context.Background(), recs)
			noSecret(t, err)
			t.Logf("err: %v; reasons: %q", err, res.Reason)
			if !slices.Equal(res.Status, tt.want) {
				t.Errorf("Status = %v, want %v", res.Status, tt.want)
			}
			for i, st := range res.Status {
				if st == sink.Poison {
					if !strings.Contains(res.Reason[i], tt.wantReason) {
						t.Errorf("Reason[%d] = %q, want it to contain %q", i, res.Reason[i], tt.wantReason)
					}
				} else if res.Reason[i] != "" {
					t.Errorf("Reason[%d] = %q for a %v record", i, res.Reason[i], st)
				}
			}
			if got := len(f.Events()); got != tt.wantStored {
				t.Errorf("server stored %d events, want %d", got, tt.wantStored)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var se *sink.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *sink.Error", err, err)
			}
			w := tt.wantErr
			if se.Class != w.class || se.HTTPStatus != w.status || se.Code != w.code {
				t.Errorf("err = %v: class %v status %d code %d, want %v %d %d", err, se.Class, se.HTTPStatus, se.Code, w.class, w.status, w.code)
			}
			if d := se.RetryAfter - w.retryAfter; d < -2*time.Second || d > 0 || (w.retryAfter == 0) != (se.RetryAfter == 0) {
				t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, w.retryAfter)
			}
			for _, c := range w.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("err %q does not contain %q", err, c)
				}
			}
			if len(se.Msg) > httpsink.MaxMessage+200 {
				t.Errorf("message of %d bytes is not truncated", len(se.Msg))
			}
		})
	}
}

func TestTokenRotation(t *testing.T) {
	// The server rotates to newToken; the secret file follows.
	on401 := func(r *hecfake.Request) hecfake.Fault {
		if r.Header.Get("Authorization") != "Splunk "+newToken {
			return hecfake.Fault{Status: 401, Code: 3, Text: "Invalid authorization"}
		}
		return hecfake.Fault{}
	}
	tests := []struct {
		name string
		opts hecfake.Options
	}{
		{"403 invalid token", hecfake.Options{Tokens: []string{newToken}}},
		{"401 invalid authorization", hecfake.Options{Fault: on401}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.opts)
			src, path := tokenSource(t, token)
			s := newSink(t, Config{URL: f.URL, Token: src, Gzip: true})
			recs := records(3, 200)
			ctx := context.Background()

			// Rotated on the server only: a Config error, one request.
			res, err := s.Send(ctx, recs)
			noSecret(t, err)
			var se *sink.Error
			if !errors.As(err, &se) || se.Class != sink.Config {
				t.Fatalf("before the file is rotated: %v", err)
			}
			if !slices.Equal(res.Status, repeat(sink.Pending, 3)) || f.Counts().Event != 1 {
				t.Fatalf("status %v, counts %+v", res.Status, f.Counts())
			}

			// The file is rotated: the same sink delivers, retrying once.
			rotate(t, path, newToken)
			res, err = s.Send(ctx, recs)
			if err != nil {
				t.Fatalf("after rotation: %v", err)
			}
			if !slices.Equal(res.Status, repeat(sink.Delivered, 3)) {
				t.Fatalf("status %v", res.Status)
			}
			if c := f.Counts(); c.Event != 3 {
				t.Fatalf("event requests = %d, want 3 (refused, refused, retried)", c.Event)
			}
			for _, e := range f.Events() {
				if e.Token != newToken {
					t.Fatalf("stored event sent with the old token")
				}
			}
			// And afterwards, one request per Send.
			if _, err := s.Send(ctx, recs); err != nil || f.Counts().Event != 4 {
				t.Fatalf("next Send: %v, counts %+v", err, f.Counts())
			}
		})
	}
}

func TestRotationConcurrent(t *testing.T) {
	// Several requests fail with the old token at once; each retries with
	// the new one, although only one Refresh sees "changed".
	f := startFake(t, hecfake.Options{Tokens: []string{newToken}})
	src, path := tokenSource(t, token)
	s := newSink(t, Config{URL: f.URL, Token: src})
	rotate(t, path, newToken) // the Source still holds the old value
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), records(2, 100)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(f.Events()); n != 16 {
		t.Fatalf("stored %d events, want 16", n)
	}
}

func TestIndexerAck(t *testing.T) {
	tests := []struct {
		name       string
		ackDelay   time.Duration
		ackTimeout time.Duration
		ackFault   hecfake.Fault // for ack polls
		want       sink.Status
		wantErr    *failure
	}{
		{name: "acked", ackDelay: 100 * time.Millisecond, ackTimeout: 30 * time.Second, want: sink.Delivered},
		{name: "acked at once", want: sink.Delivered, ackTimeout: 30 * time.Second},
		{name: "never acked", ackDelay: time.Hour, ackTimeout: 250 * time.Millisecond, want: sink.Pending,
			wantErr: &failure{class: sink.Retryable, code: -1, contains: []string{"not confirmed within 250ms", "sticky"}}},
		{name: "ack polls busy until timeout", ackTimeout: 250 * time.Millisecond, ackFault: hecfake.Fault{Status: 503, Code: 9}, want: sink.Pending,
			wantErr: &failure{class: sink.Retryable, code: -1, contains: []string{"not confirmed", "503"}}},
		{name: "ack poll refused token", ackTimeout: 5 * time.Second, ackFault: hecfake.Fault{Status: 403, Code: 4, Text: "Invalid token"}, want: sink.Pending,
			wantErr: &failure{class: sink.Config, status: 403, code: 4, contains: []string{"ack poll"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				channels []string
			)
			f := startFake(t, hecfake.Options{IndexerAck: true, AckDelay: tt.ackDelay, Fault: func(r *hecfake.Request) hecfake.Fault {
				mu.Lock()
				defer mu.Unlock()
				channels = append(channels, r.Header.Get("X-Splunk-Request-Channel"))
				if r.Path == "/services/collector/ack" {
					return tt.ackFault
				}
				return hecfake.Fault{}
			}})
			s := newSink(t, Config{URL: f.URL, Gzip: true, IndexerAck: true, AckTimeout: tt.ackTimeout, AckPoll: 20 * time.Millisecond})
			if !guidRE.MatchString(s.Channel()) {
				t.Fatalf("generated channel %q is not a GUID", s.Channel())
			}
			res, err := s.Send(context.Background(), records(3, 200))
			noSecret(t, err)
			t.Logf("err: %v", err)
			if !slices.Equal(res.Status, repeat(tt.want, 3)) {
				t.Errorf("status %v", res.Status)
			}
			c := f.Counts()
			if c.Event != 1 || c.Ack < 1 {
				t.Errorf("counts %+v", c)
			}
			mu.Lock()
			for _, ch := range channels {
				if ch != s.Channel() {
					t.Errorf("a request carried channel %q, want %q", ch, s.Channel())
				}
			}
			mu.Unlock()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *sink.Error
			if !errors.As(err, &se) || se.Class != tt.wantErr.class || se.HTTPStatus != tt.wantErr.status || se.Code != tt.wantErr.code {
				t.Fatalf("err = %v, want %+v", err, tt.wantErr)
			}
			for _, w := range tt.wantErr.contains {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConcurrentSends(t *testing.T) {
	for _, ack := range []bool{false, true} {
		t.Run(fmt.Sprintf("ack=%v", ack), func(t *testing.T) {
			f := startFake(t, hecfake.Options{Tokens: []string{token}, IndexerAck: ack, AckDelay: 30 * time.Millisecond})
			s := newSink(t, Config{URL: f.URL, Gzip: true, IndexerAck: ack, AckPoll: 10 * time.Millisecond, Conn: sink.Conn{MaxIdleConns: 4}})
			const workers, sends, per = 8, 10, 7
			all := records(workers*sends*per, 250)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range sends {
						off := (w*sends + i) * per
						res, err := s.Send(context.Background(), all[off:off+per])
						if err != nil {
							t.Error(err)
							return
						}
						if !slices.Equal(res.Status, repeat(sink.Delivered, per)) {
							t.Errorf("status %v", res.Status)
						}
					}
				})
			}
			wg.Wait()
			got := f.EventStrings()
			var want []string
			for _, r := range all {
				want = append(want, string(r.Line))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("stored %d events, want the %d sent", len(got), len(want))
			}
		})
	}
}

func TestNew(t *testing.T) {
	tok, _ := tokenSource(t, token)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means success
		event   string // wanted event URL
		ack     string
		health  string
	}{
		{name: "host only gets the default path", cfg: Config{URL: "https://splunk.example.com:8088"},
			event: "https://splunk.example.com:8088/services/collector/event",
			ack:   "https://splunk.example.com:8088/services/collector/ack", health: "https://splunk.example.com:8088/services/collector/health"},
		{name: "trailing slash", cfg: Config{URL: "https://splunk.example.com:8088/"}, event: "https://splunk.example.com:8088/services/collector/event"},
		{name: "alias", cfg: Config{URL: "https://s.example.com/services/collector"}, event: "https://s.example.com/services/collector"},
		{name: "1.0", cfg: Config{URL: "https://s.example.com/services/collector/event/1.0"}, event: "https://s.example.com/services/collector/event/1.0",
			health: "https://s.example.com/services/collector/health"},
		{name: "prefix (VictoriaLogs)", cfg: Config{URL: "http://127.0.0.1:9428/insert/splunk/services/collector/event", IndexerAck: true, Channel: "0F8D6C2E-3C1A-4F7E-9B1D-2A5E8C7D9F10"},
			event:  "http://127.0.0.1:9428/insert/splunk/services/collector/event",
			ack:    "http://127.0.0.1:9428/insert/splunk/services/collector/ack?channel=0F8D6C2E-3C1A-4F7E-9B1D-2A5E8C7D9F10",
			health: "http://127.0.0.1:9428/insert/splunk/services/collector/health"},
		{name: "plain http to a remote host", cfg: Config{URL: "http://splunk.example.com:8088"}, wantErr: "refusing to send the HEC token over plain http"},
		{name: "plain http to a remote IP", cfg: Config{URL: "http://10.0.0.5:8088"}, wantErr: "--allow-insecure-http"},
		{name: "plain http allowed", cfg: Config{URL: "http://splunk.example.com:8088", Conn: sink.Conn{AllowInsecureHTTP: true}}, event: "http://splunk.example.com:8088/services/collector/event"},
		{name: "loopback v4", cfg: Config{URL: "http://127.0.0.1:8088"}, event: "http://127.0.0.1:8088/services/collector/event"},
		{name: "loopback 127/8", cfg: Config{URL: "http://127.9.8.7:8088"}, event: "http://127.9.8.7:8088/services/collector/event"},
		{name: "loopback v6", cfg: Config{URL: "http://[::1]:8088"}, event: "http://[::1]:8088/services/collector/event"},
		{name: "localhost", cfg: Config{URL: "http://LocalHost:8088"}, event: "http://LocalHost:8088/services/collector/event"},
		{name: "not loopback by name", cfg: Config{URL: "http://localhost.example.com:8088"}, wantErr: "plain http"},
		{name: "raw endpoint", cfg: Config{URL: "https://s.example.com/services/collector/raw"}, wantErr: "raw endpoint"},
		{name: "unknown path", cfg: Config{URL: "https://s.example.com/api/logs"}, wantErr: "not a HEC event endpoint"},
		{name: "credentials in URL", cfg: Config{URL: "https://admin:hunter2@s.example.com"}, wantErr: "carries credentials"},
		{name: "bad scheme", cfg: Config{URL: "ftp://s.example.com"}, wantErr: "scheme"},
		{name: "no URL", cfg: Config{}, wantErr: "no URL"},
		{name: "no token", cfg: Config{URL: "https://s.example.com", Token: nil}, wantErr: "no token"},
		{name: "TLS options on http", cfg: Config{URL: "http://127.0.0.1:8088", Conn: sink.Conn{InsecureSkipVerify: true}}, wantErr: "plain http"},
		{name: "cert without key", cfg: Config{URL: "https://s.example.com", Conn: sink.Conn{CertFile: "c.pem"}}, wantErr: "both CertFile and KeyFile"},
		{name: "missing CA file", cfg: Config{URL: "https://s.example.com", Conn: sink.Conn{CAFile: "/nonexistent/ca.pem"}}, wantErr: "read CA file"},
		{name: "bad channel", cfg: Config{URL: "https://s.example.com", Channel: "chan-1"}, wantErr: "not a GUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if tt.name != "no token" {
				cfg.Token = tok
			}
			s, err := New(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error leaks the URL password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, c := range []struct{ got, want string }{{s.eventURL, tt.event}, {s.ackURL, tt.ack}, {s.healthURL, tt.health}} {
				if c.want != "" && c.got != c.want {
					t.Errorf("URL = %s, want %s", c.got, c.want)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	health := func(f hecfake.Fault) func(*hecfake.Request) hecfake.Fault {
		return func(r *hecfake.Request) hecfake.Fault {
			if r.Path == "/services/collector/health" {
				return f
			}
			return hecfake.Fault{}
		}
	}
	tests := []struct {
		name     string
		opts     hecfake.Options
		cfg      Config
		wantErr  *failure
		wantReqs hecfake.Counts
	}{
		{name: "healthy, token ok", opts: hecfake.Options{Tokens: []string{token}}, wantReqs: hecfake.Counts{Total: 2, Event: 1, Health: 1}},
		{name: "healthy, token ok, ack ok", opts: hecfake.Options{IndexerAck: true}, cfg: Config{IndexerAck: true},
			wantReqs: hecfake.Counts{Total: 3, Event: 1, Health: 1, Ack: 1}},
		{name: "bad token", opts: hecfake.Options{Tokens: []string{newToken}},
			wantErr: &failure{class: sink.Config, status: 403, code: 4, contains: []string{"was refused", "file:"}}},
		{name: "disabled token", opts: hecfake.Options{DisabledTokens: []string{token}},
			wantErr: &failure{class: sink.Config, status: 403, code: 1, contains: []string{"Token disabled"}}},
		{name: "busy", opts: hecfake.Options{Fault: health(hecfake.Fault{Status: 503, Code: 18, Text: "HEC is unhealthy, queues are full", RetryAfter: "5"})},
			wantErr: &failure{class: sink.Retryable, status: 503, code: 18, retryAfter: 5 * time.Second, contains: []string{"unhealthy"}}},
		{name: "no HEC there", cfg: Config{URL: "/nothing/services/collector/event"},
			wantErr: &failure{class: sink.Config, status: 404, code: 404, contains: []string{"no HEC health endpoint", "8088"}}},
		{name: "ack disabled on token", cfg: Config{IndexerAck: true},
			wantErr: &failure{class: sink.Config, status: 400, code: 14, contains: []string{"disabled for this token"}}},
		{name: "token needs a channel", opts: hecfake.Options{IndexerAck: true},
			wantErr: &failure{class: sink.Config, status: 400, code: 10, contains: []string{"add --indexer-ack"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.opts)
			cfg := tt.cfg
			cfg.URL = f.URL + cfg.URL
			s := newSink(t, cfg)
			err := s.Check(context.Background())
			noSecret(t, err)
			t.Logf("Check: %v", err)
			if n := len(f.Events()); n != 0 {
				t.Fatalf("Check stored %d events", n)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if c := f.Counts(); c != tt.wantReqs {
					t.Fatalf("counts %+v, want %+v", c, tt.wantReqs)
				}
				return
			}
			var se *sink.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v", err)
			}
			w := tt.wantErr
			if se.Class != w.class || se.HTTPStatus != w.status || se.Code != w.code || se.RetryAfter != w.retryAfter {
				t.Errorf("err = %v (%+v), want %+v", err, se, w)
			}
			for _, c := range w.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("err %q does not contain %q", err, c)
				}
			}
		})
	}
}
