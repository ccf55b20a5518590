package auditread

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ship"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Record lines with bytes a re-serialisation would change: spacing, key
// order, escapes, U+2028, a "line" key inside the record.
var quarantinedLines = []string{
	`{"seq":7,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{"b":1,"a":"x\u2028y \"q\" \/ é","line":{"seq":1}},"prevHash":"","recordHash":"` + strings.Repeat("a", 64) + `"}`,
	`{"seq":9, "ts":1764244800999 ,"tenantId":"globex","kind":"secret_read","record":{"n":1.50e0,"arr":[{"}":"]"}]},"prevHash":"` + strings.Repeat("a", 64) + `","recordHash":"` + strings.Repeat("b", 64) + `"}`,
}

func writeQuarantine(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "poison.ndjson")
	q, err := ship.OpenQuarantine(path)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, l := range lines {
		var p fastjson.Parser
		v, err := p.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		r := &sink.Record{Seq: v.GetInt64("seq"), Hash: string(v.GetStringBytes("recordHash")), Line: []byte(l)}
		if err := q.Put("elastic:test", r, "400 mapper_parsing_exception: \"line\":{ failed } \n"); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// TestQuarantineInput: the record lines come out byte for byte, in file
// order, each record once even if it was quarantined twice.
func TestQuarantineInput(t *testing.T) {
	path := writeQuarantine(t, quarantinedLines[0], quarantinedLines[1], quarantinedLines[0])
	out, stderr, err := run(t, "--quarantine", path)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr)
	}
	if want := quarantinedLines[0] + "\n" + quarantinedLines[1] + "\n"; out != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
	}
	// Filters apply to the embedded records.
	out, _, err = run(t, "--quarantine", "--tenant", "globex", path)
	if err != nil || out != quarantinedLines[1]+"\n" {
		t.Fatalf("filtered: %q, %v", out, err)
	}
}

func TestQuarantineInputErrors(t *testing.T) {
	path := writeQuarantine(t, quarantinedLines[0])
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(quarantinedLines[1] + "\n") // a plain record line, not an entry
	f.Close()
	out, stderr, err := run(t, "--quarantine", path)
	if exitcode.Of(err) != exitcode.Input || out != quarantinedLines[0]+"\n" || !strings.Contains(stderr, `line 2: not a quarantine entry: no "line" object`) {
		t.Fatalf("out %q, stderr %q, err %v", out, stderr, err)
	}
	if _, _, err := run(t, "--quarantine", "--db", "x.db"); exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("--quarantine --db: %v", err)
	}
}

func TestMemberSpan(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"line":{"a":1}}`, `{"a":1}`},
		{`{ "x" : "line" , "line" : {"s":"}\"{"} }`, `{"s":"}\"{"}`},
		{`{"li\u006ee":[1,{"a":"]"}],"z":2}`, `[1,{"a":"]"}]`},
	} {
		s, e, err := memberSpan([]byte(c.in), "line")
		if err != nil || c.in[s:e] != c.want {
			t.Errorf("memberSpan(%s) = %q, %v; want %q", c.in, c.in[s:e], err, c.want)
		}
	}
	if _, _, err := memberSpan([]byte(`{"line":{},"line":"x"}`), "line"); err == nil {
		t.Error("a repeated key was accepted")
	}
}

// FuzzQuarantined: for any quarantine entry that parses, the bytes taken
// as the record line are exactly the "line" value's (re-serialised by
// fastjson they equal fastjson's own view of it).
func FuzzQuarantined(f *testing.F) {
	for _, l := range quarantinedLines {
		f.Add(`{"seq":1,"recordHash":"x","reason":"r","line":` + l + `}`)
	}
	f.Add(`{"line":{"a":"\"}"},"line":{"b":[1,{"c":"]"}]}}`)
	f.Add(`{ "li\u006ee" : { } , "x":[ "line" ] }`)
	f.Fuzz(func(t *testing.T, entry string) {
		var p, p2 fastjson.Parser
		q, err := parseQuarantined(&p, []byte(entry))
		if err != nil {
			return
		}
		var p3 fastjson.Parser
		whole, err := p3.Parse(entry)
		if err != nil {
			t.Fatalf("accepted invalid JSON %q", entry)
		}
		want := string(whole.Get("line").MarshalTo(nil))
		got, err := p2.ParseBytes(q.line)
		if err != nil {
			t.Fatalf("line span %q does not parse: %v", q.line, err)
		}
		if string(got.MarshalTo(nil)) != want {
			t.Fatalf("line span %q, fastjson says %s", q.line, want)
		}
	})
}
