package chain

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

// parseShape must accept audit-read's layout and agree with Parse on it.
func TestParseShapeAgreesWithParse(t *testing.T) {
	b, err := os.ReadFile("testdata/chain-public.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	lines = append(lines, testChain(5)...)
	var sp, fp LineParser
	for i, l := range lines {
		got, ok := sp.parseShape(l)
		if !ok {
			t.Fatalf("line %d: parseShape rejected audit-read's layout: %s", i+1, l)
		}
		want, err := fp.Parse(l)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want.RecordKind = nil // parseShape does not look inside the record
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("line %d:\nshape %+v\nparse %+v", i+1, got, want)
		}
	}
}

// Lines that are valid but not in the exact layout, or invalid outside the
// record, are left to Parse.
func TestParseShapeRejects(t *testing.T) {
	h := strings.Repeat("a", 64)
	good := `{"seq":2,"ts":5,"tenantId":"t","kind":"k","record":{"a":1},"prevHash":"` + h + `","recordHash":"` + h + `"}`
	var p LineParser
	if _, ok := p.parseShape([]byte(good)); !ok {
		t.Fatalf("the base line is not recognised: %s", good)
	}
	for _, c := range []struct{ name, line string }{
		{"space after colon", strings.Replace(good, `"seq":2`, `"seq": 2`, 1)},
		{"keys reordered", `{"ts":5,"seq":2` + good[len(`{"seq":2,"ts":5`):]},
		{"seq zero", strings.Replace(good, `"seq":2`, `"seq":0`, 1)},
		{"seq leading zero", strings.Replace(good, `"seq":2`, `"seq":02`, 1)},
		{"seq float", strings.Replace(good, `"seq":2`, `"seq":2.0`, 1)},
		{"ts string", strings.Replace(good, `"ts":5`, `"ts":"5"`, 1)},
		{"tenant not a string", strings.Replace(good, `"tenantId":"t"`, `"tenantId":7`, 1)},
		{"control byte in tenant", strings.Replace(good, `"tenantId":"t"`, "\"tenantId\":\"t\x01\"", 1)},
		{"record not an object", strings.Replace(good, `{"a":1}`, `[1]`, 1)},
		{"extra key before prevHash", strings.Replace(good, `{"a":1}`, `{"a":1},"x":{}`, 1) + "x"},
		{"uppercase hash", strings.Replace(good, `"recordHash":"a`, `"recordHash":"A`, 1)},
		{"short prevHash", strings.Replace(good, `"prevHash":"`+h, `"prevHash":"`+h[1:], 1)},
		{"escaped hash", strings.Replace(good, `"recordHash":"a`, `"recordHash":"\u0061`, 1)},
		{"trailing space", good + " "},
		{"no closing brace", good[:len(good)-1]},
		{"truncated", good[:40]},
	} {
		if r, ok := p.parseShape([]byte(c.line)); ok {
			t.Errorf("%s: accepted %s as %+v", c.name, c.line, r)
		}
	}
	empty := strings.Replace(good, `"prevHash":"`+h+`"`, `"prevHash":""`, 1)
	if r, ok := p.parseShape([]byte(empty)); !ok || len(r.PrevHash) != 0 || string(r.Raw) != `{"a":1}` {
		t.Errorf("empty prevHash: ok %v, %+v", ok, r)
	}
}

// FuzzParseShape: whatever parseShape accepts, Parse reads the same fields
// from, or rejects for a reason inside the record (which the verifier then
// reports, since such a record cannot match its hash).
func FuzzParseShape(f *testing.F) {
	for _, l := range testChain(3) {
		f.Add(l)
	}
	h := strings.Repeat("0", 64)
	f.Add([]byte(`{"seq":1,"ts":-3,"tenantId":"\u00e9","kind":"","record":{"x":"},\"prevHash\":\""},"prevHash":"","recordHash":"` + h + `"}`))
	f.Add([]byte(`{"seq":1,"ts":1,"tenantId":"a","kind":"b","record":{,"prevHash":"","recordHash":"` + h + `"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var sp, fp LineParser
		got, ok := sp.parseShape(line)
		if !ok {
			return
		}
		start := len(line) - len(bytes.TrimPrefix(line, line[:bytes.Index(line, []byte(`,"record":`))+len(`,"record":`)]))
		if !bytes.Equal(line[start:start+len(got.Raw)], got.Raw) {
			t.Fatalf("Raw is not where the record starts")
		}
		want, err := fp.Parse(line)
		if err != nil {
			pe := err.(*ParseError)
			// A broken record can swallow what follows it (an unclosed
			// string), so the error may come after Raw; never before it.
			if pe.Col-1 < start || pe.Reason != ReasonBadJSON {
				t.Fatalf("parseShape accepted a line whose problem is before the record: %v (record at %d..%d)", err, start, start+len(got.Raw))
			}
			return
		}
		want.RecordKind = nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("\nshape %+v\nparse %+v", got, want)
		}
	})
}
