package ndjson

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// got is one result of Next in a form that compares with ==.
type got struct {
	Num   int64
	Bytes string
	Nil   bool // Line.Bytes was nil
	Kind  error
	Col   int64
	Len   int64
}

func (g got) String() string {
	return fmt.Sprintf("{%d %q nil=%v %v col=%d len=%d}", g.Num, g.Bytes, g.Nil, g.Kind, g.Col, g.Len)
}

// readAll calls Next until io.EOF or a fatal error and returns what it got.
func readAll(t testing.TB, r *Reader) ([]got, error) {
	t.Helper()
	var out []got
	for i := 0; ; i++ {
		if i > 1e6 {
			t.Fatal("Next never returned io.EOF")
		}
		line, err := r.Next()
		var le *LineError
		switch {
		case err == nil:
			out = append(out, got{Num: line.Num, Bytes: string(line.Bytes), Nil: line.Bytes == nil})
		case errors.As(err, &le):
			if le.Num != line.Num {
				t.Errorf("LineError.Num %d != Line.Num %d", le.Num, line.Num)
			}
			if !errors.Is(err, le.Kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, le.Kind)
			}
			out = append(out, got{Num: line.Num, Bytes: string(line.Bytes), Nil: line.Bytes == nil, Kind: le.Kind, Col: le.Col, Len: le.Len})
		default:
			return out, err
		}
	}
}

func ok(num int64, s string) got { return got{Num: num, Bytes: s} }

func TestReader(t *testing.T) {
	big := strings.Repeat("x", 40)
	tests := []struct {
		name  string
		opt   Options
		in    string
		want  []got
		blank int64
	}{
		{name: "empty", in: ""},
		{name: "one line", in: "{}\n", want: []got{ok(1, "{}")}},
		{name: "two lines", in: "{\"a\":1}\n{\"b\":2}\n", want: []got{ok(1, `{"a":1}`), ok(2, `{"b":2}`)}},
		{name: "crlf", in: "a\r\nb\r\n", want: []got{ok(1, "a"), ok(2, "b")}},
		{name: "mixed lf crlf", in: "a\nb\r\nc\n", want: []got{ok(1, "a"), ok(2, "b"), ok(3, "c")}},
		{name: "only one cr stripped", in: "a\r\r\n", want: []got{ok(1, "a\r")}},
		{name: "cr inside kept", in: "a\rb\n", want: []got{ok(1, "a\rb")}},
		{name: "bom at start skipped", in: "\xEF\xBB\xBF{}\n{}\n", want: []got{ok(1, "{}"), ok(2, "{}")}},
		{name: "bom elsewhere kept", in: "{}\n\xEF\xBB\xBF{}\n", want: []got{ok(1, "{}"), ok(2, "\xEF\xBB\xBF{}")}},
		{name: "two boms at start", in: "\xEF\xBB\xBF\xEF\xBB\xBF{}\n", want: []got{ok(1, "\xEF\xBB\xBF{}")}},
		{name: "bom only", in: "\xEF\xBB\xBF"},
		{name: "bom then newline", in: "\xEF\xBB\xBF\n{}\n", want: []got{ok(2, "{}")}, blank: 1},
		{name: "partial bom is bytes", in: "\xEF\xBB{}\n", want: []got{{Num: 1, Bytes: "\xEF\xBB{}", Kind: ErrInvalidUTF8, Col: 1}}},
		{name: "blank lines skipped and counted", in: "\n  \n\t\r\n{}\n \r\n{}\n\n", want: []got{ok(4, "{}"), ok(6, "{}")}, blank: 5},
		{name: "only blank lines", in: "\n\n\r\n", blank: 3},
		{name: "space inside is not blank", in: " {} \n", want: []got{ok(1, " {} ")}},
		{name: "vertical tab is not blank", in: "\v\n", want: []got{ok(1, "\v")}},
		{name: "truncated last line", in: "{}\n{\"a\"", want: []got{ok(1, "{}"), {Num: 2, Bytes: `{"a"`, Kind: ErrTruncated}}},
		{name: "truncated only line", in: "x", want: []got{{Num: 1, Bytes: "x", Kind: ErrTruncated}}},
		{name: "truncated cr stripped", in: "x\r", want: []got{{Num: 1, Bytes: "x", Kind: ErrTruncated}}},
		{name: "truncated beats nul", in: "a\x00", want: []got{{Num: 1, Bytes: "a\x00", Kind: ErrTruncated}}},
		{name: "trailing blank without newline", in: "{}\n  ", want: []got{ok(1, "{}")}, blank: 1},
		{name: "trailing cr without newline", in: "{}\n\r", want: []got{ok(1, "{}")}, blank: 1},
		{name: "newline at eof is normal", in: "{}\n", want: []got{ok(1, "{}")}},
		{name: "nul", in: "ab\x00c\n{}\n", want: []got{{Num: 1, Bytes: "ab\x00c", Kind: ErrNUL, Col: 3}, ok(2, "{}")}},
		{name: "nul at start", in: "\x00\n", want: []got{{Num: 1, Bytes: "\x00", Kind: ErrNUL, Col: 1}}},
		{name: "nul before invalid utf8", in: "\xff\x00\n", want: []got{{Num: 1, Bytes: "\xff\x00", Kind: ErrNUL, Col: 2}}},
		{name: "invalid utf8", in: "ab\xffc\n{}\n", want: []got{{Num: 1, Bytes: "ab\xffc", Kind: ErrInvalidUTF8, Col: 3}, ok(2, "{}")}},
		{name: "invalid utf8 after multibyte", in: "é€\xc3\n", want: []got{{Num: 1, Bytes: "é€\xc3", Kind: ErrInvalidUTF8, Col: 6}}},
		{name: "surrogate is invalid", in: "a\xed\xa0\x80\n", want: []got{{Num: 1, Bytes: "a\xed\xa0\x80", Kind: ErrInvalidUTF8, Col: 2}}},
		{name: "overlong is invalid", in: "\xc0\xaf\n", want: []got{{Num: 1, Bytes: "\xc0\xaf", Kind: ErrInvalidUTF8, Col: 1}}},
		{name: "valid multibyte", in: "{\"k\":\"é€𝄞\uFFFD\"}\n", want: []got{ok(1, "{\"k\":\"é€𝄞\uFFFD\"}")}},
		{name: "too long", opt: Options{MaxLine: 4}, in: "12345\n1234\nabc",
			want: []got{{Num: 1, Nil: true, Kind: ErrTooLong, Len: 5}, ok(2, "1234"), {Num: 3, Bytes: "abc", Kind: ErrTruncated}}},
		{name: "crlf not counted in max", opt: Options{MaxLine: 4}, in: "1234\r\n12345\r\n",
			want: []got{ok(1, "1234"), {Num: 2, Nil: true, Kind: ErrTooLong, Len: 5}}},
		{name: "too long blank", opt: Options{MaxLine: 4}, in: "      \n{}\n",
			want: []got{{Num: 1, Nil: true, Kind: ErrTooLong, Len: 6}, ok(2, "{}")}},
		{name: "too long last line unterminated", opt: Options{MaxLine: 4}, in: "{}\n123456",
			want: []got{ok(1, "{}"), {Num: 2, Nil: true, Kind: ErrTooLong, Len: 6}}},
		{name: "too long beats nul", opt: Options{MaxLine: 2}, in: "\x00\x00\x00\n",
			want: []got{{Num: 1, Nil: true, Kind: ErrTooLong, Len: 3}}},
		{name: "spans buffer", opt: Options{BufferSize: 16}, in: big + "\n" + big + "\r\n{}\n",
			want: []got{ok(1, big), ok(2, big), ok(3, "{}")}},
		{name: "spans buffer exactly max", opt: Options{BufferSize: 16, MaxLine: 40}, in: big + "\n" + big + "\r\n" + big + "y\n" + big + "y\r\n{}\n",
			want: []got{ok(1, big), ok(2, big), {Num: 3, Nil: true, Kind: ErrTooLong, Len: 41}, {Num: 4, Nil: true, Kind: ErrTooLong, Len: 41}, ok(5, "{}")}},
		{name: "spans buffer too long", opt: Options{BufferSize: 16, MaxLine: 20}, in: big + "\r\n" + big[:20] + "\n",
			want: []got{{Num: 1, Nil: true, Kind: ErrTooLong, Len: 40}, ok(2, big[:20])}},
		{name: "spans buffer cr split from lf", opt: Options{BufferSize: 16, MaxLine: 16}, in: strings.Repeat("z", 16) + "\r\n",
			want: []got{ok(1, strings.Repeat("z", 16))}},
		{name: "spans buffer truncated", opt: Options{BufferSize: 16}, in: "{}\n" + big,
			want: []got{ok(1, "{}"), {Num: 2, Bytes: big, Kind: ErrTruncated}}},
		{name: "spans buffer with bom", opt: Options{BufferSize: 16}, in: "\xEF\xBB\xBF" + big + "\n",
			want: []got{ok(1, big)}},
		{name: "spans buffer nul", opt: Options{BufferSize: 16}, in: big + "\x00\n",
			want: []got{{Num: 1, Bytes: big + "\x00", Kind: ErrNUL, Col: 41}}},
		{name: "spans buffer blank", opt: Options{BufferSize: 16}, in: strings.Repeat(" ", 40) + "\n{}\n",
			want: []got{ok(2, "{}")}, blank: 1},
		{name: "not gzip: 1f alone", in: "\x1f{}\n", want: []got{ok(1, "\x1f{}")}},
		{name: "not gzip: short", in: "\x1f", want: []got{{Num: 1, Bytes: "\x1f", Kind: ErrTruncated}}},
		{name: "not zstd: 28 b5 2f", in: "\x28\xb5\x2f\n", want: []got{{Num: 1, Bytes: "\x28\xb5\x2f", Kind: ErrInvalidUTF8, Col: 2}}},
		{name: "not zstd: paren", in: "(\n", want: []got{ok(1, "(")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The same input, read whole, one byte at a time and in halves,
			// must give the same result.
			readers := map[string]func(io.Reader) io.Reader{
				"whole":    func(r io.Reader) io.Reader { return r },
				"onebyte":  iotest.OneByteReader,
				"half":     iotest.HalfReader,
				"dataerr":  iotest.DataErrReader,
				"gzip":     func(r io.Reader) io.Reader { return bytes.NewReader(gzipBytes(t, mustRead(r))) },
				"zstd":     func(r io.Reader) io.Reader { return bytes.NewReader(zstdBytes(t, mustRead(r))) },
				"gzip/one": func(r io.Reader) io.Reader { return iotest.OneByteReader(bytes.NewReader(gzipBytes(t, mustRead(r)))) },
			}
			for name, wrap := range readers {
				r, err := NewReader(wrap(strings.NewReader(tt.in)), tt.opt)
				if err != nil {
					t.Fatalf("%s: NewReader: %v", name, err)
				}
				lines, err := readAll(t, r)
				if err != io.EOF {
					t.Fatalf("%s: final error %v, want io.EOF", name, err)
				}
				if !equal(lines, tt.want) {
					t.Errorf("%s:\n got %v\nwant %v", name, lines, tt.want)
				}
				if _, err := r.Next(); err != io.EOF {
					t.Errorf("%s: Next after EOF: %v, want io.EOF", name, err)
				}
				st := r.Stats()
				if st.Blank != tt.blank {
					t.Errorf("%s: Stats.Blank = %d, want %d", name, st.Blank, tt.blank)
				}
				if st.Bytes != int64(len(tt.in)) {
					t.Errorf("%s: Stats.Bytes = %d, want %d", name, st.Bytes, len(tt.in))
				}
				wantLines := int64(strings.Count(strings.TrimPrefix(tt.in, "\xEF\xBB\xBF"), "\n"))
				if in := strings.TrimPrefix(tt.in, "\xEF\xBB\xBF"); in != "" && !strings.HasSuffix(in, "\n") {
					wantLines++
				}
				if st.Lines != wantLines {
					t.Errorf("%s: Stats.Lines = %d, want %d", name, st.Lines, wantLines)
				}
				var kinds = map[error]int64{}
				for _, l := range lines {
					kinds[l.Kind]++
				}
				if st.TooLong != kinds[ErrTooLong] || st.Truncated != kinds[ErrTruncated] || st.NUL != kinds[ErrNUL] || st.InvalidUTF8 != kinds[ErrInvalidUTF8] {
					t.Errorf("%s: Stats %+v do not match the errors returned", name, st)
				}
			}
		})
	}
}

func equal(a, b []got) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustRead(r io.Reader) []byte {
	b, err := io.ReadAll(r)
	if err != nil {
		panic(err)
	}
	return b
}

func gzipBytes(t testing.TB, members ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range members {
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, frames ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, f := range frames {
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(f); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestReaderCompression(t *testing.T) {
	plain := []byte("\xEF\xBB\xBF{\"a\":1}\r\n\n{\"b\":2}\n")
	want := []got{ok(1, `{"a":1}`), ok(3, `{"b":2}`)}
	tests := []struct {
		name string
		in   []byte
		comp string
		want []got
	}{
		{"plain", plain, "", want},
		{"gzip", gzipBytes(t, plain), "gzip", want},
		{"gzip multi-member", gzipBytes(t, []byte("{\"a\":1}\n"), nil, []byte("\n{\"b\":"), []byte("2}\n")), "gzip", want},
		{"gzip member boundary mid-line truncated", gzipBytes(t, []byte("{}\n{\"a\""), []byte(":1}")), "gzip",
			[]got{ok(1, "{}"), {Num: 2, Bytes: `{"a":1}`, Kind: ErrTruncated}}},
		{"gzip empty", gzipBytes(t, nil), "gzip", nil},
		{"zstd", zstdBytes(t, plain), "zstd", want},
		{"zstd multi-frame", zstdBytes(t, []byte("{\"a\":1}\n\n{\"b\""), []byte(":2}\n")), "zstd", want},
		{"zstd empty", zstdBytes(t, nil), "zstd", nil},
		{"gzip in gzip is one level", gzipBytes(t, gzipBytes(t, []byte("x\n"))), "gzip", nil}, // checked below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.in), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Compression() != tt.comp {
				t.Errorf("Compression() = %q, want %q", r.Compression(), tt.comp)
			}
			lines, err := readAll(t, r)
			if err != io.EOF {
				t.Fatalf("final error %v, want io.EOF", err)
			}
			if tt.name == "gzip in gzip is one level" {
				if len(lines) == 0 || !strings.HasPrefix(lines[0].Bytes, "\x1f\x8b") {
					t.Errorf("got %v, want the inner gzip bytes", lines)
				}
				return
			}
			if !equal(lines, tt.want) {
				t.Errorf("\n got %v\nwant %v", lines, tt.want)
			}
			if st := r.Stats(); st.RawBytes != int64(len(tt.in)) {
				t.Errorf("Stats.RawBytes = %d, want %d", st.RawBytes, len(tt.in))
			}
		})
	}
}

func TestReaderBrokenHeader(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"gzip magic only", []byte{0x1f, 0x8b}},
		{"gzip magic and garbage", []byte("\x1f\x8bgarbage garbage garbage\n")},
		{"gzip bad method", append([]byte{0x1f, 0x8b, 7}, make([]byte, 20)...)},
		{"zstd magic only", []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{"zstd magic and garbage", []byte("\x28\xb5\x2f\xfd\xff\xff\xff\xff garbage garbage\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.in), Options{})
			if err == nil {
				t.Fatalf("NewReader succeeded (compression %q), want an error", r.Compression())
			}
			var le *LineError
			if errors.As(err, &le) {
				t.Errorf("got a *LineError %v, want a fatal error", err)
			}
		})
	}
}

func TestReaderCorruptIsFatal(t *testing.T) {
	lines := bytes.Repeat([]byte(`{"seq":1,"record":{"x":"abcdefghijklmnopqrstuvwxyz"}}`+"\n"), 20000)
	gz := gzipBytes(t, lines)
	zs := zstdBytes(t, lines)
	flip := func(b []byte, at int) []byte {
		c := bytes.Clone(b)
		c[at] ^= 0xff
		return c
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"gzip cut short", gz[:len(gz)/2]},
		{"gzip bad checksum", flip(gz, len(gz)-6)},
		{"gzip trailing garbage", append(bytes.Clone(gz), "not a gzip member"...)},
		{"gzip corrupt block", flip(gz, len(gz)/2)},
		{"zstd cut short", zs[:len(zs)/2]},
		{"zstd corrupt block", flip(zs, len(zs)/2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.in), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(t, r)
			if err == io.EOF || err == nil {
				t.Fatalf("read %d lines and io.EOF, want a fatal error", len(got))
			}
			var le *LineError
			if errors.As(err, &le) {
				t.Fatalf("got a *LineError %v, want a fatal error", err)
			}
			for _, g := range got {
				if g.Kind != nil && g.Kind != ErrInvalidUTF8 && g.Kind != ErrNUL {
					t.Errorf("unexpected line error before the fatal one: %v", g)
				}
			}
			if _, err2 := r.Next(); err2 != err {
				t.Errorf("fatal error not sticky: first %v, then %v", err, err2)
			}
		})
	}
}

func TestReaderIOError(t *testing.T) {
	boom := errors.New("boom")
	src := io.MultiReader(strings.NewReader("{}\n{\"half"), iotest.ErrReader(boom))
	r, err := NewReader(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := readAll(t, r)
	if err != boom {
		t.Fatalf("err = %v, want boom as is", err)
	}
	if !equal(lines, []got{ok(1, "{}")}) {
		t.Errorf("lines = %v", lines)
	}
	if _, err := r.Next(); err != boom {
		t.Errorf("second Next: %v, want boom again", err)
	}

	// An error on the very first read is returned by NewReader.
	if _, err := NewReader(iotest.ErrReader(boom), Options{}); err != boom {
		t.Errorf("NewReader on failing reader: %v, want boom", err)
	}

	// An error while a long line spans buffers.
	src = io.MultiReader(strings.NewReader(strings.Repeat("a", 100)), iotest.ErrReader(boom))
	r, err = NewReader(src, Options{BufferSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != boom {
		t.Errorf("err = %v, want boom", err)
	}
}

// NewReader must not wait for more than the first byte of an uncompressed
// stream, and Next must return a complete line without waiting for more
// input: a live pipeline sends one short line and then nothing for a while.
func TestReaderDoesNotWaitForMore(t *testing.T) {
	for _, first := range []string{"{}\n", "\x1f\n", "(\n", "é\n"} {
		pr, pw := io.Pipe()
		go pw.Write([]byte(first))
		r, err := NewReader(pr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		line, err := r.Next()
		if err != nil || string(line.Bytes)+"\n" != first {
			t.Errorf("Next = %q, %v; want %q", line.Bytes, err, first)
		}
		pw.Close()
		if _, err := r.Next(); err != io.EOF {
			t.Errorf("after close: %v", err)
		}
	}
}

func TestReaderClose(t *testing.T) {
	r, err := NewReader(bytes.NewReader(zstdBytes(t, []byte("a\nb\n"))), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Errorf("Next after Close: %v, want an error", err)
	}
}

// repeatReader yields n bytes of c, then tail.
type repeatReader struct {
	c    byte
	n    int64
	tail *strings.Reader
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return r.tail.Read(p)
	}
	k := int64(len(p))
	if k > r.n {
		k = r.n
	}
	for i := range p[:k] {
		p[i] = r.c
	}
	r.n -= k
	return int(k), nil
}

// A 100 MB line is skipped with memory bounded by MaxLine plus the buffer.
func TestReaderTooLongBoundedMemory(t *testing.T) {
	const size = 100 << 20
	for _, crlf := range []bool{false, true} {
		tail := "\n{\"ok\":1}\n"
		if crlf {
			tail = "\r\n{\"ok\":1}\r\n"
		}
		src := &repeatReader{c: 'a', n: size, tail: strings.NewReader(tail)}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := NewReader(src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		lines, err := readAll(t, r)
		runtime.ReadMemStats(&after)
		if err != io.EOF {
			t.Fatal(err)
		}
		want := []got{{Num: 1, Nil: true, Kind: ErrTooLong, Len: size}, ok(2, `{"ok":1}`)}
		if !equal(lines, want) {
			t.Errorf("got %v\nwant %v", lines, want)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("crlf=%v: TotalAlloc %.1f MiB for a %d MiB line (MaxLine %d MiB)", crlf, float64(alloc)/(1<<20), size>>20, DefaultMaxLine>>20)
		if limit := uint64(3*DefaultMaxLine + 2*DefaultBufferSize); alloc > limit {
			t.Errorf("TotalAlloc %d > %d: the long line was buffered", alloc, limit)
		}
		if st := r.Stats(); st.Bytes != size+int64(len(tail)) || st.TooLong != 1 {
			t.Errorf("Stats = %+v", st)
		}
	}
}

// Reading through a gzip stream whose one line decompresses to 100 MB keeps
// memory bounded as well (a decompression bomb is just a long line).
func TestReaderGzipBombBounded(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 100; i++ {
		zw.Write(zeros)
	}
	zw.Write([]byte("\n{}\n"))
	zw.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := NewReader(bytes.NewReader(buf.Bytes()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := readAll(t, r)
	runtime.ReadMemStats(&after)
	if err != io.EOF {
		t.Fatal(err)
	}
	want := []got{{Num: 1, Nil: true, Kind: ErrTooLong, Len: 100 << 20}, ok(2, "{}")}
	if !equal(lines, want) {
		t.Errorf("got %v\nwant %v", lines, want)
	}
	if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(3*DefaultMaxLine+4*DefaultBufferSize); alloc > limit {
		t.Errorf("TotalAlloc %d > %d", alloc, limit)
	}
}

// A line that fits in the buffer is returned without copying, so reading
// allocates nothing per line.
func TestReaderNoAllocsPerLine(t *testing.T) {
	line := `{"seq":1,"record":{"a":"b"}}` + "\n"
	r, err := NewReader(&cycleReader{block: []byte(strings.Repeat(line, 1000))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(10000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per line, want 0", allocs)
	}
}

// cycleReader repeats block forever.
type cycleReader struct {
	block []byte
	off   int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.block[c.off:])
		n += k
		c.off = (c.off + k) % len(c.block)
	}
	return n, nil
}

func TestLineErrorMessages(t *testing.T) {
	tests := []struct {
		err  *LineError
		want string
	}{
		{&LineError{Num: 17, Kind: ErrTooLong, Len: 5242880, Max: 4194304}, "line 17: line too long (5242880 bytes > max 4194304); raise --max-line"},
		{&LineError{Num: 9, Kind: ErrTruncated}, "line 9: truncated record (no newline at end of input)"},
		{&LineError{Num: 3, Kind: ErrInvalidUTF8, Col: 41}, "line 3: invalid UTF-8 at byte 41"},
		{&LineError{Num: 4, Kind: ErrNUL, Col: 7}, "line 4: NUL byte at byte 7"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.err.Kind) || errors.Unwrap(tt.err) != tt.err.Kind {
			t.Errorf("%v does not unwrap to its kind", tt.err)
		}
	}
	// The reader fills Max in.
	r, _ := NewReader(strings.NewReader("123456\n"), Options{MaxLine: 5})
	_, err := r.Next()
	if want := "line 1: line too long (6 bytes > max 5); raise --max-line"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// A caller-supplied *bufio.Reader works like any io.Reader.
func TestReaderOverBufio(t *testing.T) {
	r, err := NewReader(bufio.NewReaderSize(strings.NewReader("a\nb\n"), 4<<20), Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := readAll(t, r)
	if err != io.EOF || !equal(lines, []got{ok(1, "a"), ok(2, "b")}) {
		t.Errorf("got %v, %v", lines, err)
	}
}

// Appending to a returned line must not overwrite the lines after it in the
// read buffer.
func TestReaderAppendDoesNotClobber(t *testing.T) {
	for _, opt := range []Options{{}, {BufferSize: 16}} {
		r, err := NewReader(strings.NewReader("{\"a\":\"0123456789abcdef\"}\n{\"b\":2}\nc\n"), opt)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for {
			line, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if cap(line.Bytes) != len(line.Bytes) {
				t.Errorf("cap %d != len %d", cap(line.Bytes), len(line.Bytes))
			}
			ext := append(line.Bytes, "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"...)
			out = append(out, string(ext[:len(line.Bytes)]))
		}
		want := []string{`{"a":"0123456789abcdef"}`, `{"b":2}`, "c"}
		if strings.Join(out, "|") != strings.Join(want, "|") {
			t.Errorf("%+v: got %q, want %q", opt, out, want)
		}
	}
}
