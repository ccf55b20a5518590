package datadog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// FuzzAppendLog: whatever the record fields hold, the log is one JSON
// object whose message is the line and whose attributes are strings.
func FuzzAppendLog(f *testing.F) {
	f.Add([]byte(`{"seq":1}`), "acme", "tool_call", int64(1764244800123), int64(42))
	f.Add([]byte("\"\\\u2028"), "a\"b", "\x00", int64(-1), int64(-9))
	f.Fuzz(func(t *testing.T, line []byte, tenant, kind string, ts, seq int64) {
		if !utf8.Valid(line) || !utf8.ValidString(tenant) || !utf8.ValidString(kind) {
			t.Skip()
		}
		r := sink.Record{Seq: seq, TS: ts, TenantID: tenant, Kind: kind, Hash: "h", Line: line}
		b := appendLog(nil, appendMeta(nil, "s", "t:v", "h", "svc"), &r)
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil || dec.More() {
			t.Fatalf("log %s: %v", b, err)
		}
		if m["message"] != string(line) || m["tenantId"] != tenant || m["kind"] != kind || m["timestamp"] != json.Number(itoa(ts)) || m["seq"] != itoa(seq) {
			t.Fatalf("log %s decodes to %v", b, m)
		}
	})
}

func TestEncodeGzipRoundTrip(t *testing.T) {
	recs := records(t, 50, 400)
	plain := newSink(t, Config{URL: "http://127.0.0.1:1"})
	gz := newSink(t, Config{URL: "http://127.0.0.1:1", Gzip: true})
	p, sent, tooLarge, err := plain.encode(recs, sink.NewResult(len(recs)))
	if err != nil || tooLarge || len(sent) != len(recs) {
		t.Fatalf("encode: %v %v %d", err, tooLarge, len(sent))
	}
	for range 3 { // pooled writers and buffers give the same bytes every time
		z, _, _, err := gz.encode(recs, sink.NewResult(len(recs)))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(z.Data))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(p.Data) || z.Raw != len(p.Data) || !z.Gzip || p.Gzip {
			t.Fatalf("gzip body differs from the plain one")
		}
		if len(z.Data)*3 > len(p.Data) {
			t.Errorf("gzip %d bytes for %d: compression not working", len(z.Data), len(p.Data))
		}
	}
}

func TestResponseText(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"errors":["Forbidden"]}`, "Forbidden"},
		{`{"errors":[{"status":"400","title":"Bad Request","detail":"bad log"},"x"]}`, "Bad Request: bad log; x"},
		{`{"errors":[{"detail":"only detail"}]}`, "only detail"},
		{`{"errors":[{"code":7}]}`, `{"code":7}`},
		{`{}`, `{}`},
		{`<html>oops</html>`, `<html>oops</html>`},
	} {
		if got := responseText([]byte(c.body)); got != c.want {
			t.Errorf("responseText(%s) = %q, want %q", c.body, got, c.want)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	recs := records(b, 1000, 500)
	s := newSink(b, Config{URL: "http://127.0.0.1:1", Gzip: true, Tags: "env:prod,team:platform", Hostname: "host-1"})
	var in int
	for _, r := range recs {
		in += len(r.Line)
	}
	b.SetBytes(int64(in)) // MB/s of record lines
	b.ReportAllocs()
	res := sink.NewResult(len(recs))
	var out, raw int
	for b.Loop() {
		body, _, tooLarge, err := s.encode(recs, res)
		if err != nil || tooLarge {
			b.Fatal(err, tooLarge)
		}
		out, raw = len(body.Data), body.Raw
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(raw)/float64(out), "ratio")
}

// TestLogChain: the log has a "chain" attribute when the record names its
// chain, none otherwise.
func TestLogChain(t *testing.T) {
	r := sink.Record{Seq: 7, TS: 1, Line: []byte(`{"seq":7}`)}
	plain := string(appendLog(nil, nil, &r))
	if strings.Contains(plain, `"chain"`) {
		t.Fatalf("no chain: %s", plain)
	}
	r.Chain = "c1"
	if got, want := string(appendLog(nil, nil, &r)), strings.TrimSuffix(plain, "}")+`,"chain":"c1"}`; got != want {
		t.Errorf("log\n got %s\nwant %s", got, want)
	}
}
