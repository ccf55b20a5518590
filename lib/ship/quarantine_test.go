package ship

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// at is the fixed clock of these tests: 2025-11-27T12:00:00.123Z.
var at = time.UnixMilli(1764244800123)

func openQ(t *testing.T, path string) *Quarantine {
	t.Helper()
	q, err := OpenQuarantine(path)
	if err != nil {
		t.Fatal(err)
	}
	q.now = func() time.Time { return at }
	return q
}

// TestQuarantinePut: each Put appends exactly one line, byte for byte:
// the record line embedded as it was received (its spacing and escapes
// kept), the reason and exporter as JSON strings, whatever they hold.
func TestQuarantinePut(t *testing.T) {
	h := strings.Repeat("ab", 32)
	rec := `{"seq":42,"ts":1,"tenantId":"acme","kind":"k","record":{"a":"\u00e9 \"x\""},"prevHash":"","recordHash":"` + h + `"}`
	head := `{"quarantinedAt":1764244800123,"exporter":"splunk:prod","seq":42,"recordHash":"` + h + `","reason":`
	tests := []struct {
		name     string
		exporter string
		reason   string
		line     string
		want     string
	}{
		{"plain", "splunk:prod", "HTTP 400 code 6: Invalid data format", rec,
			head + `"HTTP 400 code 6: Invalid data format","line":` + rec + "}\n"},
		{"record bytes kept", "splunk:prod", "r", `{ "seq" : 42 ,"record":{"b":1.50,"c":"\u0041"} }`,
			head + `"r","line":{ "seq" : 42 ,"record":{"b":1.50,"c":"\u0041"} }}` + "\n"},
		{"reason escaped", "splunk:prod", "bad \"field\"\\ at\nline 2\r\tend", rec,
			head + `"bad \"field\"\\ at\nline 2\r\tend","line":` + rec + "}\n"},
		{"reason control bytes", "splunk:prod", "a\x00b\x1fc\x08", rec,
			head + `"a\u0000b\u001fc\u0008","line":` + rec + "}\n"},
		{"reason unicode kept", "splunk:prod", "é ✓ \u2028", rec,
			head + "\"é ✓ \u2028\",\"line\":" + rec + "}\n"},
		{"reason invalid UTF-8 replaced", "splunk:prod", "a\xffb", rec,
			head + "\"a\ufffdb\",\"line\":" + rec + "}\n"},
		{"exporter escaped", "file:\"q\"\\x", "r", rec,
			`{"quarantinedAt":1764244800123,"exporter":"file:\"q\"\\x","seq":42,"recordHash":"` + h + `","reason":"r","line":` + rec + "}\n"},
		{"exporter non-ASCII", "file:é", "r", rec,
			`{"quarantinedAt":1764244800123,"exporter":"file:é","seq":42,"recordHash":"` + h + `","reason":"r","line":` + rec + "}\n"},
		{"exporter control byte", "file:a\x7fb\x01", "r", rec,
			"{\"quarantinedAt\":1764244800123,\"exporter\":\"file:a\x7fb\\u0001\",\"seq\":42,\"recordHash\":\"" + h + `","reason":"r","line":` + rec + "}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q.ndjson")
			q := openQ(t, path)
			r := &sink.Record{Seq: 42, Hash: h, Line: []byte(tt.line)}
			if err := q.Put(tt.exporter, r, tt.reason); err != nil {
				t.Fatal(err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("quarantine file:\n got %q\nwant %q", got, tt.want)
			}
			// Whatever the strings, the line is one valid JSON object
			// whose "line" is the record's bytes.
			var v struct {
				Exporter string          `json:"exporter"`
				Line     json.RawMessage `json:"line"`
			}
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatalf("not valid JSON: %v", err)
			}
			if string(v.Line) != tt.line {
				t.Fatalf("line %s, want %s", v.Line, tt.line)
			}
		})
	}
}

// TestQuarantineFile: the file is created 0600, an existing one is
// appended to (never truncated), Puts land in order, concurrent Puts never
// interleave within a line, and a path that cannot be opened says so.
func TestQuarantineFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.ndjson")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := openQ(t, path)
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := `{"seq":` + strconv.Itoa(i) + `,"pad":"` + strings.Repeat("p", 5000) + `"}`
			if err := q.Put("x:y", &sink.Record{Seq: int64(i), Hash: strings.Repeat("0", 64), Line: []byte(line)}, "reason "+strconv.Itoa(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if q.Path() != path {
		t.Errorf("Path %q", q.Path())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != n+1 || lines[0] != "earlier" {
		t.Fatalf("%d lines, first %q: want the earlier line kept and %d more", len(lines), lines[0], n)
	}
	seen := map[int64]bool{}
	for _, l := range lines[1:] {
		var v struct {
			Seq    int64  `json:"seq"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("interleaved or torn line (%v): %.80q", err, l)
		}
		if v.Reason != "reason "+strconv.FormatInt(v.Seq, 10) || seen[v.Seq] {
			t.Fatalf("line for seq %d: reason %q (seen %v)", v.Seq, v.Reason, seen[v.Seq])
		}
		seen[v.Seq] = true
	}

	// Sequential Puts land in order.
	p2 := filepath.Join(dir, "q2.ndjson")
	q2 := openQ(t, p2)
	for i := range 3 {
		if err := q2.Put("x:y", &sink.Record{Seq: int64(i), Hash: "h", Line: []byte(`{}`)}, "r"); err != nil {
			t.Fatal(err)
		}
	}
	q2.Close()
	got, _ = os.ReadFile(p2)
	want := ""
	for i := range 3 {
		want += `{"quarantinedAt":1764244800123,"exporter":"x:y","seq":` + strconv.Itoa(i) + `,"recordHash":"h","reason":"r","line":{}}` + "\n"
	}
	if string(got) != want {
		t.Fatalf("in order:\n got %q\nwant %q", got, want)
	}
	fi, err := os.Stat(p2)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	// A Put after Close fails: nothing is lost silently.
	if err := q2.Put("x:y", &sink.Record{Seq: 9, Hash: "h", Line: []byte(`{}`)}, "r"); err == nil {
		t.Errorf("Put after Close: no error")
	}

	for _, bad := range []string{dir, filepath.Join(dir, "missing", "q.ndjson")} {
		if _, err := OpenQuarantine(bad); err == nil || !strings.HasPrefix(err.Error(), "open quarantine: ") {
			t.Errorf("OpenQuarantine(%s): %v, want an open quarantine error", bad, err)
		}
	}
}
