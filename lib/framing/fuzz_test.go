package framing

import (
	"testing"

	"github.com/valyala/fastjson"
)

// The committed corpus lives in testdata/fuzz/FuzzParseHeader; f.Add
// below seeds the most telling cases too.

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		`{"batch":{"id":17,"count":3,"bytes":1534,"firstSeq":40,"lastSeq":42,"intervalMs":250}}`,
		` { "batch" : { "id" : 1 , "count" : 1 , "bytes" : 0 , "firstSeq" : 0 , "lastSeq" : 0 , "intervalMs" : 0 } } `,
		`{"b\u0061tch":{"id":1,"count":1,"bytes":0,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`,
		`{"batch":{"id":1,"count":-1,"bytes":0,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`,
		`{"batch":{"id":1,"count":1,"bytes":0,"firstSeq":0,"lastSeq":0,"intervalMs":0,"chain":"tenant-a.db1"}}`,
		`{"batch":{"id":1,"count":1,"bytes":0,"firstSeq":0,"lastSeq":0,"intervalMs":0,"chain":""}}`,
		`{"batch":{"id":1,"count":1,"count":1}}`,
		`{"batch":{"id":1,`,
		`{"seq":1,"ts":1,"tenantId":"t","kind":"k","record":{},"prevHash":"","recordHash":""}`,
		`{"seq":1,"batch":2}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, line []byte) {
		h, isHeader, err := ParseHeader(&p, line)
		if !isHeader {
			if err != nil || h != (Header{}) {
				t.Fatalf("not a header but h=%+v err=%v", h, err)
			}
			// The cheap rejection must agree with a full parse.
			var q fastjson.Parser
			if v, err := q.ParseBytes(line); err == nil && v.Type() == fastjson.TypeObject && v.Get("batch") != nil {
				t.Fatalf("%q has a top-level \"batch\" key but was not taken for a header", line)
			}
			return
		}
		if err != nil {
			if h != (Header{}) {
				t.Fatalf("error %v with a non-zero header %+v", err, h)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("parsed header does not validate: %v", err)
		}
		out := AppendHeader(nil, h)
		again, isHeader, err := ParseHeader(&p, out)
		if err != nil || !isHeader || again != h {
			t.Fatalf("round trip of %q: %q gave %+v, %v, %v; want %+v", line, out, again, isHeader, err, h)
		}
	})
}
