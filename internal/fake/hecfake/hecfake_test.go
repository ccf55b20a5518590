package hecfake

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	tok     = "good-token"
	channel = "0f8d6c2e-3c1a-4f7e-9b1d-2a5e8c7d9f10"
)

type call struct {
	method, path, body string
	header             map[string]string
	gzip               bool
}

type answerWant struct {
	status  int
	code    int // -1: no code
	invalid int // -1: no invalid-event-number
	ackID   int // -1: no ackId
	retry   string
	acks    map[string]bool
}

func do(t *testing.T, s *Server, c call) (int, http.Header, map[string]any) {
	t.Helper()
	body := []byte(c.body)
	if c.gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body = b.Bytes()
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	req, _ := http.NewRequest(method, s.URL+c.path, bytes.NewReader(body))
	if c.header == nil {
		req.Header.Set("Authorization", "Splunk "+tok)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header, m
}

func check(t *testing.T, status int, h http.Header, m map[string]any, w answerWant) {
	t.Helper()
	num := func(k string) int {
		if v, ok := m[k].(float64); ok {
			return int(v)
		}
		return -1
	}
	if status != w.status || num("code") != w.code || num("invalid-event-number") != w.invalid || num("ackId") != w.ackID {
		t.Fatalf("answer %d %v, want %+v", status, m, w)
	}
	if h.Get("Retry-After") != w.retry {
		t.Fatalf("Retry-After %q, want %q", h.Get("Retry-After"), w.retry)
	}
	if w.acks != nil {
		got := map[string]bool{}
		for k, v := range m["acks"].(map[string]any) {
			got[k] = v.(bool)
		}
		if len(got) != len(w.acks) {
			t.Fatalf("acks %v, want %v", got, w.acks)
		}
		for k, v := range w.acks {
			if got[k] != v {
				t.Fatalf("acks %v, want %v", got, w.acks)
			}
		}
	}
}

const ev = "/services/collector/event"

func TestProtocol(t *testing.T) {
	ok := answerWant{status: 200, code: 0, invalid: -1, ackID: -1}
	bad := func(code, n int) answerWant { return answerWant{status: 400, code: code, invalid: n, ackID: -1} }
	tests := []struct {
		name   string
		opts   Options
		calls  []call
		want   []answerWant
		stored []string
	}{
		{name: "events concatenated, with and without whitespace", calls: []call{{path: ev, body: `{"event":"a"}{"event":"b"}` + "\n \t" + `{"event":{"k":1},"time":"1.5"}`}},
			want: []answerWant{ok}, stored: []string{"a", "b", `{"k":1}`}},
		{name: "aliases", calls: []call{{path: "/services/collector", body: `{"event":"a"}`}, {path: "/services/collector/event/1.0", body: `{"event":"b"}`}},
			want: []answerWant{ok, ok}, stored: []string{"a", "b"}},
		{name: "gzip", calls: []call{{path: ev, body: `{"event":"z"}`, gzip: true}}, want: []answerWant{ok}, stored: []string{"z"}},
		{name: "bad gzip", calls: []call{{path: ev, body: `{"event":"z"}`, header: map[string]string{"Authorization": "Splunk x", "Content-Encoding": "gzip"}}},
			want: []answerWant{{status: 400, code: 6, invalid: -1, ackID: -1}}},
		{name: "no token", calls: []call{{path: ev, body: `{"event":"a"}`, header: map[string]string{}}},
			want: []answerWant{{status: 401, code: 2, invalid: -1, ackID: -1}}},
		{name: "other scheme", calls: []call{{path: ev, body: `{"event":"a"}`, header: map[string]string{"Authorization": "Bearer " + tok}}},
			want: []answerWant{{status: 401, code: 3, invalid: -1, ackID: -1}}},
		{name: "unknown token", opts: Options{Tokens: []string{"other"}}, calls: []call{{path: ev, body: `{"event":"a"}`}},
			want: []answerWant{{status: 403, code: 4, invalid: -1, ackID: -1}}},
		{name: "disabled token", opts: Options{DisabledTokens: []string{tok}}, calls: []call{{path: ev, body: `{"event":"a"}`}},
			want: []answerWant{{status: 403, code: 1, invalid: -1, ackID: -1}}},
		{name: "empty body", calls: []call{{path: ev, body: " \n"}}, want: []answerWant{{status: 400, code: 5, invalid: -1, ackID: -1}}},
		{name: "missing event keeps earlier", calls: []call{{path: ev, body: `{"event":"a"}{"time":1}{"event":"c"}`}},
			want: []answerWant{bad(12, 1)}, stored: []string{"a"}},
		{name: "missing event, drop before invalid", opts: Options{DropBeforeInvalid: true}, calls: []call{{path: ev, body: `{"event":"a"}{"time":1}`}},
			want: []answerWant{bad(12, 1)}},
		{name: "blank event", calls: []call{{path: ev, body: `{"event":""}`}}, want: []answerWant{bad(13, 0)}},
		{name: "null event", calls: []call{{path: ev, body: `{"event":"a"}{"event":null}`}}, want: []answerWant{bad(13, 1)}, stored: []string{"a"}},
		{name: "syntax error", calls: []call{{path: ev, body: `{"event":"a"}{"event":"b"} nonsense`}}, want: []answerWant{bad(6, 2)}, stored: []string{"a", "b"}},
		{name: "not an object", calls: []call{{path: ev, body: `["a"]`}}, want: []answerWant{bad(6, 0)}},
		{name: "bad time", calls: []call{{path: ev, body: `{"event":"a","time":"noon"}`}}, want: []answerWant{bad(6, 0)}},
		{name: "nested fields", calls: []call{{path: ev, body: `{"event":"a","fields":{"ok":"v","list":["x","y"]}}{"event":"b","fields":{"x":{"y":"z"}}}`}},
			want: []answerWant{bad(15, 1)}, stored: []string{"a"}},
		{name: "index not allowed", opts: Options{AllowedIndexes: []string{"main"}}, calls: []call{{path: ev, body: `{"event":"a","index":"main"}{"event":"b"}{"event":"c","index":"other"}`}},
			want: []answerWant{bad(7, 2)}, stored: []string{"a", "b"}},
		{name: "poison", opts: Options{Poison: func(e *Event) bool { return strings.Contains(e.Event, "BAD") }},
			calls: []call{{path: ev, body: `{"event":"a"}{"event":"xBADx"}`}}, want: []answerWant{bad(6, 1)}, stored: []string{"a"}},
		{name: "too large", opts: Options{MaxContentLength: 10}, calls: []call{{path: ev, body: `{"event":"abcdef"}`}},
			want: []answerWant{{status: 413, code: -1, invalid: -1, ackID: -1}}},
		{name: "ack disabled", calls: []call{{path: "/services/collector/ack?channel=" + channel, body: `{"acks":[0]}`}},
			want: []answerWant{bad(14, -1)}},
		{name: "indexer ack", opts: Options{IndexerAck: true}, calls: []call{
			{path: ev, body: `{"event":"a"}`},
			{path: ev + "?channel=nope", body: `{"event":"a"}`},
			{path: ev, body: `{"event":"a"}`, header: map[string]string{"Authorization": "Splunk t", "X-Splunk-Request-Channel": channel}},
			{path: ev + "?channel=" + channel, body: `{"event":"b"}`},
			{path: "/services/collector/ack?channel=" + channel, body: `{"acks":[0,1,7]}`},
			{path: "/services/collector/ack", body: `{"acks":[0]}`},
		}, want: []answerWant{bad(10, -1), bad(11, -1),
			{status: 200, code: 0, invalid: -1, ackID: 0}, {status: 200, code: 0, invalid: -1, ackID: 1},
			{status: 200, code: -1, invalid: -1, ackID: -1, acks: map[string]bool{"0": true, "1": true, "7": false}},
			bad(10, -1)},
			stored: []string{"a", "b"}},
		{name: "indexer ack delayed", opts: Options{IndexerAck: true, AckDelay: time.Hour}, calls: []call{
			{path: ev + "?channel=" + channel, body: `{"event":"a"}`},
			{path: "/services/collector/ack?channel=" + channel, body: `{"acks":[0]}`},
		}, want: []answerWant{{status: 200, code: 0, invalid: -1, ackID: 0}, {status: 200, code: -1, invalid: -1, ackID: -1, acks: map[string]bool{"0": false}}},
			stored: []string{"a"}},
		{name: "raw: lines are events, a channel is required", calls: []call{
			{path: "/services/collector/raw", body: "a\n"},
			{path: "/services/collector/raw?channel=nope", body: "a\n"},
			{path: "/services/collector/raw?channel=" + channel, body: "a\r\n{\"x\":\"y\"}\n\nc"},
			{path: "/services/collector/raw", body: "d\n", gzip: true, header: map[string]string{"Authorization": "Splunk t", "X-Splunk-Request-Channel": channel}},
			{path: "/services/collector/raw?channel=" + channel, body: " \n"},
		}, want: []answerWant{bad(10, -1), bad(11, -1), ok, ok, bad(5, -1)}, stored: []string{"a", `{"x":"y"}`, "c", "d"}},
		{name: "raw: poison and index refuse the whole request", opts: Options{AllowedIndexes: []string{"main"}, Poison: func(e *Event) bool { return strings.Contains(e.Event, "BAD") }}, calls: []call{
			{path: "/services/collector/raw?channel=" + channel + "&index=other", body: "a\n"},
			{path: "/services/collector/raw?channel=" + channel + "&index=main", body: "a\nxBADx\n"},
			{path: "/services/collector/raw?channel=" + channel + "&index=main", body: "b\n"},
		}, want: []answerWant{bad(7, -1), bad(6, -1), ok}, stored: []string{"b"}},
		{name: "health", calls: []call{{method: "GET", path: "/services/collector/health", header: map[string]string{}}},
			want: []answerWant{{status: 200, code: 17, invalid: -1, ackID: -1}}},
		{name: "not found", calls: []call{{path: "/services/collector/rawr", body: "x"}}, want: []answerWant{{status: 404, code: 404, invalid: -1, ackID: -1}}},
		{name: "fault", opts: Options{Fault: func(r *Request) Fault {
			if r.N == 1 && string(r.Body) == `{"event":"a"}` {
				return Fault{Status: 503, Code: 9, RetryAfter: "3"}
			}
			return Fault{}
		}}, calls: []call{{path: ev, body: `{"event":"a"}`}, {path: ev, body: `{"event":"a"}`}},
			want: []answerWant{{status: 503, code: 9, invalid: -1, ackID: -1, retry: "3"}, ok}, stored: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.opts)
			defer s.Close()
			for i, c := range tt.calls {
				st, h, m := do(t, s, c)
				check(t, st, h, m, tt.want[i])
			}
			if got := s.EventStrings(); !slices.Equal(got, tt.stored) && (len(got) > 0 || len(tt.stored) > 0) {
				t.Fatalf("stored %q, want %q", got, tt.stored)
			}
			if c := s.Counts(); c.Total != len(tt.calls) {
				t.Fatalf("counts %+v, want %d requests", c, len(tt.calls))
			}
		})
	}
}

func TestDropAndSetTokens(t *testing.T) {
	s := New(Options{Tokens: []string{"old"}, Fault: func(r *Request) Fault { return Fault{Drop: r.N == 1} }})
	defer s.Close()
	req, _ := http.NewRequest("POST", s.URL+ev, strings.NewReader(`{"event":"a"}`))
	req.Header.Set("Authorization", "Splunk old")
	if _, err := s.Client().Do(req); err == nil {
		t.Fatal("dropped connection answered")
	}
	s.SetTokens("new")
	st, h, m := do(t, s, call{path: ev, body: `{"event":"a"}`, header: map[string]string{"Authorization": "Splunk old"}})
	check(t, st, h, m, answerWant{status: 403, code: 4, invalid: -1, ackID: -1})
	st, h, m = do(t, s, call{path: ev, body: `{"event":"a"}`, header: map[string]string{"Authorization": "Splunk new"}})
	check(t, st, h, m, answerWant{status: 200, code: 0, invalid: -1, ackID: -1})
	e := s.Events()[0]
	if e.Token != "new" || e.Raw != `{"event":"a"}` || !e.IsString {
		t.Fatalf("event %+v", e)
	}
	s.Reset()
	if len(s.Events()) != 0 || s.Counts() != (Counts{}) {
		t.Fatal("Reset kept state")
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, s := range []*Server{New(Options{}), NewTLS(Options{})} {
		if !strings.Contains(s.URL, "://127.0.0.1:") {
			t.Errorf("URL %s is not on 127.0.0.1", s.URL)
		}
		s.Close()
	}
}
