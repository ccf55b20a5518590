package splunk

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
	"github.com/klauspost/compress/gzip"
)

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `""`},
		{`abc`, `"abc"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f é 日本 😀", "\"\x7f é 日本 😀\""},
		{"\u2028\u2029<>&", "\"\u2028\u2029<>&\""},
		{`{"k":"v\n\u00e9"}`, `"{\"k\":\"v\\n\\u00e9\"}"`},
		{"\xff\xfe", "\"\xff\xfe\""}, // bytes kept as they are
	}
	for _, tt := range tests {
		if got := string(httpsink.AppendJSONString(nil, tt.in)); got != tt.want {
			t.Errorf("httpsink.AppendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := string(httpsink.AppendJSONString([]byte("x"), []byte(tt.in))); got != "x"+tt.want {
			t.Errorf("httpsink.AppendJSONString([]byte %q) = %s, want x%s", tt.in, got, tt.want)
		}
	}
}

// FuzzAppendString: for valid UTF-8, encoding/json decodes the output to
// exactly the input.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", `{"seq":1,"record":{"a":"\u0000"}}`, "\x00\x1f\"\\\u2028😀", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := httpsink.AppendJSONString(nil, s)
		if !utf8.ValidString(s) {
			return
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if got != s {
			t.Fatalf("round trip: %q -> %s -> %q", s, b, got)
		}
	})
}

func TestAppendTime(t *testing.T) {
	tests := []struct {
		ms   int64
		want string
	}{
		{1764244800123, "1764244800.123"},
		{1764244800005, "1764244800.005"},
		{1764244800050, "1764244800.050"},
		{1764244800000, "1764244800.000"},
		{1, "0.001"},
		{999, "0.999"},
		{1000, "1.000"},
	}
	for _, tt := range tests {
		if got := string(appendTime(nil, tt.ms)); got != tt.want {
			t.Errorf("appendTime(%d) = %s, want %s", tt.ms, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
		{"Thu, 27 Nov 2025 12:01:00 GMT", time.Minute},
	}
	for _, tt := range tests {
		if got := httpsink.RetryAfter(tt.h, now); got != tt.want {
			t.Errorf("httpsink.RetryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestEncodeGzipRoundTrip(t *testing.T) {
	recs := records(50, 400)
	meta := appendMeta(nil, "h", "", DefaultSourcetype, "")
	plain, err := encode(meta, recs, false)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // pooled writers and buffers give the same bytes every time
		gz, err := encode(meta, recs, true)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(strings.NewReader(string(gz.Data)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(plain.Data) || gz.Raw != len(plain.Data) || !gz.Gzip {
			t.Fatalf("gzip body differs from the plain one")
		}
		if len(gz.Data)*3 > len(plain.Data) {
			t.Errorf("gzip %d bytes for %d: compression not working", len(gz.Data), len(plain.Data))
		}
	}
}

// BenchmarkEncode builds and gzips a HEC body of 1000 events, beside the
// floor any gzip shipper of these records pays: the same compressor over
// the bare record lines (no envelope, no JSON string around each line).
func BenchmarkEncode(b *testing.B) {
	recs := records(1000, 500)
	meta := appendMeta(nil, "host-1", "auditpipe", DefaultSourcetype, "declaragent_prod")
	var in int
	var lines []byte
	for _, r := range recs {
		in += len(r.Line)
		lines = append(append(lines, r.Line...), '\n')
	}
	b.Run("events", func(b *testing.B) {
		b.SetBytes(int64(in)) // MB/s of record lines
		b.ReportAllocs()
		var out int
		for b.Loop() {
			body, err := encode(meta, recs, true)
			if err != nil {
				b.Fatal(err)
			}
			out = len(body.Data)
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(in)/float64(out), "ratio")
	})
	b.Run("gzip-lines-baseline", func(b *testing.B) {
		b.SetBytes(int64(in))
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		for b.Loop() {
			out.Reset()
			zw.Reset(&out)
			zw.Write(lines)
			zw.Close()
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(in)/float64(out.Len()), "ratio")
	})
}
