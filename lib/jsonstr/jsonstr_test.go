package jsonstr

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"slices"
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

func TestAppend(t *testing.T) { paths(t, testAppend) }

func testAppend(t *testing.T) {
	cases := []string{
		"", "a", `"`, `\`, "\x00", "\x1f", " ", "\x7f", "\xff\xfe", "é😀\u2028<>&",
		`{"seq":1,"record":{"a":"b\"c\\d\n"}}`, "12345678\"", "1234567\"8", "\"1234567",
		strings.Repeat("\x01", 40), strings.Repeat("\\\"", 33), strings.Repeat("a", 1000) + "\x00",
	}
	// Every byte value at every position of words 1..19 long, and of
	// strings around the vector kernel's block sizes (32: one block or its
	// tail, 64: a block and the 32 bytes it reads past itself, ...).
	for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 31, 32, 33, 63, 64, 65, 97} {
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
func TestMatchesJSONStringify(t *testing.T) { paths(t, testMatchesJSONStringify) }

func testMatchesJSONStringify(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	var in []string
	long := strings.Repeat("abcdefgh", 9)
	for c := 0; c < 0x80; c++ {
		in = append(in, fmt.Sprintf("a%cbcdefgh%cij", c, c))
		// Longer, for the vector kernel: in its blocks and its tail.
		in = append(in, fmt.Sprintf("%s%c%s%c%s%c", long[:5], c, long[:40], c, long, c))
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

func TestAppendAllocs(t *testing.T) { paths(t, testAppendAllocs) }

func testAppendAllocs(t *testing.T) {
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

// Specials placed where the word loop and the vector kernel have their
// edge cases: at every position of the first words and blocks, next to
// each other, filling whole words, in the tail, and in every length up to
// a hundred bytes (the kernel's blocks are 32 bytes, its tail 32 to 63),
// appended to a dst that is empty, short on spare capacity, or with
// plenty of it.
func TestAppendPositions(t *testing.T) { paths(t, testAppendPositions) }

func testAppendPositions(t *testing.T) {
	var cases []string
	plain := strings.Repeat("abcdefgh", 13)
	specials := []byte{'"', '\\', '\n', '\t', 0x00, 0x01, 0x1f, '\b', '\f', '\r'}
	for _, c := range specials {
		for p := 0; p <= 70; p++ {
			for n := p + 1; n <= 100; n++ {
				b := []byte(plain[:n])
				b[p] = c
				cases = append(cases, string(b))
				if p+1 < n { // two in a row
					b[p+1] = c
					cases = append(cases, string(b))
				}
			}
		}
		// Only specials, and specials every other byte, in lengths 0..100.
		for n := 0; n <= 100; n++ {
			all := bytes.Repeat([]byte{c}, n)
			cases = append(cases, string(all))
			alt := []byte(plain[:n])
			for i := 0; i < n; i += 2 {
				alt[i] = c
			}
			cases = append(cases, string(alt))
		}
	}
	// Every control byte at every position: \u00xx is the longest escape.
	for c := 0; c < 0x20; c++ {
		for p := 0; p < 70; p++ {
			b := []byte(plain[:70])
			b[p] = byte(c)
			cases = append(cases, string(b))
		}
	}
	// Words made only of \u00xx escapes (six bytes each), mixed with short
	// ones, so the output grows six times faster than the input.
	for n := 0; n <= 100; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7) % 0x20
		}
		cases = append(cases, string(b))
		for i := 0; i < n; i += 3 {
			b[i] = '"'
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		for _, dst := range [][]byte{
			nil,
			make([]byte, 0, 1),
			[]byte("prefix"),                     // len == cap
			append(make([]byte, 0, 9), "pre"...), // a little spare
			make([]byte, 3, 300),                 // plenty
		} {
			want := ref(bytes.Clone(dst), []byte(s))
			got := Append(dst, []byte(s))
			if !bytes.Equal(got, want) {
				t.Fatalf("Append(%q, %q):\n got %q\nwant %q", dst, s, got, want)
			}
		}
	}
}

// BenchmarkAppend: a record line, and (if AUDITPIPE_BENCH_LINES names an
// NDJSON file, e.g. .bench/lines-1000000.ndjson) its first 20000 real
// lines, each escaped by Append (its vector kernel where there is one:
// BenchmarkAppendPaths compares it with the word loop alone), by
// appendPrev (the word loop before it took the escapes of a word from one
// load) and by the byte-at-a-time table loop (what the sinks used before
// both), in the same run so their ratios are measured together.
func BenchmarkAppend(b *testing.B) {
	impls := []struct {
		name string
		f    func(dst, b []byte) []byte
	}{{"append", Append}, {"prev", appendPrev}, {"table-baseline", appendTable}}
	dst := make([]byte, 0, 4096)
	for _, im := range impls {
		b.Run("line/"+im.name, func(b *testing.B) {
			b.SetBytes(int64(len(benchLine)))
			for b.Loop() {
				dst = im.f(dst[:0], benchLine)
			}
		})
	}
	lines, size := benchLines(b, 20000)
	for _, im := range impls {
		b.Run("real/"+im.name, func(b *testing.B) {
			if lines == nil {
				b.Skip("AUDITPIPE_BENCH_LINES does not name a lines file")
			}
			b.SetBytes(size)
			for b.Loop() {
				for _, l := range lines {
					dst = im.f(dst[:0], l)
				}
			}
			b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// benchLines reads the first n lines of the file AUDITPIPE_BENCH_LINES
// names, and their total size; nil if it names none.
func benchLines(b *testing.B, n int) ([][]byte, int64) {
	name := os.Getenv("AUDITPIPE_BENCH_LINES")
	if name == "" {
		return nil, 0
	}
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	var size int64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
		size += int64(len(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return lines, size
}

// appendTable is the byte-at-a-time table loop the sinks used before.
func appendTable(dst, b []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, c := range b {
		if e := escape[c]; e != 0 {
			dst = append(dst, b[start:i]...)
			if e == 'u' {
				dst = fmt.Appendf(dst, `\u%04x`, c)
			} else {
				dst = append(dst, '\\', e)
			}
			start = i + 1
		}
	}
	return append(append(dst, b[start:]...), '"')
}

// appendPrev is Append as it was before it took the escapes of a word from
// one load (commit a2c3efb), kept to measure against in the same run: it
// reloads the input after each special byte.
func appendPrev(dst, b []byte) []byte {
	j := len(dst)
	out := slices.Grow(dst, len(b)+len(b)/8+16)
	out = out[:cap(out)]
	out[j] = '"'
	j++
	i := 0
	for i+8 <= len(b) {
		if len(out)-j < 16 {
			out = slices.Grow(out[:j], len(b)-i+len(b)/8+16)
			out = out[:cap(out)]
		}
		v := binary.LittleEndian.Uint64(b[i:])
		binary.LittleEndian.PutUint64(out[j:], v)
		m := prevZero(v^(lsb*'"')) | prevZero(v^(lsb*'\\')) | ((v - lsb*0x20) &^ v & msb)
		if m == 0 {
			i += 8
			j += 8
			continue
		}
		k := bits.TrailingZeros64(m) >> 3
		i += k
		j = prevEscapeAt(out, j+k, b[i])
		i++
	}
	for ; i < len(b); i++ {
		if len(out)-j < 8 {
			out = slices.Grow(out[:j], 8+len(b)-i)
			out = out[:cap(out)]
		}
		if c := b[i]; escape[c] == 0 {
			out[j] = c
			j++
		} else {
			j = prevEscapeAt(out, j, c)
		}
	}
	if len(out)-j < 1 {
		out = slices.Grow(out[:j], 1)
		out = out[:cap(out)]
	}
	out[j] = '"'
	return out[:j+1]
}

// prevZero flags (0x80) the lowest zero byte of x, and maybe bytes above it.
func prevZero(x uint64) uint64 { return (x - lsb) &^ x & msb }

// escape[c] is 0 for a byte written as it is, 'u' for \u00xx, and the
// letter of the short escape otherwise.
var escape = func() (t [256]byte) {
	for c := range 0x20 {
		t[c] = 'u'
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = 'b', 'f', 'n', 'r', 't'
	t['"'], t['\\'] = '"', '\\'
	return t
}()

// prevEscapeAt writes the escape of c at out[j:] (room for 6 bytes is
// there) and returns the position after it.
func prevEscapeAt(out []byte, j int, c byte) int {
	e := escape[c]
	if e != 'u' {
		out[j], out[j+1] = '\\', e
		return j + 2
	}
	const hex = "0123456789abcdef"
	_ = out[j+5]
	out[j], out[j+1], out[j+2], out[j+3], out[j+4], out[j+5] = '\\', 'u', '0', '0', hex[c>>4], hex[c&15]
	return j + 6
}

// appendMain is Append as it was before the vector kernel (the word loop
// alone, commit f7d0a27), kept to measure against in the same run
// (BenchmarkAppendPaths).
func appendMain(dst, b []byte) []byte {
	j := len(dst)
	out := slices.Grow(dst, len(b)+len(b)/8+window)
	out = out[:cap(out)]
	out[j] = '"'
	j++
	i := 0
	for {
		i, j = appendWords(out, j, b, i)
		if len(b)-i < 8 {
			break
		}
		out = slices.Grow(out[:j], len(b)-i+(len(b)-i)/8+window)
		out = out[:cap(out)]
	}
	if n := len(b) - i; n > 0 {
		if len(out)-j < window {
			out = slices.Grow(out[:j], window)
			out = out[:cap(out)]
		}
		pad := [8]byte{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
		copy(pad[:], b[i:])
		_, j = appendWords(out, j, pad[:], 0)
		j -= 8 - n
	}
	out[j] = '"'
	return out[:j+1]
}
