package httpsink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"::ffff:127.0.0.1": true, "10.0.0.5": false, "example.com": false, "0.0.0.0": false, "": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, " 2 ": 2 * time.Second, "-1": 0, "soon": 0,
		"Fri, 27 Nov 2026 12:00:30 GMT": 30 * time.Second, "Fri, 27 Nov 2026 11:00:00 GMT": 0,
	} {
		if got := RetryAfter(h, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	c, err := TLS{}.Config("x")
	if err != nil || c.MinVersion != 0x0303 || c.InsecureSkipVerify || c.RootCAs != nil {
		t.Fatalf("default config %+v, %v", c, err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := (TLS{CAFile: bad}).Config("splunk"); err == nil || !strings.Contains(err.Error(), "splunk: CA file") {
		t.Fatalf("bad CA file: %v", err)
	}
	if _, err := (TLS{CertFile: "c.pem"}).Config("elastic"); err == nil || !strings.Contains(err.Error(), "both CertFile and KeyFile") {
		t.Fatalf("cert without key: %v", err)
	}
}

func TestClean(t *testing.T) {
	long := strings.Repeat("é", MaxMessage) // 2 bytes each: the cut must land on a rune boundary
	cases := []struct{ in, want string }{
		{"  bad token hunter2\n", "bad token [x]"},
		{"a\x01b\tc", "a b c"},
		{"hunter2hunter2", "[x][x]"},
	}
	for _, c := range cases {
		if got := Clean(c.in, []string{"", "hunter2"}, "[x]"); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := Clean(long, nil, "[x]")
	if !strings.HasSuffix(got, "…") || len(got) > MaxMessage+len("…") || !utf8.ValidString(got) {
		t.Errorf("long text cut to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

// refJSONString is the byte-at-a-time escaper AppendJSONString must match.
func refJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, fmt.Sprintf(`\u%04x`, c)...)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{
		"", "a", `"`, `\`, "\x00", "\x1f", " ", "\x7f", "\xff\xfe", "é😀\u2028<>&",
		`{"seq":1,"record":{"a":"b\"c\\d\n"}}`,
		"12345678\"", "1234567\"8", "\"1234567", "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09",
		"abcdefgh\x19ijklmnop\x80\x9f\xa0\xdf\xe0", strings.Repeat("\\\"", 9),
	} {
		want := string(refJSONString([]byte("x"), []byte(s)))
		if got := string(AppendJSONString([]byte("x"), s)); got != want {
			t.Errorf("string %q:\n got %s\nwant %s", s, got, want)
		}
		if got := string(AppendJSONString([]byte("x"), []byte(s))); got != want {
			t.Errorf("[]byte %q:\n got %s\nwant %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal(AppendJSONString(nil, s), &back); err != nil || (back != s && utf8.ValidString(s)) {
			t.Errorf("%q does not decode back: %q, %v", s, back, err)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add([]byte(`{"seq":1,"ts":2,"record":{"note":"a\tb"}}`))
	f.Add([]byte("\x00abcdefgh\"\\\x1f\x20\x7f\xff"))
	f.Fuzz(func(t *testing.T, s []byte) {
		want := refJSONString(nil, s)
		if got := AppendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

func BenchmarkAppendJSONString(b *testing.B) {
	line := []byte(`{"seq":123456,"ts":1764244800389,"tenantId":"initech","kind":"channel_event","record":{"actor":"agent:orders","decision":"allow","detail":{"note":"resolved refund customer threshold escalated resolved sep order emoji \ud83d\ude00 and more text to make it long"},"durationMs":1122,"kind":"channel_event","requestId":"req-0","tenantId":"initech","tool":"vault.read","ts":1764244800389},"prevHash":"` + strings.Repeat("ab", 32) + `","recordHash":"` + strings.Repeat("cd", 32) + `"}`)
	dst := make([]byte, 0, 4096)
	b.SetBytes(int64(len(line)))
	b.Run("swar", func(b *testing.B) {
		for b.Loop() {
			dst = AppendJSONString(dst[:0], line)
		}
	})
	b.Run("table-baseline", func(b *testing.B) { // the byte-at-a-time table loop it replaced
		for b.Loop() {
			dst = append(dst[:0], '"')
			start := 0
			for i, c := range line {
				if e := escape[c]; e != 0 {
					dst = append(dst, line[start:i]...)
					dst = append(dst, '\\', e)
					start = i + 1
				}
			}
			dst = append(append(dst, line[start:]...), '"')
		}
	})
}
