package canon

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

var canonSeed = flag.Uint64("canon.seed", 0, "seed for TestCanonicalNode (0: $CANON_SEED, else a fixed seed)")

var canonVectorFiles = []string{"chain-public.ndjson", "chain-public.canonical.ndjson"}

// vectorDir holds the golden vectors: lib/chain's, where docs/contract.md
// names them (the chain tests replay the same records).
var vectorDir = filepath.Join("..", "chain", "testdata")

// canonVectorSHA256 pins the golden vectors in lib/chain/testdata/: the 40-record
// chain and its canonical forms were produced by a JavaScript engine
// (Declaragent's), and are the project's reference for the canonical form
// and the chain hash (docs/contract.md). They are copied into the
// repository, not produced by it, so they must never be "fixed" to match the
// code: a changed file fails here.
var canonVectorSHA256 = map[string]string{
	"chain-public.ndjson":           "3ec9b08ce9359474d7b8841ee3a1ed4e33393bac5bf93413373cf1a8659b3a49",
	"chain-public.canonical.ndjson": "72a4a35d1112cbf7bea3f5ab9a432a72e192cec70758f24f0a52ffac93dff303",
}

// TestCanonicalVectorCopies checks that lib/chain/testdata/ holds the golden vectors
// byte for byte as they were produced.
func TestCanonicalVectorCopies(t *testing.T) {
	for _, name := range canonVectorFiles {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != canonVectorSHA256[name] {
			t.Errorf("lib/chain/testdata/%s has SHA-256 %s, want %s: the golden vectors were changed; restore them (git checkout lib/chain/testdata)", name, got, canonVectorSHA256[name])
		}
	}
}

type canonVector struct {
	seq        int64
	record     []byte // raw bytes of the record value in the record line
	prevHash   string
	recordHash string // from the record line
	canonical  []byte // from chain-public.canonical.ndjson
	canonHash  string // from chain-public.canonical.ndjson
}

func canonReadNDJSON(t *testing.T, path string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func canonLoadVectors(t *testing.T, dir string) []canonVector {
	t.Helper()
	bySeq := map[int64]*canonVector{}
	var order []int64
	canonReadNDJSON(t, filepath.Join(dir, "chain-public.ndjson"), func(line []byte) {
		var l struct {
			Seq        int64           `json:"seq"`
			Record     json.RawMessage `json:"record"`
			PrevHash   string          `json:"prevHash"`
			RecordHash string          `json:"recordHash"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("record line: %v", err)
		}
		bySeq[l.Seq] = &canonVector{seq: l.Seq, record: slices.Clone(l.Record), prevHash: l.PrevHash, recordHash: l.RecordHash}
		order = append(order, l.Seq)
	})
	canonReadNDJSON(t, filepath.Join(dir, "chain-public.canonical.ndjson"), func(line []byte) {
		var l struct {
			Seq        int64  `json:"seq"`
			Canonical  string `json:"canonical"`
			RecordHash string `json:"recordHash"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("canonical line: %v", err)
		}
		v := bySeq[l.Seq]
		if v == nil {
			t.Fatalf("canonical file has seq %d, record file does not", l.Seq)
		}
		v.canonical = []byte(l.Canonical)
		v.canonHash = l.RecordHash
	})
	var vs []canonVector
	for _, seq := range order {
		v := bySeq[seq]
		if v.canonical == nil {
			t.Fatalf("seq %d has no canonical form", seq)
		}
		vs = append(vs, *v)
	}
	if len(vs) < 40 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

func TestCanonicalGolden(t *testing.T) {
	for name, dir := range map[string]string{"testdata": vectorDir} {
		t.Run(name, func(t *testing.T) {
			prev := ""
			for _, v := range canonLoadVectors(t, dir) {
				got, err := Append(nil, v.record)
				if err != nil {
					t.Errorf("seq %d: Canonical: %v", v.seq, err)
					continue
				}
				if !bytes.Equal(got, v.canonical) {
					t.Errorf("seq %d: Canonical\n got %s\nwant %s", v.seq, got, v.canonical)
				}
				if v.prevHash != prev {
					t.Errorf("seq %d: prevHash %q, previous recordHash %q", v.seq, v.prevHash, prev)
				}
				if h := chainHash(v.prevHash, got); h != v.recordHash || h != v.canonHash {
					t.Errorf("seq %d: chain hash = %s, record line says %s, canonical file says %s",
						v.seq, h, v.recordHash, v.canonHash)
				}
				// The canonical form is a fixed point.
				again, err := Append(nil, v.canonical)
				if err != nil || !bytes.Equal(again, v.canonical) {
					t.Errorf("seq %d: Append(canonical) = %s, %v", v.seq, again, err)
				}
				prev = v.recordHash
			}
		})
	}
}

// chainHash is the chain hash of docs/contract.md section 3, hex:
// SHA-256(prevHash "\n" canonical). (lib/chain's AppendHexHash, which
// lib/canon cannot import: lib/chain imports it.)
func chainHash(prev string, canonical []byte) string {
	sum := sha256.Sum256(append([]byte(prev+"\n"), canonical...))
	return fmt.Sprintf("%x", sum)
}

func TestCanonicalCases(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Numbers: Number::toString of the parsed double.
		{"1e21", `1e21`, `1e+21`},
		{"1e20", `100000000000000000000`, `100000000000000000000`},
		{"21 nines", `999999999999999999999`, `1e+21`},
		{"1e-7", `1e-7`, `1e-7`},
		{"0.0000001", `0.0000001`, `1e-7`},
		{"0.000001", `0.000001`, `0.000001`},
		{"0.00001234", `0.00001234`, `0.00001234`},
		{"2.5e-7", `2.5e-7`, `2.5e-7`},
		{"-1.5e-9", `-1.5e-9`, `-1.5e-9`},
		{"100.0", `100.0`, `100`},
		{"1E2", `1E2`, `100`},
		{"1e+2", `1e+2`, `100`},
		{"0.1e1", `0.1e1`, `1`},
		{"1e0", `1e0`, `1`},
		{"exponent leading zeros", `1e007`, `10000000`},
		{"-0", `-0`, `0`},
		{"-0.0", `-0.0`, `0`},
		{"-0e10", `-0e10`, `0`},
		{"0e0", `0e0`, `0`},
		{"0.1", `0.1`, `0.1`},
		{"-0.5", `-0.5`, `-0.5`},
		{"4.35", `4.35`, `4.35`},
		{"123e-20", `123e-20`, `1.23e-18`},
		{"beyond 2^53", `123456789012345678901`, `123456789012345680000`},
		{"2^53+1", `9007199254740993`, `9007199254740992`},
		{"16 digits", `1234567890123456`, `1234567890123456`},
		{"17 digits", `12345678901234567`, `12345678901234568`},
		{"-15 digits", `-999999999999999`, `-999999999999999`},
		{"rounding", `1.0000000000000001`, `1`},
		{"many digits", `123456789.123456789`, `123456789.12345679`},
		{"min denormal", `5e-324`, `5e-324`},
		{"rounds to min denormal", `2.4703282292062328e-324`, `5e-324`},
		{"rounds to zero", `2.4703282292062327e-324`, `0`},
		{"underflow", `1e-400`, `0`},
		{"negative underflow", `-1e-400`, `0`},
		{"1.5e300", `1.5e300`, `1.5e+300`},
		{"max double", `1.7976931348623157e308`, `1.7976931348623157e+308`},
		{"overflow", `1e400`, `null`},
		{"negative overflow", `-1e400`, `null`},
		{"overflow in array", `[1e999,-1e999]`, `[null,null]`},

		// Strings.
		{"escape to literal", `"\u00e9\u00E9"`, `"éé"`},
		{"solidus", `"\/a\/"`, `"/a/"`},
		{"surrogate pair", `"\ud83d\ude00"`, `"😀"`},
		{"surrogate pair upper hex", `"\uD83D\uDE00"`, `"😀"`},
		{"lone high", `"\ud83d"`, `"\ud83d"`},
		{"lone low upper hex", `"\uDE00"`, `"\ude00"`},
		{"reversed pair", `"\ude00\ud83d"`, `"\ude00\ud83d"`},
		{"high then letter", `"\ud83d\u0041"`, `"\ud83dA"`},
		{"high then pair", `"\ud83d\ud83d\ude00"`, `"\ud83d😀"`},
		{"high at end after text", `"ab\uD800"`, `"ab\ud800"`},
		{"escaped backslash before u", `"\\ud800"`, `"\\ud800"`},
		{"line separators", `"\u2028\u2029"`, "\"\u2028\u2029\""},
		{"html", `"<>&'\u003c\u003e\u0026"`, `"<>&'<>&"`},
		{"controls", `"\u0000\u001f\u007f"`, "\"\\u0000\\u001f\x7f\""},
		{"short escapes", `"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{"short escapes from u", `"\u0008\u000C\u000a\u000D\u0009"`, `"\b\f\n\r\t"`},
		{"quote and backslash from u", `"\u0022\u005c"`, `"\"\\"`},
		{"literal non-ASCII", `"é監査😀"`, `"é監査😀"`},
		{"U+FFFF", `"\uffff"`, "\"\uffff\""},
		{"U+FFFD", `"\ufffd"`, "\"\ufffd\""},
		{"BOM in string", `"\ufeff"`, "\"\ufeff\""},
		{"U+D7FF", `"\ud7ff"`, "\"\ud7ff\""},
		{"DEL raw", "\"\x7f\"", "\"\x7f\""},
		{"empty string", `""`, `""`},

		// Key order.
		{"simple", `{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{"indices first", `{"a":1,"B":2,"10":3,"2":4}`, `{"2":4,"10":3,"B":2,"a":1}`},
		{"non-index numeric keys", `{"01":1,"1":2,"-1":3,"4294967295":4,"4294967294":5,"0":6,"1.5":7,"1e3":8,"00":9}`,
			`{"0":6,"1":2,"4294967294":5,"-1":3,"00":9,"01":1,"1.5":7,"1e3":8,"4294967295":4}`},
		{"index vs longer number", `{"4294967296":1,"42949672940":2,"9":3,"":4}`, `{"9":3,"":4,"42949672940":2,"4294967296":1}`},
		{"astral before U+E000", `{"\uE000":1,"😀":2,"\uFFFD":3,"z":4}`, "{\"z\":4,\"😀\":2,\"\ue000\":1,\"\ufffd\":3}"},
		{"U+10000 before U+FFFF", `{"\uffff":1,"𐀀":2}`, "{\"𐀀\":2,\"\uffff\":1}"},
		{"lone surrogates around astral", `{"\udc00":3,"😀":2,"\ud800":1}`, `{"\ud800":1,"😀":2,"\udc00":3}`},
		{"lone high is a prefix", `{"😀":2,"\ud83d":1}`, `{"\ud83d":1,"😀":2}`},
		{"lone high then ASCII", `{"😀":2,"\ud83dz":1}`, `{"\ud83dz":1,"😀":2}`},
		{"lone high then U+E000", `{"\ud83d\ue000":1,"😀":2}`, "{\"😀\":2,\"\\ud83d\ue000\":1}"},
		{"escaped key with literal astral", `{"\u0041\ue000":2,"\u0041😀":1}`, "{\"A😀\":1,\"A\ue000\":2}"},
		{"astral same high", `{"😁":1,"😀":2}`, `{"😀":2,"😁":1}`},
		{"prefix shorter first", `{"ab":1,"a":2,"":3}`, `{"":3,"a":2,"ab":1}`},
		{"e acute", `{"é":1,"e":2,"z":[3,{"b":1,"a":2}]}`, `{"e":2,"z":[3,{"a":2,"b":1}],"é":1}`},
		{"escaped keys", `{"a\"b":1,"a\\b":2,"\u0001":3,"\n":4}`, `{"\u0001":3,"\n":4,"a\"b":1,"a\\b":2}`},
		{"escaped index key", `{"\u0031\u0030":1,"2":2}`, `{"2":2,"10":1}`},

		// Duplicates: the last one wins.
		{"duplicate", `{"a":1,"a":2}`, `{"a":2}`},
		{"duplicate among others", `{"a":1,"b":0,"a":{"y":1,"x":2}}`, `{"a":{"x":2,"y":1},"b":0}`},
		{"duplicate index", `{"1":1,"0":0,"1":2}`, `{"0":0,"1":2}`},
		{"duplicate via escape", `{"\u0061":1,"a":2}`, `{"a":2}`},
		{"duplicate via escape last", `{"a":2,"\u0061":1}`, `{"a":1}`},
		{"triplicate", `{"k":1,"j":0,"k":2,"k":3}`, `{"j":0,"k":3}`},
		{"duplicate lone surrogate", `{"\ud800":1,"\uD800":2}`, `{"\ud800":2}`},

		// __proto__: Declaragent's out[k] = v runs the setter; no property.
		{"__proto__ number", `{"__proto__":1,"a":2}`, `{"a":2}`},
		{"__proto__ object", `{"__proto__":{"x":1}}`, `{}`},
		{"__proto__ escaped", `{"\u005f_proto__":null,"b":1}`, `{"b":1}`},
		{"__proto__ nested", `{"a":{"__proto__":[]}}`, `{"a":{}}`},
		{"__proto__ duplicate", `{"__proto__":1,"__proto__":2}`, `{}`},
		{"near __proto__", `{"__proto":1,"__proto__ ":2,"_proto__":3}`, `{"__proto":1,"__proto__ ":2,"_proto__":3}`},
		{"__proto__ as a value", `["__proto__"]`, `["__proto__"]`},

		// Structure.
		{"empty object", `{}`, `{}`},
		{"empty array", `[]`, `[]`},
		{"empty with space", `{ }`, `{}`},
		{"empty array with space", `[ ]`, `[]`},
		{"nested", `[{"b":[{"d":1,"c":2}],"a":null}]`, `[{"a":null,"b":[{"c":2,"d":1}]}]`},
		{"arrays keep order", `[3,1,2,{"b":[2,1],"a":[]}]`, `[3,1,2,{"a":[],"b":[2,1]}]`},
		{"whitespace", " \t\n\r{ \"b\" : 1 ,\n\"a\" : [ 1 , 2 ] , \"c\":{ } } \r\n", `{"a":[1,2],"b":1,"c":{}}`},
		{"top-level number", `1`, `1`},
		{"top-level string", `"x"`, `"x"`},
		{"top-level true", `true`, `true`},
		{"top-level false", `false`, `false`},
		{"top-level null", `null`, `null`},
		{"top-level padded", "  2.50 \n", `2.5`},
		{"depth 1000", strings.Repeat("[", 1000) + strings.Repeat("]", 1000), strings.Repeat("[", 1000) + strings.Repeat("]", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Append([]byte("prefix:"), []byte(tt.in))
			if err != nil {
				t.Fatalf("Append(%q): %v", tt.in, err)
			}
			if want := "prefix:" + tt.want; string(got) != want {
				t.Errorf("Append(%q)\n got %q\nwant %q", tt.in, got, want)
			}
		})
	}
}

func TestCanonicalErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"space", ` `},
		{"open object", `{`},
		{"open array", `[1`},
		{"trailing comma array", `[1,]`},
		{"trailing comma object", `{"a":1,}`},
		{"missing colon", `{"a" 1}`},
		{"missing value", `{"a":}`},
		{"non-string key", `{1:2}`},
		{"single quotes", `{'a':1}`},
		{"leading zero", `01`},
		{"leading zero in array", `[01]`},
		{"trailing dot", `1.`},
		{"leading dot", `.5`},
		{"plus", `+1`},
		{"bare e", `1e`},
		{"e sign only", `1e+`},
		{"minus only", `-`},
		{"minus letter", `-a`},
		{"NaN", `NaN`},
		{"Infinity", `Infinity`},
		{"hex", `0x10`},
		{"short true", `tru`},
		{"short null", `nul`},
		{"capital True", `True`},
		{"unterminated string", `"abc`},
		{"bad escape", `"\x"`},
		{"escape at end", `"\`},
		{"short unicode escape", `"\u12"`},
		{"bad hex", `"\u12G4"`},
		{"raw control", "\"a\x01b\""},
		{"raw newline", "\"a\nb\""},
		{"raw tab", "\"a\tb\""},
		{"invalid UTF-8", "\"\xff\""},
		{"truncated UTF-8", "\"\xc3\""},
		{"UTF-8 surrogate", "\"\xed\xa0\x80\""},
		{"overlong UTF-8", "\"\xc0\xaf\""},
		{"invalid UTF-8 in key", "{\"\xfe\":1}"},
		{"trailing data", `{"a":1}x`},
		{"two values", `1 2`},
		{"missing comma", `[1 2]`},
		{"BOM", "\ufeff{}"},
		{"vertical tab", "\v1"},
		{"NBSP", "\u00a01"},
		{"NUL after value", "1\x00"},
		{"depth 1001", strings.Repeat("[", 1001) + strings.Repeat("]", 1001)},
		{"depth 1001 objects", strings.Repeat(`{"a":`, 1001) + "1" + strings.Repeat("}", 1001)},
		{"deep unterminated", strings.Repeat("[", 100000)},
		{"deep in invalid", strings.Repeat(`[{"a":`, 600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix:")
			got, err := Append(dst, []byte(tt.in))
			if err == nil {
				t.Fatalf("Append(%q) = %q, want an error", tt.in, got)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %v is %T, want *Error", err, err)
			} else if ce.Offset < 0 || ce.Offset > len(tt.in) {
				t.Errorf("error offset %d outside the input (%d bytes)", ce.Offset, len(tt.in))
			}
			if !strings.HasPrefix(err.Error(), "canonical: ") {
				t.Errorf("error %q lacks the canonical: prefix", err)
			}
			if string(got) != "prefix:" {
				t.Errorf("on error dst = %q, want it unchanged", got)
			}
		})
	}
}

// TestCanonicalCompareUTF16 checks the key comparison against UTF-16 code
// unit order computed the slow way, on random strings rich in surrogates.
func TestCanonicalCompareUTF16(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []uint16{'a', 'z', 0x7f, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfffd, 0xffff}
	gen := func() []uint16 {
		u := make([]uint16, r.IntN(5))
		for i := range u {
			u[i] = alphabet[r.IntN(len(alphabet))]
		}
		return u
	}
	for range 200000 {
		a, b := gen(), gen()
		if r.IntN(4) == 0 { // share a prefix
			b = append(slices.Clone(a[:r.IntN(len(a)+1)]), b...)
		}
		want := slices.Compare(a, b)
		got := compareUTF16(canonWTF8(a), canonWTF8(b))
		if got != want {
			t.Fatalf("compareUTF16(%U, %U) = %d, want %d", a, b, got, want)
		}
	}
}

// TestCanonicalPrefix checks that the sort prefix never contradicts the
// full comparison.
func TestCanonicalPrefix(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	newMember := func() member {
		var u []uint16
		for range r.IntN(4) {
			u = append(u, canonKeyPieces[r.IntN(len(canonKeyPieces))]...)
		}
		m := member{key: canonWTF8(u), ord: r.IntN(3)}
		m.astral = bytes.ContainsFunc(m.key, func(r rune) bool { return r > 0xffff })
		m.index, m.isIndex = arrayIndex(m.key)
		m.prefix = keyPrefix(&m)
		return m
	}
	for range 300000 {
		a, b := newMember(), newMember()
		if a.prefix < b.prefix && compareMembers(&a, &b) >= 0 {
			t.Fatalf("prefix of %q (%x) < prefix of %q (%x), but the key sorts after", a.key, a.prefix, b.key, b.prefix)
		}
	}
}

// canonWTF8 encodes UTF-16 code units as generalised UTF-8, pairing valid
// surrogate pairs and keeping lone surrogates as 3-byte sequences.
func canonWTF8(u []uint16) []byte {
	var b []byte
	for i := 0; i < len(u); i++ {
		c := rune(u[i])
		if utf16.IsSurrogate(c) && c < 0xdc00 && i+1 < len(u) && 0xdc00 <= u[i+1] && u[i+1] < 0xe000 {
			b = utf8.AppendRune(b, utf16.DecodeRune(c, rune(u[i+1])))
			i++
			continue
		}
		if utf16.IsSurrogate(c) {
			b = append(b, 0xed, byte(0x80|(c>>6)&0x3f), byte(0x80|c&0x3f))
			continue
		}
		b = utf8.AppendRune(b, c)
	}
	return b
}

// canonGen generates awkward JSON documents as text.
type canonGen struct {
	r *rand.Rand
	b []byte
}

// canonKeyPieces are the building blocks of keys and strings, as UTF-16.
var canonKeyPieces = func() [][]uint16 {
	strs := []string{
		"0", "1", "2", "9", "10", "01", "00", "-1", "-0", "1.5", "1e3", "007",
		"4294967294", "4294967295", "4294967296", "42949672940", "9007199254740993",
		"a", "b", "B", "Z", "_", "kind", "ts", "__proto__", "__proto", "constructor", "toString",
		"toJSON", "hasOwnProperty", "", " ", "é", "e", "\u00ff", "\u0100", "\u2028", "\u2029",
		"\ufffd", "\ufeff", "\ue000", "\uffff", "\ud7ff", "😀", "😁", "\U00010000", "\U0010ffff",
		"監査", "\x00", "\x1f", "\x7f", "\"", "\\", "/", "<", "\b", "\t", "\n",
	}
	var ps [][]uint16
	for _, s := range strs {
		ps = append(ps, utf16.Encode([]rune(s)))
	}
	for _, u := range []uint16{0xd800, 0xdbff, 0xdc00, 0xdfff, 0xd83d, 0xde00} {
		ps = append(ps, []uint16{u}) // lone surrogates
	}
	return ps
}()

func (g *canonGen) ws() {
	for g.r.IntN(4) == 0 {
		g.b = append(g.b, " \t\n\r"[g.r.IntN(4)])
	}
}

func (g *canonGen) units() []uint16 {
	var u []uint16
	for range 1 + g.r.IntN(3) {
		u = append(u, canonKeyPieces[g.r.IntN(len(canonKeyPieces))]...)
	}
	return u
}

// str writes u as a JSON string, escaping at random where JSON allows.
func (g *canonGen) str(u []uint16) {
	const hexd = "0123456789abcdef0123456789ABCDEF"
	esc := func(c uint16) {
		hx := hexd
		if g.r.IntN(2) == 0 {
			hx = hexd[16:]
		}
		g.b = append(g.b, '\\', 'u', hx[c>>12], hx[c>>8&15], hx[c>>4&15], hx[c&15])
	}
	g.b = append(g.b, '"')
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case 0xd800 <= c && c < 0xdc00 && i+1 < len(u) && 0xdc00 <= u[i+1] && u[i+1] < 0xe000:
			if g.r.IntN(3) == 0 {
				esc(c)
				esc(u[i+1])
			} else {
				g.b = utf8.AppendRune(g.b, utf16.DecodeRune(rune(c), rune(u[i+1])))
			}
			i++
		case utf16.IsSurrogate(rune(c)):
			esc(c)
		case c == '"' || c == '\\':
			if g.r.IntN(4) == 0 {
				esc(c)
			} else {
				g.b = append(g.b, '\\', byte(c))
			}
		case c < 0x20:
			if s, ok := map[uint16]byte{'\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}[c]; ok && g.r.IntN(2) == 0 {
				g.b = append(g.b, '\\', s)
			} else {
				esc(c)
			}
		case c == '/' && g.r.IntN(2) == 0:
			g.b = append(g.b, '\\', '/')
		case g.r.IntN(8) == 0:
			esc(c)
		default:
			g.b = utf8.AppendRune(g.b, rune(c))
		}
	}
	g.b = append(g.b, '"')
}

var canonNumberSpecials = []string{
	"0", "-0", "0.0", "-0.0", "0e0", "-0E+00", "1", "-1", "100.0", "1E2", "1e+2", "1e-2", "0.1", "0.5",
	"1e21", "1e20", "999999999999999999999", "100000000000000000000", "123456789012345678901",
	"1e-7", "1e-6", "0.000001", "0.0000001", "0.00000123", "1.5e300", "1.5e-300", "5e-324",
	"2.4703282292062328e-324", "2.4703282292062327e-324", "4.9406564584124654e-324",
	"2.2250738585072014e-308", "2.2250738585072011e-308", "1.7976931348623157e308",
	"1.7976931348623158e308", "1.7976931348623159e308", "1e308", "1e309", "1e400", "-1e400",
	"1e-400", "-1e-400", "9007199254740992", "9007199254740993", "9007199254740995",
	"18446744073709551615", "18446744073709551616", "4294967295", "4294967296", "1e007",
	"0.30000000000000004", "123456789.123456789", "1.0000000000000001", "4.35", "1e23", "8.41e21",
	"5e-7", "5e-6", "1.2345678901234567e-7", "-1.2345678901234567e+21",
}

func (g *canonGen) number() {
	r := g.r
	switch r.IntN(7) {
	case 0:
		g.b = append(g.b, canonNumberSpecials[r.IntN(len(canonNumberSpecials))]...)
	case 1: // small integers
		g.b = strconv.AppendInt(g.b, r.Int64N(2000001)-1000000, 10)
	case 2: // random doubles from their bits, in several notations
		var f float64
		for {
			f = math.Float64frombits(r.Uint64())
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				break
			}
		}
		switch r.IntN(4) {
		case 0:
			g.b = strconv.AppendFloat(g.b, f, 'e', -1, 64)
		case 1:
			g.b = strconv.AppendFloat(g.b, f, 'E', 17, 64)
		case 2:
			g.b = strconv.AppendFloat(g.b, f, 'e', r.IntN(25), 64)
		default:
			if e := math.Abs(math.Log10(math.Abs(f))); e < 40 {
				g.b = strconv.AppendFloat(g.b, f, 'f', -1, 64)
			} else {
				g.b = strconv.AppendFloat(g.b, f, 'g', -1, 64)
			}
		}
	case 3: // doubles near the notation boundaries 1e-7 and 1e21
		f := (1 + r.Float64()*9) * math.Pow(10, float64(r.IntN(32)-9))
		if r.IntN(2) == 0 {
			f = -f
		}
		g.b = strconv.AppendFloat(g.b, f, 'g', r.IntN(18)+1, 64)
	case 4: // tiny and denormal
		f := math.Float64frombits(r.Uint64N(1 << 53))
		g.b = strconv.AppendFloat(g.b, f, 'e', -1, 64)
	default: // random digit strings: long mantissas, wide exponents
		if r.IntN(3) == 0 {
			g.b = append(g.b, '-')
		}
		n := 1 + r.IntN(25)
		if r.IntN(3) == 0 {
			g.b = append(g.b, '0')
		} else {
			g.b = append(g.b, byte('1'+r.IntN(9)))
			for range n - 1 {
				g.b = append(g.b, byte('0'+r.IntN(10)))
			}
		}
		if r.IntN(2) == 0 {
			g.b = append(g.b, '.')
			for range 1 + r.IntN(25) {
				g.b = append(g.b, byte('0'+r.IntN(10)))
			}
		}
		if r.IntN(2) == 0 {
			g.b = append(g.b, "eE"[r.IntN(2)])
			if s := r.IntN(3); s > 0 {
				g.b = append(g.b, "+-"[s-1])
			}
			g.b = strconv.AppendInt(g.b, int64(r.IntN(340)), 10)
		}
	}
}

func (g *canonGen) value(depth int) {
	r := g.r
	k := r.IntN(10)
	if depth > 5 && k < 5 {
		k += 5
	}
	switch {
	case k < 3:
		g.b = append(g.b, '{')
		g.ws()
		var keys [][]uint16
		n := r.IntN(8)
		if depth < 2 && r.IntN(10) == 0 {
			n = 25 + r.IntN(20) // large enough not to be insertion-sorted
		}
		for i := range n {
			if i > 0 {
				g.b = append(g.b, ',')
				g.ws()
			}
			var key []uint16
			if len(keys) > 0 && r.IntN(6) == 0 {
				key = keys[r.IntN(len(keys))] // duplicate, maybe spelt differently
			} else {
				key = g.units()
			}
			keys = append(keys, key)
			g.str(key)
			g.ws()
			g.b = append(g.b, ':')
			g.ws()
			g.value(depth + 1)
			g.ws()
		}
		g.b = append(g.b, '}')
	case k < 5:
		g.b = append(g.b, '[')
		g.ws()
		for i := range r.IntN(6) {
			if i > 0 {
				g.b = append(g.b, ',')
				g.ws()
			}
			g.value(depth + 1)
			g.ws()
		}
		g.b = append(g.b, ']')
	case k < 7:
		g.str(g.units())
	case k < 9:
		g.number()
	default:
		g.b = append(g.b, []string{"true", "false", "null"}[r.IntN(3)]...)
	}
}

// doc returns one document; about one in ten is damaged, most of which are
// then invalid JSON.
func (g *canonGen) doc() []byte {
	g.b = g.b[:0]
	g.ws()
	if g.r.IntN(8) == 0 {
		g.value(3)
	} else {
		g.value(0)
	}
	g.ws()
	d := slices.Clone(g.b)
	if g.r.IntN(10) == 0 && len(d) > 0 {
		i := g.r.IntN(len(d))
		switch g.r.IntN(3) {
		case 0:
			d = slices.Delete(d, i, i+1)
		case 1:
			const junk = `{}[],:"\0aeE.-+ `
			d = slices.Insert(d, i, junk[g.r.IntN(len(junk))])
		default:
			d = d[:i]
		}
	}
	return d
}

// TestCanonicalNode compares Canonical with Node's JSON.stringify and
// Declaragent's deepSortKeys on random awkward documents. Seed: -canon.seed
// or $CANON_SEED; the failure message prints it.
func TestCanonicalNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH")
	}
	seed := *canonSeed
	if seed == 0 {
		if s := os.Getenv("CANON_SEED"); s != "" {
			if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
				t.Fatalf("CANON_SEED: %v", err)
			}
		}
	}
	if seed == 0 {
		seed = 20251127
	}
	n := 2000
	if testing.Short() {
		n = 300
	}
	g := &canonGen{r: rand.New(rand.NewPCG(seed, 0x5eed))}
	var docs [][]byte
	var in bytes.Buffer
	for len(docs) < n {
		d := g.doc()
		if !utf8.Valid(d) { // damage can split a character; Node would see U+FFFD
			continue
		}
		docs = append(docs, d)
		in.WriteString(base64.StdEncoding.EncodeToString(d))
		in.WriteByte('\n')
	}
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.b64"), filepath.Join(dir, "out.b64")
	if err := os.WriteFile(inPath, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join("testdata", "canon.js"), inPath, outPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	outData, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(outData), "\n"), "\n")
	if len(lines) != len(docs) {
		t.Fatalf("node wrote %d lines for %d documents", len(lines), len(docs))
	}
	var failures, errs int
	for i, d := range docs {
		got, err := Append(nil, d)
		var msg string
		if lines[i] == "ERR" {
			errs++
			if err == nil {
				msg = fmt.Sprintf("JSON.parse rejects it, Canonical gives %q", got)
			}
		} else {
			want, derr := base64.StdEncoding.DecodeString(lines[i])
			if derr != nil {
				t.Fatal(derr)
			}
			switch {
			case err != nil:
				msg = fmt.Sprintf("Canonical: %v; node gives %q", err, want)
			case !bytes.Equal(got, want):
				msg = fmt.Sprintf("\n got %q\nwant %q", got, want)
			}
		}
		if msg != "" {
			failures++
			if failures <= 10 {
				t.Errorf("seed %d, document %d %q: %s", seed, i, d, msg)
			}
		}
	}
	if failures > 0 {
		t.Errorf("seed %d: %d of %d documents differ", seed, failures, len(docs))
	}
	if errs == len(docs) || errs == 0 {
		t.Errorf("seed %d: %d of %d documents invalid: the generator is broken", seed, errs, len(docs))
	}
	t.Logf("seed %d: %d documents (%d invalid) agree with node", seed, len(docs), errs)
}

// canonDeeperThan reports whether b nests arrays and objects deeper than limit,
// for JSON that is known to be valid.
func canonDeeperThan(b []byte, limit int) bool {
	depth, inStr := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '[' || c == '{'):
			if depth++; depth > limit {
				return true
			}
		case !inStr && (c == ']' || c == '}'):
			depth--
		}
	}
	return false
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[1,2,{"d":null,"c":true}]}`,
		`{"10":1,"2":2,"a":3,"B":4,"😀":5,"\ue000":6,"\ud800":7}`,
		`{"a":1,"a":2,"__proto__":{}}`,
		`[1e21,1e-7,0.000001,-0,5e-324,1e400,123456789012345678901]`,
		`"\ud83d\ude00\ud83d\u0000\u2028\/"`,
		" {\t\"x\" :\r\n[ ] } ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Append(nil, data)
		if valid := json.Valid(data); utf8.Valid(data) && !canonDeeperThan(data, MaxDepth) && valid != (err == nil) {
			t.Fatalf("Append(%q): err %v, but encoding/json Valid = %v", data, err, valid)
		}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			return
		}
		if !canonDeeperThan(out, 250) { // fastjson's own limit is 300
			if err := fastjson.ValidateBytes(out); err != nil {
				t.Fatalf("Append(%q) = %q, which fastjson rejects: %v", data, out, err)
			}
		} else if !json.Valid(out) {
			t.Fatalf("Append(%q) = %q, which is not valid JSON", data, out)
		}
		again, err := Append(nil, out)
		if err != nil {
			t.Fatalf("Append(%q) = %q; Canonical of that: %v", data, out, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: Append(%q) = %q, then %q", data, out, again)
		}
		// Tabs and line ends are always escaped; spaces only occur in strings.
		if bytes.ContainsAny(out, "\t\n\r") {
			t.Fatalf("Append(%q) = %q contains raw whitespace", data, out)
		}
	})
}

// canonBenchRecord is a realistic ~500-byte audit record with unsorted keys,
// in the style of the golden vectors.
const canonBenchRecord = `{"kind":"tool_call","ts":1764244808281,"tenantId":"acme","actor":"agent:support",` +
	`"tool":"shell.exec","decision":"allow","durationMs":480,"requestId":"3f2b9c1e-8a4d-4e7b-9c2a-1d5e6f7a8b9c",` +
	`"detail":{"command":"ls -la /var/log","cwd":"/home/agent","exitCode":0,"stdoutBytes":18234,` +
	`"truncated":false,"env":{"PATH":"/usr/bin:/bin","LANG":"en_US.UTF-8"},"args":["-la","/var/log"],` +
	`"policy":{"rule":"allow-readonly","matched":true,"score":0.87,"reason":"read-only command in allow list"},` +
	`"note":"café \"quoted\"\n"},"sessionId":"sess_01HZX4K7Q2","channel":"slack","model":"claude-sonnet"}`

func TestCanonicalBenchRecord(t *testing.T) {
	if n := len(canonBenchRecord); n < 450 || n > 600 {
		t.Errorf("benchmark record is %d bytes, want about 500", n)
	}
	if _, err := Append(nil, []byte(canonBenchRecord)); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkCanonical(b *testing.B) {
	raw := []byte(canonBenchRecord)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = Append(buf[:0], raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkCanonicalCanonical measures input that is already canonical,
// as record_json from the database is.
func BenchmarkCanonicalCanonical(b *testing.B) {
	raw, err := Append(nil, []byte(canonBenchRecord))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = Append(buf[:0], raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// TestCanonicalManyDuplicates uses objects large enough that the sort is not
// a simple insertion sort, so "last one wins" must not rely on stability.
func TestCanonicalManyDuplicates(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		type kv struct {
			key string
			val int
		}
		var members []kv
		for i := range 40 {
			key := "k" + strconv.Itoa(i)
			if i%2 == 0 {
				key = strconv.Itoa(i) // an array index
			}
			for range 1 + r.IntN(3) {
				members = append(members, kv{key, 0})
			}
		}
		r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		last := map[string]int{}
		in := []byte{'{'}
		for i := range members {
			members[i].val = i
			last[members[i].key] = i
			if i > 0 {
				in = append(in, ',')
			}
			in = fmt.Appendf(in, "%q:%d", members[i].key, i)
		}
		in = append(in, '}')
		var idx, other []string
		for k := range last {
			if _, err := strconv.Atoi(k); err == nil {
				idx = append(idx, k)
			} else {
				other = append(other, k)
			}
		}
		slices.SortFunc(idx, func(a, b string) int {
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return x - y
		})
		slices.Sort(other)
		want := []byte{'{'}
		for i, k := range append(idx, other...) {
			if i > 0 {
				want = append(want, ',')
			}
			want = fmt.Appendf(want, "%q:%d", k, last[k])
		}
		want = append(want, '}')
		got, err := Append(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Append(%s)\n got %s\nwant %s", in, got, want)
		}
	}
}

// canonAppendEscapedBytewise is appendEscaped as it was before it
// skipped plain words: the baseline of BenchmarkCanonAppendEscaped and the
// reference of TestCanonAppendEscapedWords.
func canonAppendEscapedBytewise(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		ch := s[i]
		if ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0xED {
			i++
			continue
		}
		if ch == 0xED {
			// U+D000..U+DFFF; A0..BF in the second byte is a surrogate.
			if i+2 < len(s) && s[i+1] >= 0xA0 {
				dst = append(dst, s[start:i]...)
				u := rune(s[i]&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F)
				dst = append(dst, '\\', 'u',
					hexDigits[u>>12], hexDigits[u>>8&0xF],
					hexDigits[u>>4&0xF], hexDigits[u&0xF])
				i += 3
				start = i
				continue
			}
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch ch {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xF])
		}
		i++
		start = i
	}
	return append(dst, s[start:]...)
}

func TestCanonAppendEscapedWords(t *testing.T) {
	for n := 0; n < 20; n++ {
		for _, c := range []string{"\"", "\\", "\x00", "\x1f", "\n", "\xed\xa0\x80", "\xed\x9f\xbf", "é", "😀", "\x7f", " "} {
			for p := 0; p <= n; p++ {
				s := []byte(strings.Repeat("x", p) + c + strings.Repeat("y", n-p))
				if got, want := appendEscaped([]byte("a"), s), canonAppendEscapedBytewise([]byte("a"), s); !bytes.Equal(got, want) {
					t.Fatalf("%q: got %q, want %q", s, got, want)
				}
			}
		}
	}
}

// A long string with one escape, as in a re-serialised record's note.
func BenchmarkCanonAppendEscaped(b *testing.B) {
	s := []byte(strings.Repeat("threshold shipment session escalated order ", 8) + "tab\t élan " + strings.Repeat("account resolved ", 6))
	dst := make([]byte, 0, 1024)
	b.SetBytes(int64(len(s)))
	b.Run("words", func(b *testing.B) {
		for b.Loop() {
			dst = appendEscaped(dst[:0], s)
		}
	})
	b.Run("bytewise-baseline", func(b *testing.B) {
		for b.Loop() {
			dst = canonAppendEscapedBytewise(dst[:0], s)
		}
	})
}

func TestAppendAllocs(t *testing.T) {
	if canonRace {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	raw := []byte(canonBenchRecord)
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf, _ = Append(buf[:0], raw) }); n != 0 {
		t.Errorf("Append allocates %v times per call", n)
	}
}
