package jsonstr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"
)

// ref is the obvious byte-at-a-time escaper Append must agree with.
func ref(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\b':
			dst = append(dst, `\b`...)
		case c == '\f':
			dst = append(dst, `\f`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c < 0x20:
			dst = append(dst, fmt.Sprintf(`\u%04x`, c)...)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func TestAppend(t *testing.T) {
	cases := []string{
		"", "a", `"`, `\`, "\x00", "\x1f", " ", "\x7f", "\xff\xfe", "é😀\u2028<>&",
		`{"seq":1,"record":{"a":"b\"c\\d\n"}}`, "12345678\"", "1234567\"8", "\"1234567",
		strings.Repeat("\x01", 40), strings.Repeat("\\\"", 33), strings.Repeat("a", 1000) + "\x00",
	}
	// Every byte value at every position of words 1..19 long.
	for n := 1; n < 20; n++ {
		for c := 0; c < 256; c++ {
			for p := 0; p < n; p++ {
				b := bytes.Repeat([]byte("x"), n)
				b[p] = byte(c)
				cases = append(cases, string(b))
			}
		}
	}
	for _, s := range cases {
		for _, prefix := range []string{"", "pre"} {
			want := string(ref([]byte(prefix), []byte(s)))
			if got := string(Append([]byte(prefix), []byte(s))); got != want {
				t.Fatalf("Append(%q, %q):\n got %s\nwant %s", prefix, s, got, want)
			}
			if got := string(AppendString([]byte(prefix), s)); got != want {
				t.Fatalf("AppendString(%q, %q) = %s", prefix, s, got)
			}
		}
		if utf8.ValidString(s) {
			var back string
			if err := json.Unmarshal(AppendString(nil, s), &back); err != nil || back != s {
				t.Fatalf("%q does not decode back: %q, %v", s, back, err)
			}
		}
	}
}

// The output must be JSON.stringify's, byte for byte (Node is the judge).
func TestMatchesJSONStringify(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	var in []string
	for c := 0; c < 0x80; c++ {
		in = append(in, fmt.Sprintf("a%cbcdefgh%cij", c, c))
	}
	in = append(in, "é😀\u2028\u2029<>&", strings.Repeat(`"\`, 20))
	doc, _ := json.Marshal(in)
	out, err := exec.Command(node, "-e", `for (const s of JSON.parse(process.argv[1])) console.log(JSON.stringify(s))`, string(doc)).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(in) {
		t.Fatalf("node printed %d lines for %d strings", len(lines), len(in))
	}
	for i, s := range in {
		if got := string(AppendString(nil, s)); got != lines[i] {
			t.Errorf("%q: got %s, JSON.stringify gives %s", s, got, lines[i])
		}
	}
}

func TestAppendAllocs(t *testing.T) {
	s := []byte(strings.Repeat(`{"a":"b"}`, 50))
	dst := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { dst = Append(dst[:0], s) }); n != 0 {
		t.Fatalf("Append allocates %v times with room in dst", n)
	}
}

func FuzzAppend(f *testing.F) {
	f.Add([]byte(`{"seq":1,"ts":2,"record":{"note":"a\tb"}}`), []byte("x"))
	f.Add([]byte("\x00abcdefgh\"\\\x1f\x20\x7f\xff"), []byte(nil))
	f.Fuzz(func(t *testing.T, s, prefix []byte) {
		want := ref(bytes.Clone(prefix), s)
		if got := Append(bytes.Clone(prefix), s); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

var benchLine = []byte(`{"seq":123456,"ts":1764244800389,"tenantId":"initech","kind":"channel_event","record":{"actor":"agent:orders","decision":"allow","detail":{"note":"resolved refund customer threshold escalated resolved sep order emoji \ud83d\ude00 and more text to make it long"},"durationMs":1122,"kind":"channel_event","requestId":"req-0","tenantId":"initech","tool":"vault.read","ts":1764244800389},"prevHash":"` + strings.Repeat("ab", 32) + `","recordHash":"` + strings.Repeat("cd", 32) + `"}`)

// BenchmarkAppend: a record line, against the byte-at-a-time table loop
// (what the sinks used before) in the same run.
func BenchmarkAppend(b *testing.B) {
	dst := make([]byte, 0, 4096)
	b.SetBytes(int64(len(benchLine)))
	b.Run("words", func(b *testing.B) {
		for b.Loop() {
			dst = Append(dst[:0], benchLine)
		}
	})
	b.Run("table-baseline", func(b *testing.B) {
		for b.Loop() {
			dst = append(dst[:0], '"')
			start := 0
			for i, c := range benchLine {
				if e := escape[c]; e != 0 {
					dst = append(dst, benchLine[start:i]...)
					dst = append(dst, '\\', e)
					start = i + 1
				}
			}
			dst = append(append(dst, benchLine[start:]...), '"')
		}
	})
}
