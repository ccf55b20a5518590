package framing

import (
	"reflect"
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

func TestAppendAck(t *testing.T) {
	a := Ack{Exporter: "splunk:prod", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3}
	got := string(AppendAck(nil, a))
	want := `{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]}}`
	if got != want {
		t.Fatalf("AppendAck:\n got %s\nwant %s", got, want)
	}
	a.Quarantined = []int64{40, 42}
	a.Exporter = "file:\"a\\b\"\n\x01é\u2028"
	got = string(AppendAck(nil, a))
	want = `{"ack":{"exporter":"file:\"a\\b\"\n\u0001é` + "\u2028" + `","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[40,42]}}`
	if got != want {
		t.Fatalf("AppendAck escaping:\n got %s\nwant %s", got, want)
	}
	if err := fastjson.Validate(got); err != nil {
		t.Fatal(err)
	}
	// "since" and "sinceCount" are written only when set (a shipper's
	// run), after "count", so that an ack without them reads as before.
	b := Ack{Exporter: "splunk:prod", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3, Since: 11, SinceCount: 32}
	got = string(AppendAck(nil, b))
	want = `{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"since":11,"sinceCount":32,"quarantined":[]}}`
	if got != want {
		t.Fatalf("AppendAck with since:\n got %s\nwant %s", got, want)
	}
	// Invalid UTF-8 never produces invalid JSON.
	a.Exporter = "x\xffy"
	got = string(AppendAck(nil, a))
	if !strings.Contains(got, `"x`+"\ufffd"+`y"`) {
		t.Fatalf("invalid UTF-8 not replaced: %s", got)
	}
}

func TestParseAck(t *testing.T) {
	line := func(body string) string { return `{"ack":{` + body + `}}` }
	good := `"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3`
	tests := []struct {
		name    string
		line    string
		want    Ack
		wantErr string
	}{
		{"design doc example", line(good + `,"quarantined":[]`), Ack{Exporter: "splunk:prod", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3}, ""},
		{"quarantined", line(good + `,"quarantined":[40,41]`), Ack{Exporter: "splunk:prod", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3, Quarantined: []int64{40, 41}}, ""},
		{"escaped exporter", line(`"exporter":"file:\u0041\"x","firstSeq":1,"lastSeq":1,"lastHash":"` + hash + `","count":1,"quarantined":[]`), Ack{Exporter: `file:A"x`, FirstSeq: 1, LastSeq: 1, LastHash: hash, Count: 1}, ""},
		{"since", line(good + `,"since":11,"sinceCount":32,"quarantined":[]`), Ack{Exporter: "splunk:prod", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3, Since: 11, SinceCount: 32}, ""},
		{"since is firstSeq", line(good + `,"since":40,"sinceCount":3,"quarantined":[]`), Ack{Exporter: "splunk:prod", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3, Since: 40, SinceCount: 3}, ""},
		{"since without sinceCount", line(good + `,"since":11,"quarantined":[]`), Ack{}, `"since" without "sinceCount"`},
		{"sinceCount without since", line(good + `,"sinceCount":32,"quarantined":[]`), Ack{}, `"sinceCount" without "since"`},
		{"since past firstSeq", line(good + `,"since":41,"sinceCount":32,"quarantined":[]`), Ack{}, `"since" 41 is above "firstSeq" 40`},
		{"negative since", line(good + `,"since":-1,"sinceCount":32,"quarantined":[]`), Ack{}, `"since" is -1, must be >= 0`},
		{"sinceCount below count", line(good + `,"since":11,"sinceCount":2,"quarantined":[]`), Ack{}, `"sinceCount" is 2, below "count" 3`},
		{"since not integer", line(good + `,"since":"11","sinceCount":32,"quarantined":[]`), Ack{}, `"since" must be an integer, got string`},
		{"duplicate since", line(good + `,"since":11,"since":12,"sinceCount":32,"quarantined":[]`), Ack{}, `duplicate key "since"`},
		{"whitespace and unknown key", " {\"ack\" : {" + good + ` , "quarantined" : [ ] , "extra":true } } `, Ack{Exporter: "splunk:prod", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3}, ""},

		{"not json", `{"ack":`, Ack{}, "ack: invalid JSON"},
		{"not an object", `[1]`, Ack{}, "must be a JSON object, got array"},
		{"a header", `{"batch":{}}`, Ack{}, `missing "ack" (not an ack line)`},
		{"ack not object", `{"ack":"x"}`, Ack{}, `"ack" must be an object, got string`},
		{"empty exporter", line(`"exporter":"","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]`), Ack{}, `"exporter" is empty`},
		{"exporter not string", line(`"exporter":7,"firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]`), Ack{}, `"exporter" must be a string, got number`},
		{"exporter control", line(`"exporter":"a\nb","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]`), Ack{}, `contains a control character`},
		{"exporter bad utf8", line("\"exporter\":\"a\xffb\",\"firstSeq\":40,\"lastSeq\":42,\"lastHash\":\"" + hash + `","count":3,"quarantined":[]`), Ack{}, `not valid UTF-8`},
		{"upper hash", line(`"exporter":"s","firstSeq":40,"lastSeq":42,"lastHash":"` + strings.ToUpper(hash) + `","count":3,"quarantined":[]`), Ack{}, `"lastHash" must be 64 lowercase hex digits`},
		{"short hash", line(`"exporter":"s","firstSeq":40,"lastSeq":42,"lastHash":"abc","count":3,"quarantined":[]`), Ack{}, `"lastHash" must be 64 lowercase hex digits, got "abc"`},
		{"hash not string", line(`"exporter":"s","firstSeq":40,"lastSeq":42,"lastHash":null,"count":3,"quarantined":[]`), Ack{}, `"lastHash" must be a string, got null`},
		{"seq order", line(`"exporter":"s","firstSeq":43,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]`), Ack{}, `"firstSeq" 43 is above "lastSeq" 42`},
		{"negative seq", line(`"exporter":"s","firstSeq":-1,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]`), Ack{}, `"firstSeq" is -1`},
		{"zero count", line(`"exporter":"s","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":0,"quarantined":[]`), Ack{}, `"count" is 0, must be >= 1`},
		{"missing quarantined", line(good), Ack{}, `missing "quarantined"`},
		{"missing exporter", line(`"firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]`), Ack{}, `missing "exporter"`},
		{"duplicate", line(good + `,"count":4,"quarantined":[]`), Ack{}, `duplicate key "count"`},
		{"quarantined outside", line(good + `,"quarantined":[43]`), Ack{}, `quarantined seq 43 is outside [40, 42]`},
		{"quarantined order", line(good + `,"quarantined":[41,41]`), Ack{}, `strictly ascending: 41 after 41`},
		{"quarantined float", line(good + `,"quarantined":[41.0]`), Ack{}, `"quarantined"[0] must be an integer, got "41.0"`},
		{"quarantined string", line(good + `,"quarantined":["41"]`), Ack{}, `"quarantined"[0] must be an integer, got string`},
		{"quarantined not array", line(good + `,"quarantined":{}`), Ack{}, `"quarantined" must be an array, got object`},
		{"too many quarantined", line(`"exporter":"s","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":1,"quarantined":[40,41]`), Ack{}, `2 quarantined seqs but "count" is 1`},
	}
	var p fastjson.Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAck(&p, []byte(tt.line))
			checkErr(t, err, tt.wantErr)
			if !reflect.DeepEqual(a, tt.want) {
				t.Errorf("ack = %+v, want %+v", a, tt.want)
			}
			if err == nil {
				again, err := ParseAck(nil, AppendAck(nil, a))
				if err != nil || !reflect.DeepEqual(again, a) {
					t.Errorf("round trip: %+v %v", again, err)
				}
			}
		})
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
