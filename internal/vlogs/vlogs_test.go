package vlogs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// tricky holds everything a record string can hold that a careless pipeline
// mangles: quotes, backslashes, JSON-looking text, non-ASCII, astral
// characters, U+2028/U+2029 (which JSON allows raw but JavaScript did not),
// control characters, HTML-ish characters and leading/trailing blanks.
const tricky = " q\"b\\c\\\"d ü ß 日本 😀 \u2028 \u2029 \t\n\r\x01\x1f <a>&amp; {\"x\":[1,2]} "

// recordLine is a realistic record line (docs/contract.md section 2) holding tricky.
var recordLine = `{"seq":42,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{"kind":"tool_call","note":` +
	mustJSON(tricky) + `,"tenantId":"acme","ts":1764244800123},"prevHash":"","recordHash":"` + strings.Repeat("ab", 32) + `"}`

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// post sends body to the server and returns the status and response body.
func post(t *testing.T, s *Server, path, contentType string, gz bool, body []byte) (int, string) {
	t.Helper()
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		body = buf.Bytes()
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// rows waits until logsql matches want rows and returns them.
func rows(t *testing.T, s *Server, logsql string, want int) []map[string]string {
	t.Helper()
	n, err := s.WaitCount(t.Context(), logsql, want, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%q: %d rows, want %d", logsql, n, want)
	}
	got, err := s.Query(t.Context(), logsql)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != want {
		t.Fatalf("%q: Query gave %d rows, want %d", logsql, len(got), want)
	}
	return got
}

// wantRow fails unless got has exactly the fields of want, apart from the
// ones listed in ignore.
func wantRow(t *testing.T, got, want map[string]string, ignore ...string) {
	t.Helper()
	g := make(map[string]string, len(got))
	for k, v := range got {
		g[k] = v
	}
	for _, k := range ignore {
		delete(g, k)
	}
	for k, v := range want {
		if gv, ok := g[k]; !ok {
			t.Errorf("field %q missing, want %q", k, v)
		} else if gv != v {
			t.Errorf("field %q = %q, want %q", k, gv, v)
		}
		delete(g, k)
	}
	for k, v := range g {
		t.Errorf("unexpected field %q = %q", k, v)
	}
}

// msTime is how the query output writes _time for a millisecond timestamp.
func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

const missingMsg = "missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field"

func TestStartStop(t *testing.T) {
	bin, ok := Available()
	if !ok {
		Require(t) // skips, or fails under CI
	}
	var log bytes.Buffer
	s, err := Start(t.Context(), Options{Binary: bin, Stderr: &log, Args: []string{"-loggerLevel=INFO"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q", s.URL())
	}
	resp, err := http.Get(s.URL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /health: %d", resp.StatusCode)
	}
	if n, err := s.Count(t.Context(), "*"); err != nil || n != 0 {
		t.Errorf("Count on an empty store = %d, %v", n, err)
	}
	dir := s.DataDir()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary DataDir %s still there after Stop (%v)", dir, err)
	}
	if _, err := http.Get(s.URL() + "/health"); err == nil {
		t.Error("server still answers after Stop")
	}
	if !strings.Contains(log.String(), "started VictoriaLogs") {
		t.Errorf("Stderr did not get the INFO log; got:\n%s", log.String())
	}
	if s.Log() == "" {
		t.Error("Log() is empty")
	}
}

func TestStartKeepsGivenDataDir(t *testing.T) {
	bin, ok := Available()
	if !ok {
		Require(t)
	}
	dir := t.TempDir()
	s, err := Start(t.Context(), Options{Binary: bin, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("given DataDir removed: %v", err)
	}
}

func TestStartErrorCarriesLogTail(t *testing.T) {
	bin, ok := Available()
	if !ok {
		Require(t)
	}
	_, err := Start(t.Context(), Options{Binary: bin, Args: []string{"-no-such-flag"}})
	if err == nil {
		t.Fatal("Start with a bad flag succeeded")
	}
	if !strings.Contains(err.Error(), "no-such-flag") || !strings.Contains(err.Error(), "exited before ready") {
		t.Errorf("error lacks the log tail: %v", err)
	}
}

func TestStartErrorNoBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "victoria-logs")
	t.Setenv(EnvBinary, missing)
	if bin, ok := Available(); ok || bin != missing {
		t.Errorf("Available() = %q, %v; want %q, false", bin, ok, missing)
	}
	if _, err := Start(t.Context(), Options{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Start with a missing binary: %v", err)
	}
}

func TestStartRetriesTakenPort(t *testing.T) {
	bin, ok := Available()
	if !ok {
		Require(t)
	}
	// The first run fails as if another process took the picked port in
	// the meantime; Start must pick another and succeed.
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "wrapper")
	script := "#!/bin/sh\nif [ ! -e " + dir + "/tried ]; then : > " + dir + "/tried\n" +
		"echo 'cannot start http server: bind: address already in use' >&2; exit 1; fi\nexec " + bin + ` "$@"` + "\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Start(t.Context(), Options{Binary: wrapper})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tried")); err != nil {
		t.Error("the failing first run did not happen")
	}
}

func TestStartGivenAddrTaken(t *testing.T) {
	bin, ok := Available()
	if !ok {
		Require(t)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Start(t.Context(), Options{Binary: bin, Addr: l.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a taken address: %v", err)
	}
}

func TestStartNeverReady(t *testing.T) {
	// A "server" that runs but never listens: Start must give up, kill it and
	// report the log tail.
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho fake server warming up >&2\nexec sleep 60\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Start(t.Context(), Options{Binary: fake, ReadyTimeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "warming up") {
		t.Errorf("Start: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Start took %s to give up", d)
	}
}

// fakeTB records how Require gives up.
type fakeTB struct {
	testing.TB
	how string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.how = "fatal: " + fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) {
	f.how = "skip: " + fmt.Sprint(args...)
	runtime.Goexit()
}

func TestRequireMissingBinary(t *testing.T) {
	t.Setenv(EnvBinary, filepath.Join(t.TempDir(), "victoria-logs"))
	for _, c := range []struct{ ci, want string }{{"true", "fatal: "}, {"", "skip: "}, {"1", "skip: "}} {
		t.Setenv("CI", c.ci)
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Require(f)
		}()
		<-done
		if !strings.HasPrefix(f.how, c.want) || !strings.Contains(f.how, "install-victorialogs.sh") {
			t.Errorf("CI=%q: Require gave up with %q, want %s...", c.ci, f.how, c.want)
		}
	}
}

func TestWaitCountTimeout(t *testing.T) {
	s := Require(t)
	n, err := s.WaitCount(t.Context(), `nothing:="here"`, 1, 300*time.Millisecond)
	if err == nil || n != 0 {
		t.Errorf("WaitCount = %d, %v; want 0 and an error", n, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.WaitCount(ctx, `nothing:="here"`, 1, time.Second); err != context.Canceled {
		t.Errorf("WaitCount with a cancelled ctx: %v", err)
	}
}

func TestQueryError(t *testing.T) {
	s := Require(t)
	if _, err := s.Query(t.Context(), "| bad pipe ("); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("Query with bad LogsQL: %v", err)
	}
}

// TestHEC pins how VictoriaLogs stores Splunk HEC events; the package doc
// summarises it.
func TestHEC(t *testing.T) {
	s := Require(t)
	const path = "/services/collector/event"

	t.Run("string event", func(t *testing.T) {
		// One event per line, the way the splunk sink frames a batch; the
		// record line is the string event.
		ev1 := map[string]any{
			"time": "1764244800.123", "host": "h1", "source": "auditpipe", "sourcetype": "auditpipe:record",
			"index": "audit", "event": recordLine,
			"fields": map[string]any{"run": "hec-str", "seq": "42", "tags": []string{"x", "y"}},
		}
		ev2 := map[string]any{
			"time": 1764244800.120, "host": "h1", "source": "auditpipe", "sourcetype": "auditpipe:record",
			"event": tricky, "fields": map[string]any{"run": "hec-str", "seq": "43"},
		}
		body := mustJSON(ev1) + "\n" + mustJSON(ev2) + "\n"
		if code, resp := post(t, s, path, "application/json", false, []byte(body)); code != 200 || resp != `{"text":"Success","code":0}` {
			t.Fatalf("POST: %d %s", code, resp)
		}
		got := rows(t, s, `fields.run:="hec-str" | sort by (fields.seq)`, 2)
		stream := `{host="h1",source="auditpipe",sourcetype="auditpipe:record"}`
		wantRow(t, got[0], map[string]string{
			"_msg": recordLine, "_time": msTime(1764244800123), "_stream": stream,
			"host": "h1", "source": "auditpipe", "sourcetype": "auditpipe:record", "index": "audit",
			"fields.run": "hec-str", "fields.seq": "42", "fields.tags": `["x","y"]`,
		}, "_stream_id")
		wantRow(t, got[1], map[string]string{
			"_msg": tricky, "_time": msTime(1764244800120), "_stream": stream,
			"host": "h1", "source": "auditpipe", "sourcetype": "auditpipe:record",
			"fields.run": "hec-str", "fields.seq": "43",
		}, "_stream_id")
	})

	t.Run("time", func(t *testing.T) {
		// The unit is guessed from the magnitude and the decimal text is
		// parsed exactly (no float rounding).
		cases := []struct{ time, want string }{
			{`1764244800.001`, "2025-11-27T12:00:00.001Z"},
			{`1764244800.999`, "2025-11-27T12:00:00.999Z"},
			{`1764244800`, "2025-11-27T12:00:00Z"},
			{`"1764244800.007"`, "2025-11-27T12:00:00.007Z"},
			{`1764244800123`, "2025-11-27T12:00:00.123Z"}, // milliseconds, though Splunk wants seconds
			{`1764244800.123456`, "2025-11-27T12:00:00.123456Z"},
		}
		var body strings.Builder
		for i, c := range cases {
			fmt.Fprintf(&body, `{"time":%s,"event":"%d","fields":{"run":"hec-time"}}`, c.time, i)
		}
		if code, resp := post(t, s, path, "application/json", false, []byte(body.String())); code != 200 {
			t.Fatalf("POST: %d %s", code, resp)
		}
		got := rows(t, s, `fields.run:="hec-time" | sort by (_msg)`, len(cases))
		for i, c := range cases {
			if got[i]["_time"] != c.want {
				t.Errorf("time %s: _time %q, want %q", c.time, got[i]["_time"], c.want)
			}
		}
	})

	t.Run("gzip", func(t *testing.T) {
		body := `{"time":1764244800.5,"event":` + mustJSON(recordLine) + `,"fields":{"run":"hec-gzip"}}`
		if code, resp := post(t, s, path, "application/json", true, []byte(body)); code != 200 || resp != `{"text":"Success","code":0}` {
			t.Fatalf("POST: %d %s", code, resp)
		}
		got := rows(t, s, `fields.run:="hec-gzip"`, 1)
		if got[0]["_msg"] != recordLine {
			t.Errorf("_msg = %q\nwant   %q", got[0]["_msg"], recordLine)
		}
	})

	t.Run("object event", func(t *testing.T) {
		body := `{"time":1764244800,"event":{"seq":42,"record":{"kind":"k","n":1.50,"a":[1,{"b":2}],"e":{},"z":null,"t":true}},"fields":{"run":"hec-obj"}}`
		if code, resp := post(t, s, path, "application/json", false, []byte(body)); code != 200 {
			t.Fatalf("POST: %d %s", code, resp)
		}
		got := rows(t, s, `fields.run:="hec-obj"`, 1)
		wantRow(t, got[0], map[string]string{
			"_msg": missingMsg, "_time": "2025-11-27T12:00:00Z", "_stream": "{}",
			"event.seq": "42", "event.record.kind": "k", "event.record.n": "1.50",
			"event.record.a": `[1,{"b":2}]`, "event.record.t": "true", "fields.run": "hec-obj",
		}, "_stream_id")
	})

	t.Run("bad event mid-body", func(t *testing.T) {
		// Events before the bad one are kept, the rest dropped, and the
		// answer is still 200 code 0. (A bad first event gives 400.)
		body := `{"event":"a","fields":{"run":"hec-bad"}}{"event":nope}{"event":"c","fields":{"run":"hec-bad"}}`
		if code, resp := post(t, s, path, "application/json", false, []byte(body)); code != 200 || resp != `{"text":"Success","code":0}` {
			t.Fatalf("POST: %d %s", code, resp)
		}
		got := rows(t, s, `fields.run:="hec-bad"`, 1)
		if got[0]["_msg"] != "a" {
			t.Errorf("kept %q, want a", got[0]["_msg"])
		}
		if code, resp := post(t, s, path, "application/json", false, []byte(`{"event":nope}`)); code != 400 {
			t.Errorf("bad first event: %d %s, want 400", code, resp)
		}
	})

	t.Run("content type", func(t *testing.T) {
		// A form content type makes the server read the body as a form: the
		// events vanish while it answers success. No content type is fine.
		for _, ct := range []string{"application/x-www-form-urlencoded", "", "text/plain"} {
			body := `{"event":"ct","fields":{"run":"hec-ct","ct":` + mustJSON(ct) + `}}`
			if code, resp := post(t, s, path, ct, false, []byte(body)); code != 200 || resp != `{"text":"Success","code":0}` {
				t.Fatalf("POST %q: %d %s", ct, code, resp)
			}
		}
		got := rows(t, s, `fields.run:="hec-ct" | sort by (fields.ct)`, 2)
		if got[0]["fields.ct"] != "" || got[1]["fields.ct"] != "text/plain" {
			t.Errorf("kept %q and %q, want the no-content-type and text/plain events", got[0]["fields.ct"], got[1]["fields.ct"])
		}
	})
}

// TestESBulk pins how VictoriaLogs stores Elasticsearch bulk documents.
func TestESBulk(t *testing.T) {
	s := Require(t)
	doc1 := `{"@timestamp":"2025-11-27T12:00:00.123Z","seq":42,"recordHash":"h42","message":` + mustJSON(recordLine) +
		`,"record":{"kind":"k","n":1.50,"big":12345678901234567890,"a":[1,{"b":2}],"e":{},"z":null,"t":true,"s":` + mustJSON(tricky) + `},"run":"es"}`
	doc2 := `{"@timestamp":"2025-11-27T12:00:00.124Z","seq":43,"recordHash":"h42","message":"m","run":"es"}`
	action := `{"create":{"_index":"audit-acme","_id":"h42"}}`
	body := action + "\n" + doc1 + "\n" + action + "\n" + doc2 + "\n"

	// Without query args, _time comes from a "_time" field (else now) and
	// _msg from a "_msg" field; _time_field and _msg_field name others.
	code, resp := post(t, s, "/insert/elasticsearch/_bulk?_time_field=@timestamp&_msg_field=message", "application/x-ndjson", false, []byte(body))
	if code != 200 {
		t.Fatalf("POST: %d %s", code, resp)
	}
	var br struct {
		Errors bool
		Items  []map[string]map[string]any
	}
	if err := json.Unmarshal([]byte(resp), &br); err != nil {
		t.Fatalf("bulk response %s: %v", resp, err)
	}
	// Two creates with the same _id: both 201 and both stored; no _index,
	// _id or 409 in the answer.
	if br.Errors || len(br.Items) != 2 || fmt.Sprint(br.Items[1]) != "map[create:map[status:201]]" {
		t.Errorf("bulk response %s", resp)
	}
	got := rows(t, s, `run:="es" | sort by (seq)`, 2)
	wantRow(t, got[0], map[string]string{
		"_msg": recordLine, "_time": msTime(1764244800123), "_stream": "{}",
		"seq": "42", "recordHash": "h42", "run": "es",
		"record.kind": "k", "record.n": "1.50", "record.big": "12345678901234567890",
		"record.a": `[1,{"b":2}]`, "record.t": "true", "record.s": tricky,
	}, "_stream_id")
	wantRow(t, got[1], map[string]string{
		"_msg": "m", "_time": msTime(1764244800124), "_stream": "{}",
		"seq": "43", "recordHash": "h42", "run": "es",
	}, "_stream_id")

	t.Run("defaults and gzip", func(t *testing.T) {
		doc := `{"@timestamp":"2025-11-27T12:00:00.123Z","_msg":"x","message":"y","run":"es-default"}`
		code, resp := post(t, s, "/insert/elasticsearch/_bulk", "application/x-ndjson", true, []byte(`{"create":{}}`+"\n"+doc+"\n"))
		if code != 200 {
			t.Fatalf("POST: %d %s", code, resp)
		}
		got := rows(t, s, `run:="es-default"`, 1)
		if got[0]["_msg"] != "x" || got[0]["message"] != "y" || got[0]["@timestamp"] != "2025-11-27T12:00:00.123Z" {
			t.Errorf("row %v", got[0])
		}
		if tm, err := time.Parse(time.RFC3339Nano, got[0]["_time"]); err != nil || time.Since(tm) > time.Minute {
			t.Errorf("_time %q is not the ingest time (%v)", got[0]["_time"], err)
		}
	})
}

// TestDatadog pins how VictoriaLogs stores Datadog logs.
func TestDatadog(t *testing.T) {
	s := Require(t)
	logs := []map[string]any{
		{"message": recordLine, "ddsource": "auditpipe", "service": "audit", "hostname": "h1", "status": "info",
			"ddtags": "env:test,solo,k:v:w", "timestamp": 1764244800123, "seq": "42", "run": "dd"},
		// No timestamp: it inherits the previous log's within the request.
		{"message": tricky, "seq": "43", "run": "dd"},
	}
	body, _ := json.Marshal(logs)
	if code, resp := post(t, s, "/api/v2/logs", "application/json", true, body); code != 202 || resp != "{}" {
		t.Fatalf("POST: %d %s", code, resp)
	}
	got := rows(t, s, `run:="dd" | sort by (seq)`, 2)
	wantRow(t, got[0], map[string]string{
		"_msg": recordLine, "_time": msTime(1764244800123), "_stream": "{}",
		"ddsource": "auditpipe", "service": "audit", "hostname": "h1", "status": "info",
		"env": "test", "solo": "no_label_value", "k": "v:w", "seq": "42", "run": "dd",
	}, "_stream_id")
	wantRow(t, got[1], map[string]string{
		"_msg": tricky, "_time": msTime(1764244800123), "_stream": "{}", "seq": "43", "run": "dd",
	}, "_stream_id")

	t.Run("non-string attribute", func(t *testing.T) {
		// 400 for the request; logs before the bad one are kept.
		body := `[{"message":"ok","run":"dd-bad","timestamp":1764244800123},{"message":"bad","run":"dd-bad","seq":43},{"message":"after","run":"dd-bad"}]`
		if code, resp := post(t, s, "/api/v2/logs", "application/json", false, []byte(body)); code != 400 {
			t.Fatalf("POST: %d %s, want 400", code, resp)
		}
		got := rows(t, s, `run:="dd-bad"`, 1)
		if got[0]["_msg"] != "ok" {
			t.Errorf("kept %v", got[0])
		}
	})
}

// TestOversizeDropped pins that an entry over 2 MiB is dropped while the
// request is answered with success (on every protocol; HEC tested here).
func TestOversizeDropped(t *testing.T) {
	s := Require(t)
	for _, c := range []struct {
		run string
		n   int
	}{{"big-drop", 2<<20 + 1}, {"big-keep", 2<<20 - 4096}} {
		body := mustJSON(map[string]any{"event": strings.Repeat("x", c.n), "fields": map[string]string{"run": c.run}})
		if code, resp := post(t, s, "/services/collector/event", "application/json", false, []byte(body)); code != 200 || resp != `{"text":"Success","code":0}` {
			t.Fatalf("POST %s: %d %s", c.run, code, resp)
		}
	}
	got := rows(t, s, `fields.run:="big-keep" | len(_msg) as l | fields l`, 1)
	if got[0]["l"] != fmt.Sprint(2<<20-4096) {
		t.Errorf("kept entry has length %s", got[0]["l"])
	}
	if n, err := s.Count(t.Context(), `fields.run:="big-drop"`); err != nil || n != 0 {
		t.Errorf("oversize entry: count %d, %v; want 0", n, err)
	}
}
