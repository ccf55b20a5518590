package ack

import (
	"reflect"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

const hash = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"

func TestAppend(t *testing.T) {
	a := Ack{Exporter: "splunk:prod", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3}
	got := string(Append(nil, a))
	want := `{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]}}`
	if got != want {
		t.Fatalf("AppendAck:\n got %s\nwant %s", got, want)
	}
	a.Quarantined = []int64{40, 42}
	a.Exporter = "file:\"a\\b\"\n\x01é\u2028"
	got = string(Append(nil, a))
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
	got = string(Append(nil, b))
	want = `{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"since":11,"sinceCount":32,"quarantined":[]}}`
	if got != want {
		t.Fatalf("AppendAck with since:\n got %s\nwant %s", got, want)
	}
	// Invalid UTF-8 never produces invalid JSON.
	a.Exporter = "x\xffy"
	got = string(Append(nil, a))
	if !strings.Contains(got, `"x`+"\ufffd"+`y"`) {
		t.Fatalf("invalid UTF-8 not replaced: %s", got)
	}
}

func TestParse(t *testing.T) {
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
			a, err := Parse(&p, []byte(tt.line))
			checkErr(t, err, tt.wantErr)
			if !reflect.DeepEqual(a, tt.want) {
				t.Errorf("ack = %+v, want %+v", a, tt.want)
			}
			if err == nil {
				again, err := Parse(nil, Append(nil, a))
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

// The committed corpus lives in testdata/fuzz/FuzzParse; f.Add below seeds
// the most telling cases too.

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]}}`,
		`{"ack":{"exporter":"f\u00e9\"\\","firstSeq":0,"lastSeq":9,"lastHash":"` + hash + `","count":10,"quarantined":[0,9]}}`,
		`{"ack":{"exporter":"\ud800","firstSeq":1,"lastSeq":1,"lastHash":"` + hash + `","count":1,"quarantined":[]}}`,
		`{"ack":{"exporter":"x","firstSeq":2,"lastSeq":1,"lastHash":"` + hash + `","count":1,"quarantined":[]}}`,
		`{"ack":{"exporter":"x","firstSeq":1,"lastSeq":1,"lastHash":"ABC","count":1,"quarantined":[]}}`,
		`{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"since":1,"sinceCount":42,"quarantined":[]}}`,
		`{"ack":{"exporter":"x","firstSeq":4,"lastSeq":4,"lastHash":"` + hash + `","count":1,"since":5,"sinceCount":0,"quarantined":[]}}`,
		`{"ack":{"exporter":"kafka:fleet","chain":"tenant-a.db1","firstSeq":1,"lastSeq":1,"lastHash":"` + hash + `","count":1,"quarantined":[]}}`,
		`{"ack":{"exporter":"kafka:fleet","chain":"","firstSeq":1,"lastSeq":1,"lastHash":"` + hash + `","count":1,"quarantined":[]}}`,
		`{"ack":{}}`,
		`{"ack":`,
		`{"batch":{}}`,
		``,
	} {
		f.Add([]byte(s))
	}
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, line []byte) {
		a, err := Parse(&p, line)
		if err != nil {
			if !reflect.DeepEqual(a, Ack{}) {
				t.Fatalf("error %v with a non-zero ack %+v", err, a)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("parsed ack does not validate: %v", err)
		}
		out := Append(nil, a)
		if err := fastjson.ValidateBytes(out); err != nil {
			t.Fatalf("AppendAck wrote invalid JSON %q: %v", out, err)
		}
		again, err := Parse(&p, out)
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("round trip of %q: %q gave %+v, %v; want %+v", line, out, again, err, a)
		}
	})
}

// "chain" is optional: absent, the line is byte for byte the line of
// shippers before it; present, it names the chain and round-trips.
func TestChain(t *testing.T) {
	base := Ack{Exporter: "kafka:fleet", FirstSeq: 40, LastSeq: 42, LastHash: hash, Count: 3}
	body := `"firstSeq":40,"lastSeq":42,"lastHash":"` + hash + `","count":3,"quarantined":[]`
	tests := []struct {
		name    string
		line    string
		chain   string // wanted Chain; "" with wantErr == "" means absent
		wantErr string
	}{
		{"absent", `{"ack":{"exporter":"kafka:fleet",` + body + `}}`, "", ""},
		{"present", `{"ack":{"exporter":"kafka:fleet","chain":"tenant-a.db1",` + body + `}}`, "tenant-a.db1", ""},
		{"anywhere", `{"ack":{"exporter":"kafka:fleet",` + body + `,"chain":"c"}}`, "c", ""},
		{"escaped", `{"ack":{"exporter":"kafka:fleet","chain":"\u0041b",` + body + `}}`, "Ab", ""},
		{"not an id", `{"ack":{"exporter":"kafka:fleet","chain":"a/b",` + body + `}}`, "", `ack: "chain" "a/b": byte 1 is not one of [A-Za-z0-9._:-]`},
		{"non-ASCII", `{"ack":{"exporter":"kafka:fleet","chain":"\u00e9",` + body + `}}`, "", `byte 0 is not one of`},
		{"empty", `{"ack":{"exporter":"kafka:fleet","chain":"",` + body + `}}`, "", `ack: "chain" is empty`},
		{"not a string", `{"ack":{"exporter":"kafka:fleet","chain":7,` + body + `}}`, "", `ack: "chain" must be a string, got number`},
		{"null", `{"ack":{"exporter":"kafka:fleet","chain":null,` + body + `}}`, "", `ack: "chain" must be a string, got null`},
		{"control", `{"ack":{"exporter":"kafka:fleet","chain":"a\tb",` + body + `}}`, "", `is not one of [A-Za-z0-9._:-]`},
		{"duplicate", `{"ack":{"exporter":"kafka:fleet","chain":"a","chain":"b",` + body + `}}`, "", `ack: duplicate key "chain"`},
		{"too long", `{"ack":{"exporter":"kafka:fleet","chain":"` + strings.Repeat("c", 129) + `",` + body + `}}`, "", `"chain" is 129 bytes, at most 128`},
		{"longest", `{"ack":{"exporter":"kafka:fleet","chain":"` + strings.Repeat("c", 128) + `",` + body + `}}`, strings.Repeat("c", 128), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(nil, []byte(tt.line))
			checkErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			want := base
			want.Chain = tt.chain
			if !reflect.DeepEqual(a, want) {
				t.Fatalf("Parse = %+v, want %+v", a, want)
			}
			again, err := Parse(nil, Append(nil, a))
			if err != nil || !reflect.DeepEqual(again, a) {
				t.Fatalf("round trip: %+v, %v", again, err)
			}
		})
	}
	// Written right after the exporter, only when set.
	if got, want := string(Append(nil, base)), `{"ack":{"exporter":"kafka:fleet",`+body+`}}`; got != want {
		t.Errorf("no chain:\n got %s\nwant %s", got, want)
	}
	c := base
	c.Chain = "db1"
	if got, want := string(Append(nil, c)), `{"ack":{"exporter":"kafka:fleet","chain":"db1",`+body+`}}`; got != want {
		t.Errorf("chain:\n got %s\nwant %s", got, want)
	}
	c.Chain = "a\x00b"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "byte 1 is not one of") {
		t.Errorf("Validate of a chain with NUL: %v", err)
	}
}
