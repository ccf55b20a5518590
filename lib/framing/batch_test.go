package framing

import (
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

const hash = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"

func TestAppendHeader(t *testing.T) {
	h := Header{ID: 17, Count: 3, Bytes: 1534, FirstSeq: 40, LastSeq: 42, IntervalMs: 250}
	got := string(AppendHeader([]byte("x"), h))
	want := `x{"batch":{"id":17,"count":3,"bytes":1534,"firstSeq":40,"lastSeq":42,"intervalMs":250}}`
	if got != want {
		t.Fatalf("AppendHeader:\n got %s\nwant %s", got, want)
	}
}

func TestParseHeader(t *testing.T) {
	ok := Header{ID: 17, Count: 3, Bytes: 1534, FirstSeq: 40, LastSeq: 42, IntervalMs: 250}
	tests := []struct {
		name     string
		line     string
		want     Header
		isHeader bool
		wantErr  string // substring; "" means no error
	}{
		{"design doc example", `{"batch":{"id":17,"count":3,"bytes":1534,"firstSeq":40,"lastSeq":42,"intervalMs":250}}`, ok, true, ""},
		{"whitespace", " { \"batch\" : {\"intervalMs\":250, \"lastSeq\":42,\"firstSeq\":40,\n\"bytes\":1534,\"count\":3,\"id\":17} } ", ok, true, ""},
		{"escaped key", `{"b\u0061tch":{"id":17,"count":3,"bytes":1534,"firstSeq":40,"lastSeq":42,"intervalMs":250}}`, ok, true, ""},
		{"unknown keys ignored", `{"v":2,"batch":{"id":17,"count":3,"bytes":1534,"firstSeq":40,"lastSeq":42,"intervalMs":250,"codec":"gzip"}}`, ok, true, ""},
		{"single seq", `{"batch":{"id":1,"count":1,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{ID: 1, Count: 1, Bytes: 2}, true, ""},

		{"record line", `{"seq":42,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{},"prevHash":"","recordHash":"` + hash + `"}`, Header{}, false, ""},
		{"record mentioning batch", `{"seq":42,"kind":"batch","record":{"batch":{"id":1}}}`, Header{}, false, ""},
		{"record with escapes", `{"seq":42,"record":{"s":"\u0001"}}`, Header{}, false, ""},
		{"not json", `hello batch`, Header{}, false, ""},
		{"array", `["batch"]`, Header{}, false, ""},
		{"empty", ``, Header{}, false, ""},

		{"negative count", `{"batch":{"id":1,"count":-1,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `"count" is -1, must be >= 1`},
		{"zero count", `{"batch":{"id":1,"count":0,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `"count" is 0`},
		{"missing field", `{"batch":{"id":1,"count":1,"bytes":2,"firstSeq":0,"intervalMs":0}}`, Header{}, true, `missing "lastSeq"`},
		{"duplicate field", `{"batch":{"id":1,"count":1,"count":2,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `duplicate key "count"`},
		{"duplicate batch", `{"batch":{"id":1,"count":1,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0},"batch":1}`, Header{}, true, `duplicate key "batch"`},
		{"float", `{"batch":{"id":1,"count":1.5,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `"count" must be an integer, got "1.5"`},
		{"exponent", `{"batch":{"id":1,"count":1e2,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `"count" must be an integer`},
		{"string", `{"batch":{"id":"1","count":1,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `"id" must be an integer, got string`},
		{"overflow", `{"batch":{"id":1,"count":1,"bytes":99999999999999999999,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `"bytes" must be an integer`},
		{"seq order", `{"batch":{"id":1,"count":1,"bytes":2,"firstSeq":5,"lastSeq":4,"intervalMs":0}}`, Header{}, true, `"lastSeq" 4 is below "firstSeq" 5`},
		{"zero id", `{"batch":{"id":0,"count":1,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `"id" is 0`},
		{"not an object", `{"batch":[1,2]}`, Header{}, true, `"batch" must be an object, got array`},
		{"truncated header", `{"batch":{"id":1,"count":1,`, Header{}, true, `invalid JSON`},
		{"truncated spaced header", ` { "batch" : {"id":1`, Header{}, true, `invalid JSON`},
		{"trailing garbage", `{"batch":{"id":1,"count":1,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}x`, Header{}, true, `invalid JSON`},
		{"nan", `{"batch":{"id":1,"count":NaN,"bytes":2,"firstSeq":0,"lastSeq":0,"intervalMs":0}}`, Header{}, true, `invalid JSON`},
	}
	var p fastjson.Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, isHeader, err := ParseHeader(&p, []byte(tt.line))
			if isHeader != tt.isHeader {
				t.Errorf("isHeader = %v, want %v", isHeader, tt.isHeader)
			}
			checkErr(t, err, tt.wantErr)
			if h != tt.want {
				t.Errorf("header = %+v, want %+v", h, tt.want)
			}
			if err == nil && isHeader {
				again, isHeader, err := ParseHeader(nil, AppendHeader(nil, h))
				if err != nil || !isHeader || again != h {
					t.Errorf("round trip: %+v %v %v", again, isHeader, err)
				}
			}
		})
	}
}

// "chain" is optional: absent, the header is byte for byte the header of
// batchers before it; present, it is written last and round-trips.
func TestHeaderChain(t *testing.T) {
	const body = `"id":17,"count":3,"bytes":1534,"firstSeq":40,"lastSeq":42,"intervalMs":250`
	base := Header{ID: 17, Count: 3, Bytes: 1534, FirstSeq: 40, LastSeq: 42, IntervalMs: 250}
	withChain := func(c string) Header { h := base; h.Chain = c; return h }
	tests := []struct {
		name    string
		line    string
		want    Header
		wantErr string
	}{
		{"absent", `{"batch":{` + body + `}}`, base, ""},
		{"present", `{"batch":{` + body + `,"chain":"tenant-a.db1"}}`, withChain("tenant-a.db1"), ""},
		{"first", `{"batch":{"chain":"c",` + body + `}}`, withChain("c"), ""},
		{"escaped", `{"batch":{` + body + `,"chain":"\u0041"}}`, withChain("A"), ""},
		{"not an id", `{"batch":{` + body + `,"chain":"a b"}}`, Header{}, `batch header: "chain" "a b": byte 1 is not one of [A-Za-z0-9._:-]`},
		{"non-ASCII", `{"batch":{` + body + `,"chain":"\u00e9"}}`, Header{}, `byte 0 is not one of`},
		{"empty", `{"batch":{` + body + `,"chain":""}}`, Header{}, `batch header: "chain" is empty`},
		{"not a string", `{"batch":{` + body + `,"chain":1}}`, Header{}, `batch header: "chain" must be a string, got number`},
		{"control", `{"batch":{` + body + `,"chain":"a\nb"}}`, Header{}, `is not one of [A-Za-z0-9._:-]`},
		{"duplicate", `{"batch":{` + body + `,"chain":"a","chain":"a"}}`, Header{}, `batch header: duplicate key "chain"`},
		{"too long", `{"batch":{` + body + `,"chain":"` + strings.Repeat("x", 129) + `"}}`, Header{}, `"chain" is 129 bytes, at most 128`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, isHeader, err := ParseHeader(nil, []byte(tt.line))
			if !isHeader {
				t.Fatalf("not taken for a header")
			}
			checkErr(t, err, tt.wantErr)
			if h != tt.want {
				t.Fatalf("header = %+v, want %+v", h, tt.want)
			}
			if err == nil {
				again, _, err := ParseHeader(nil, AppendHeader(nil, h))
				if err != nil || again != h {
					t.Fatalf("round trip: %+v, %v", again, err)
				}
			}
		})
	}
	if got, want := string(AppendHeader(nil, base)), `{"batch":{`+body+`}}`; got != want {
		t.Errorf("no chain:\n got %s\nwant %s", got, want)
	}
	if got, want := string(AppendHeader(nil, withChain("db1"))), `{"batch":{`+body+`,"chain":"db1"}}`; got != want {
		t.Errorf("chain:\n got %s\nwant %s", got, want)
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Errorf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not contain %q", err, want)
	}
}

// BenchmarkParseHeaderRecordLine measures the cost audit-ship pays to learn
// that an ordinary record line is not a header.
func BenchmarkParseHeaderRecordLine(b *testing.B) {
	line := []byte(`{"seq":42,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{"kind":"tool_call","tenantId":"acme","ts":1764244800123,"tool":"http.get","args":{"url":"https://example.com/orders/12345","timeoutMs":5000},"result":{"status":200,"bytes":5120},"durationMs":87,"traceId":"4bf92f3577b34da6a3ce929d0e0e4736"},"prevHash":"` + hash + `","recordHash":"` + hash + `"}`)
	var p fastjson.Parser
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, isHeader, _ := ParseHeader(&p, line); isHeader {
			b.Fatal("record taken for a header")
		}
	}
}

// BenchmarkParseHeaderRecordEscapes: a record line with a \u escape must be
// parsed to rule out an escaped "batch" key.
func BenchmarkParseHeaderRecordEscapes(b *testing.B) {
	line := []byte(`{"seq":2,"ts":1764244800585,"tenantId":"acme","kind":"policy_decision","record":{"kind":"policy_decision","ts":1764244800585,"tenantId":"acme","actor":"agent:orders","tool":"tool_2","decision":"allow","durationMs":396,"detail":{"text":"line\nbreak \"quoted\" \\ back","tab":"\t","ctl":"\u0001\u001f"}},"prevHash":"` + hash + `","recordHash":"` + hash + `"}`)
	var p fastjson.Parser
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, isHeader, _ := ParseHeader(&p, line); isHeader {
			b.Fatal("record taken for a header")
		}
	}
}

func BenchmarkParseHeader(b *testing.B) {
	line := AppendHeader(nil, Header{ID: 17, Count: 500, Bytes: 250000, FirstSeq: 40, LastSeq: 539, IntervalMs: 250})
	var p fastjson.Parser
	for b.Loop() {
		if _, _, err := ParseHeader(&p, line); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIsMark(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{`{"mark":{"type":"anchor","seq":1}}`, true},
		{`{"mark":{}}`, true},
		{`{"seq":1,"ts":2,"tenantId":"a","kind":"k","record":{"mark":1},"prevHash":"","recordHash":""}`, false},
		{`{"batch":{"id":1}}`, false},
		{` {"mark":{}}`, false}, // not audit-read's exact form
		{``, false},
	} {
		if got := IsMark([]byte(tc.line)); got != tc.want {
			t.Errorf("IsMark(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

// The chain mark (lib/chain, issue 15) is a mark line: the stages that drop
// marks drop it.
func TestIsMarkChainMark(t *testing.T) {
	for _, l := range []string{
		`{"mark":{"type":"chain","chain":"0f0f"}}`,
		`{"mark":{"type":"chain","chain":"0f0f","seq":0,"hash":""}}`,
	} {
		if !IsMark([]byte(l)) {
			t.Errorf("IsMark(%s) = false", l)
		}
	}
}
