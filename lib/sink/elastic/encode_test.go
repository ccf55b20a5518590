package elastic

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestEscapeHostile: an index or id built to break out of its JSON string
// or its line stays one action line whose values are exactly the strings.
func TestEscapeHostile(t *testing.T) {
	hostile := []string{
		`x"},"index":{"_index":"other`,
		"x\n{\"delete\":{\"_index\":\"audit\",\"_id\":\"1\"}}\n",
		`x\"}}` + "\r\n" + `{"create":{}}`,
		"\u2028\u2029\x00\x1f\\",
		"日本😀",
	}
	for _, index := range hostile {
		for _, id := range hostile {
			line := appendAction(nil, appendActionPrefix(nil, index), []byte(id))
			if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("action line %q is not one line", line)
			}
			var act map[string]map[string]string
			dec := json.NewDecoder(bytes.NewReader(line))
			if err := dec.Decode(&act); err != nil {
				t.Fatalf("action %q: %v", line, err)
			}
			if dec.More() {
				t.Fatalf("action %q holds more than one JSON value", line)
			}
			c, ok := act["create"]
			if len(act) != 1 || !ok || len(c) != 2 || c["_index"] != index || c["_id"] != id {
				t.Fatalf("action %q decodes to %q", line, act)
			}
		}
	}
}

// TestAppendDocTimestamp: @timestamp is RFC 3339 UTC with milliseconds,
// left out outside years 1970..9999.
func TestAppendDocTimestamp(t *testing.T) {
	for _, c := range []struct {
		ts   int64
		want string
	}{
		{1764244800123, "2025-11-27T12:00:00.123Z"},
		{1764244800000, "2025-11-27T12:00:00.000Z"},
		{0, "1970-01-01T00:00:00.000Z"},
		{maxTimestampMS, "9999-12-31T23:59:59.999Z"},
		{maxTimestampMS + 1, ""},
		{-1, ""},
	} {
		doc := appendDoc(nil, &sink.Record{TS: c.ts, Line: []byte("{}")})
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatalf("ts %d: %s: %v", c.ts, doc, err)
		}
		got, _ := m["@timestamp"].(string)
		if got != c.want {
			t.Errorf("ts %d: @timestamp %q, want %q", c.ts, got, c.want)
		}
	}
}

func TestEncodeGzipRoundTrip(t *testing.T) {
	recs := records(t, 50, 400)
	sent := make([]int, len(recs))
	for i := range sent {
		sent[i] = i
	}
	plain := newSink(t, Config{URL: "http://127.0.0.1:9200"})
	gz := newSink(t, Config{URL: "http://127.0.0.1:9200", Gzip: true})
	p, err := plain.encode(recs, sent)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // pooled writers and buffers give the same bytes every time
		z, err := gz.encode(recs, sent)
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

func TestParseBulk(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		n       int
		want    string // fmt of the items
		wantErr string
	}{
		{name: "filtered success", n: 2, body: `{"errors":false,"items":[{"create":{"_id":"a","status":201}},{"create":{"_id":"b","status":201}}]}`,
			want: `[{201 a true    } {201 b true    }]`},
		{name: "VictoriaLogs: no _id", n: 1, body: `{"took":1,"errors":false,"items":[{"create":{"status":201}}]}`,
			want: `[{201  false    }]`},
		{name: "error with cause", n: 1, body: `{"errors":true,"items":[{"index":{"_id":"a","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [seq]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"x\""}}}}]}`,
			want: `[{400 a true mapper_parsing_exception failed to parse field [seq] illegal_argument_exception For input string: "x"}]`},
		{name: "string error", n: 1, body: `{"errors":true,"items":[{"create":{"status":500,"error":"old style"}}]}`, want: `[{500  false  old style  }]`},
		{name: "count short", n: 3, body: `{"errors":false,"items":[{"create":{"status":201}}]}`, wantErr: "1 items for 3 documents"},
		{name: "count long", n: 1, body: `{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}`, wantErr: "2 items for 1"},
		{name: "no items (all filtered away)", n: 1, body: `{"errors":false}`, wantErr: "no items"},
		{name: "no errors member", n: 1, body: `{"items":[{"create":{"status":201}}]}`, wantErr: `no boolean "errors"`},
		{name: "errors not boolean", n: 1, body: `{"errors":"no","items":[{"create":{"status":201}}]}`, wantErr: `no boolean "errors"`},
		{name: "items not array", n: 1, body: `{"errors":true,"items":{}}`, wantErr: "not an array"},
		{name: "not JSON", n: 1, body: `<html>ok</html>`, wantErr: "not JSON"},
		{name: "array", n: 1, body: `[1]`, wantErr: "not an object"},
		{name: "two actions in one item", n: 1, body: `{"errors":true,"items":[{"create":{"status":201},"index":{"status":201}}]}`, wantErr: "one action"},
		{name: "item not object", n: 1, body: `{"errors":true,"items":[{"create":5}]}`, wantErr: "not an object"},
		{name: "_id not string", n: 1, body: `{"errors":true,"items":[{"create":{"_id":5,"status":201}}]}`, wantErr: "_id is not a string"},
		{name: "missing status", n: 1, body: `{"errors":true,"items":[{"create":{"_id":"a"}}]}`, want: `[{0 a true    }]`},
	}
	var p fastjson.Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := parseBulk(&p, []byte(tt.body), tt.n)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(items); got != tt.want {
				t.Fatalf("items %s\nwant  %s", got, tt.want)
			}
		})
	}
}

func FuzzParseBulk(f *testing.F) {
	f.Add([]byte(`{"errors":true,"items":[{"create":{"_id":"a","status":409,"error":{"type":"version_conflict_engine_exception","reason":"r"}}}]}`), 1)
	f.Add([]byte(`{"items":[{"create":{"status":201}},{"index":{"status":"201"}}]}`), 2)
	f.Add([]byte(`{"items":[{"create":{"status":4294967297,"error":{"caused_by":"x"}}}]}`), 1)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		var p fastjson.Parser
		items, err := parseBulk(&p, data, n)
		if err == nil && len(items) != n {
			t.Fatalf("%d items without error for n=%d", len(items), n)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	recs := records(b, 1000, 500)
	s := newSink(b, Config{URL: "http://127.0.0.1:9200", Gzip: true})
	sent := make([]int, len(recs))
	for i := range sent {
		sent[i] = i
	}
	var in int
	for _, r := range recs {
		in += len(r.Line)
	}
	b.SetBytes(int64(in)) // MB/s of record lines
	b.ReportAllocs()
	var out, raw int
	for b.Loop() {
		body, err := s.encode(recs, sent)
		if err != nil {
			b.Fatal(err)
		}
		out, raw = len(body.Data), body.Raw
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(raw)/float64(out), "ratio")
}

// TestDocChain: the document names the record's chain after prevHash when
// known; with IDField seq the _id is <chain>:<seq> (seqs repeat across a
// fleet's chains), and without a chain both are as before.
func TestDocChain(t *testing.T) {
	r := sink.Record{Seq: 42, TS: 1, Hash: strings.Repeat("a", 64), Line: []byte(`{"seq":42}`)}
	plain := string(appendDoc(nil, &r))
	if strings.Contains(plain, `"chain"`) || string(docID(IDSeq, &r, nil)) != "42" {
		t.Fatalf("no chain: doc %s id %s", plain, docID(IDSeq, &r, nil))
	}
	r.Chain = "host-b"
	doc := string(appendDoc(nil, &r))
	if want := strings.Replace(plain, `,"message":`, `,"chain":"host-b","message":`, 1); doc != want {
		t.Errorf("doc\n got %s\nwant %s", doc, want)
	}
	if id := string(docID(IDSeq, &r, nil)); id != "host-b:42" {
		t.Errorf("seq _id %q, want host-b:42", id)
	}
	if id := string(docID(IDRecordHash, &r, nil)); id != r.Hash {
		t.Errorf("recordHash _id %q", id)
	}
}
