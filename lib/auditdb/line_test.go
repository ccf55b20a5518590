package auditdb

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendJSONString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"acme", `"acme"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x0b\x1f", `"\u0000\u0001\u000b\u001f"`},
		{"\x7f", "\"\x7f\""}, // DEL is not escaped by JSON.stringify
		{"<script>&'", `"<script>&'"`},
		{"é監査😀", `"é監査😀"`},
		{"\u2028\u2029", "\"\u2028\u2029\""}, // literal, unlike encoding/json
		{"/", `"/"`},
	}
	for _, c := range cases {
		if got := string(AppendJSONString([]byte("x"), c.in)); got != "x"+c.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", c.in, got[1:], c.want)
		}
	}
}

func TestAppendLine(t *testing.T) {
	r := &Row{Seq: 42, TS: -1, TenantID: "acme", Kind: "tool_call", RecordJSON: []byte(`{"a":1}`), PrevHash: "", RecordHash: "ab"}
	want := `pre{"seq":42,"ts":-1,"tenantId":"acme","kind":"tool_call","record":{"a":1},"prevHash":"","recordHash":"ab"}`
	if got := string(AppendLine([]byte("pre"), r)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendLineAllocs(t *testing.T) {
	r := &Row{Seq: 1764244800123, TS: 1764244800123, TenantID: "we\"ird\n", Kind: "tool_call",
		RecordJSON: bytes.Repeat([]byte("x"), 500), PrevHash: strings.Repeat("a", 64), RecordHash: strings.Repeat("b", 64)}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendLine(buf[:0], r) }); n != 0 {
		t.Errorf("AppendLine allocates %v times per call", n)
	}
}

// The escaper's output is a JSON string that decodes to the input, with
// only the escapes JSON.stringify uses and nothing else escaped.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "\x00\x1f\x7f", "\b\f\n\r\t", "é\u2028😀", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendJSONString(nil, s)
		if want := refJSONString(s); string(out) != want {
			t.Fatalf("%q -> %s, want %s", s, out, want)
		}
		if !utf8.ValidString(s) {
			return
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q -> %s: not a JSON string: %v", s, out, err)
		}
		if back != s {
			t.Fatalf("%q -> %s -> %q", s, out, back)
		}
	})
}

// refJSONString is what AppendJSONString must produce, built the slow way;
// bytes of invalid UTF-8 pass through like any other byte >= 0x20.
func refJSONString(s string) string {
	var want strings.Builder
	want.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			want.WriteString(`\"`)
		case c == '\\':
			want.WriteString(`\\`)
		case c == '\b':
			want.WriteString(`\b`)
		case c == '\f':
			want.WriteString(`\f`)
		case c == '\n':
			want.WriteString(`\n`)
		case c == '\r':
			want.WriteString(`\r`)
		case c == '\t':
			want.WriteString(`\t`)
		case c < 0x20:
			want.WriteString(`\u00`)
			want.WriteByte("0123456789abcdef"[c>>4])
			want.WriteByte("0123456789abcdef"[c&15])
		default:
			want.WriteByte(c)
		}
	}
	want.WriteByte('"')
	return want.String()
}

// AppendJSONString skips eight bytes at a time: every byte value, at every
// position of a word and of the tail, next to bytes that look like it.
func TestAppendJSONStringWords(t *testing.T) {
	for n := 1; n <= 19; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				for _, fill := range []byte{'a', 0x21, 0x1f + 0x80, 0xff, 0x5d, 0x23} {
					b := bytes.Repeat([]byte{fill}, n)
					b[pos] = byte(c)
					s := string(b)
					if got, want := string(AppendJSONString(nil, s)), refJSONString(s); got != want {
						t.Fatalf("%q -> %s, want %s", s, got, want)
					}
				}
			}
		}
	}
}
