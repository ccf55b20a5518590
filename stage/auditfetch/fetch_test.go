package auditfetch

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

const (
	rec1 = `{"seq":1,"ts":1,"tenantId":"a","kind":"k","record":{"n":1},"prevHash":"","recordHash":"x"}`
	rec2 = `{"seq":2,"ts":2,"tenantId":"a","kind":"k","record":{"n":2},"prevHash":"x","recordHash":"y"}`
)

func row(msg string) string {
	b, _ := json.Marshal(map[string]string{"_msg": msg})
	return string(b)
}

func fetch(t *testing.T, body string) (stdout string, err error) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.FormValue("query"), "| stats") { // the kind and shipment checks
			w.Write([]byte(`{"splunk":"3","elastic":"0","datadog":"0","lo":"1","hi":"3","n":"3"}` + "\n"))
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	var out, stderr bytes.Buffer
	err = Run(context.Background(), []string{"--url", srv.URL}, strings.NewReader(""), &out, &stderr)
	return out.String(), err
}

// A bad row stops audit-fetch with exit 4 naming it, after the good rows
// before it were written out (they were lost in the buffer before), and a
// value holding a line break or invalid UTF-8 is a bad row, not two lines
// or garbage for audit-verify.
func TestBadRow(t *testing.T) {
	for _, tc := range []struct {
		name, bad, want string
	}{
		{"not JSON", "\xff\x00garbage", "row 3 of the query result"},
		{"no field", `{"_msg":12}`, "row 3 of the query result has no _msg field"},
		{"not an object", `[1,2]`, "row 3 of the query result has no _msg field"},
		{"line break", row(rec1 + "\n" + rec2), "row 3 of the query result: the _msg value holds a line break"},
		{"CR", row(rec1 + "\r"), "row 3 of the query result: the _msg value holds a line break"},
		{"invalid UTF-8", `{"_msg":"{\"seq\":3,\"x\":\"` + "\xff\xfe" + `\"}"}`, "row 3 of the query result: the _msg value is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := fetch(t, row(rec1)+"\n"+row(rec2)+"\n"+tc.bad+"\n"+row(rec1)+"\n")
			if code := exitcode.Of(err); code != exitcode.Input {
				t.Fatalf("exit code %d (%v), want 4", code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if want := rec1 + "\n" + rec2 + "\n"; out != want {
				t.Errorf("stdout %q, want the two good rows before the bad one", out)
			}
		})
	}
}

func TestEmptyResult(t *testing.T) {
	out, err := fetch(t, "")
	if err != nil || out != "" {
		t.Fatalf("got %q, %v; want nothing and no error", out, err)
	}
}

// fakeStore answers the stats queries (the kind and shipment checks) with
// stats and every other query with body, recording the queries.
func fakeStore(t *testing.T, stats, body string) (url string, queries *[]string) {
	t.Helper()
	qs := new([]string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.FormValue("query")
		*qs = append(*qs, q)
		if strings.Contains(q, "| stats") {
			w.Write([]byte(stats + "\n"))
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, qs
}

// Each kind sorts by its own seq field and filters by its own host and
// source fields; the old --kind victorialogs (the store) still works and
// means "the kind the query matches"; mistakes are usage errors naming the
// flag; an event VictoriaLogs stored without a message (Elastic's
// --doc-shape line) is named as such, not passed on as a record line.
func TestKinds(t *testing.T) {
	one := func(kind string) string {
		return `{"splunk":"0","elastic":"0","datadog":"0","` + kind + `":"2","lo":"1","hi":"2","n":"2","host":"h"}`
	}
	body := row(rec1) + "\n" + row(rec2) + "\n"
	for _, tc := range []struct {
		name    string
		args    []string
		stats   string
		body    string
		code    int
		want    string // in the error, or in the last query if code is 0
		wantOut string
	}{
		{"splunk", []string{"--kind", "splunk", "--host", "h1", "--source", "s1"}, one("splunk"), body, 0,
			`fields.seq:!"" host:="h1" source:="s1" | sort by (fields.seq) | fields _msg, fields.seq`, rec1 + "\n" + rec2 + "\n"},
		{"datadog", []string{"--kind", "datadog", "--host", "h1", "--source", "s1", "--query", `env:=prod`}, one("datadog"), body, 0,
			`env:=prod | filter seq:!"" fields.seq:"" (service:!"" or ddsource:!"" or hostname:!"") hostname:="h1" ddsource:="s1" | sort by (seq) | fields _msg, seq`, rec1 + "\n" + rec2 + "\n"},
		{"elastic", []string{"--kind", "elastic"}, one("elastic"), body, 0,
			`seq:!"" fields.seq:"" service:"" ddsource:"" hostname:"" | sort by (seq) | fields _msg, seq`, rec1 + "\n" + rec2 + "\n"},
		{"legacy --kind victorialogs", []string{"--kind", "victorialogs"}, one("elastic"), body, 0, `| sort by (seq)`, rec1 + "\n" + rec2 + "\n"},
		{"nothing stored", []string{"--kind", "splunk"}, `{"splunk":"0","elastic":"0","datadog":"0"}`, "", 0, `| stats`, ""},
		{"unknown kind", []string{"--kind", "hec"}, one("splunk"), body, 2, `unknown --kind "hec": splunk, elastic or datadog`, ""},
		{"unknown store", []string{"--store", "es"}, one("splunk"), body, 2, `--store "es"`, ""},
		{"source on elastic", []string{"--kind", "elastic", "--source", "s"}, one("elastic"), body, 2, `--source: --kind elastic events carry`, ""},
		{"stray argument", []string{"--kind", "splunk", "seq:>1"}, one("splunk"), body, 2, `unexpected argument "seq:>1"`, ""},
		{"doc-shape line", []string{"--kind", "elastic"}, one("elastic"),
			row(rec1) + "\n" + `{"_msg":"missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field","seq":"2"}` + "\n", 4,
			"row 2 of the query result (seq 2) holds no record line: VictoriaLogs stored the event without a message: audit-ship --kind elastic --doc-shape line", rec1 + "\n"},
		{"odd stats answer", []string{"--kind", "splunk"}, `{"x":"1"}`, body, 1, "unexpected answer", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, qs := fakeStore(t, tc.stats, tc.body)
			var out, stderr bytes.Buffer
			err := Run(context.Background(), append([]string{"--url", u}, tc.args...), strings.NewReader(""), &out, &stderr)
			if code := exitcode.Of(err); code != tc.code {
				t.Fatalf("exit %d (%v), want %d\n%s", code, err, tc.code, stderr.String())
			}
			if tc.code != 0 {
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q, want it to contain %q", err, tc.want)
				}
			} else if last := (*qs)[len(*qs)-1]; !strings.Contains(last, tc.want) {
				t.Errorf("query %q, want it to contain %q", last, tc.want)
			}
			if out.String() != tc.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}
