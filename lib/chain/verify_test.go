package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// testChain builds n record lines whose records are already canonical.
func testChain(n int) [][]byte {
	var lines [][]byte
	prev := ""
	for i := 1; i <= n; i++ {
		tenant := []string{"_system", "acme", "globex"}[i%3]
		rec := fmt.Sprintf(`{"actor":"agent:x","kind":"tool_call","n":%d,"tenantId":%q,"ts":%d}`, i, tenant, 1764244800000+int64(i))
		lines = append(lines, mkLine(int64(i), tenant, rec, prev))
		prev = hashOf(prev, rec)
	}
	return lines
}

func hashOf(prev, rec string) string {
	s := sha256.Sum256([]byte(prev + "\n" + rec))
	return hex.EncodeToString(s[:])
}

func mkLine(seq int64, tenant, rec, prev string) []byte {
	return []byte(fmt.Sprintf(`{"seq":%d,"ts":%d,"tenantId":%q,"kind":"tool_call","record":%s,"prevHash":%q,"recordHash":%q}`,
		seq, 1764244800000+seq, tenant, rec, prev, hashOf(prev, rec)))
}

func hashField(line []byte) string {
	var p LineParser
	r, err := p.Parse(line)
	if err != nil {
		panic(err)
	}
	return string(r.RecordHash)
}

type got struct {
	passed   []int64 // seqs passed on
	findings []Finding
}

func runVerifier(opt Options, lines [][]byte) got {
	v := NewVerifier(opt)
	var g got
	var p LineParser
	for i, l := range lines {
		pass, done := v.Check(int64(i+1), l)
		g.findings = append(g.findings, done...)
		if pass {
			r, _ := p.Parse(l)
			g.passed = append(g.passed, r.Seq)
		}
	}
	g.findings = append(g.findings, v.Finish()...)
	return g
}

func TestVerifyClean(t *testing.T) {
	lines := testChain(50)
	g := runVerifier(Options{}, lines)
	if len(g.findings) != 0 {
		t.Fatalf("findings on a clean chain: %v", g.findings)
	}
	if len(g.passed) != 50 {
		t.Fatalf("passed %d of 50", len(g.passed))
	}
}

// TestTamper applies one attack per reason code and checks the exact
// finding: reason, seq range and line.
func TestTamper(t *testing.T) {
	type want struct {
		reason   Reason
		first    int64
		last     int64
		line     int64
		lastLine int64
	}
	cases := []struct {
		name   string
		opt    Options
		mutate func(l [][]byte) [][]byte
		want   []want
		passed int
	}{
		{"hash_mismatch: record altered", Options{}, func(l [][]byte) [][]byte {
			l[4] = []byte(strings.Replace(string(l[4]), `"actor":"agent:x"`, `"actor":"agent:y"`, 1))
			return l
		}, []want{{ReasonHashMismatch, 5, 5, 5, 5}}, 9},
		{"hash_mismatch: run of altered records is one range", Options{}, func(l [][]byte) [][]byte {
			for i := 3; i < 6; i++ {
				l[i] = []byte(strings.Replace(string(l[i]), `"actor":"agent:x"`, `"actor":"agent:z"`, 1))
			}
			return l
		}, []want{{ReasonHashMismatch, 4, 6, 4, 6}}, 7},
		{"prev_link: one record rewritten with a recomputed hash", Options{}, func(l [][]byte) [][]byte {
			l[4] = mkLine(5, "globex", `{"actor":"evil","kind":"tool_call","n":5,"tenantId":"globex","ts":1}`, hashField(l[3]))
			return l
		}, []want{{ReasonPrevLink, 6, 6, 6, 6}}, 10},
		{"seq_gap: rows deleted", Options{}, func(l [][]byte) [][]byte {
			return append(l[:4:4], l[7:]...)
		}, []want{{ReasonSeqGap, 5, 7, 5, 5}}, 7},
		{"replay_unproven: an old seq beyond the window, alone", Options{Window: 2}, func(l [][]byte) [][]byte {
			return append(l, l[2])
		}, []want{{ReasonReplayUnproven, 3, 3, 11, 11}}, 10},
		{"duplicate: a replayed record is a warning, not passed twice", Options{}, func(l [][]byte) [][]byte {
			return append(l[:6:6], append([][]byte{l[5]}, l[6:]...)...)
		}, []want{{ReasonDuplicate, 6, 6, 7, 7}}, 10},
		{"equivocation: same seq, other hash", Options{}, func(l [][]byte) [][]byte {
			other := mkLine(4, "acme", `{"other":true}`, hashField(l[2]))
			return append(l[:6:6], append([][]byte{other}, l[6:]...)...)
		}, []want{{ReasonEquivocation, 4, 4, 7, 7}}, 10},
		{"bad_json", Options{}, func(l [][]byte) [][]byte {
			l[2] = []byte(`{"seq":3,`)
			return l
		}, []want{{ReasonBadJSON, 0, 0, 3, 3}}, 9},
		{"bad_field: missing recordHash", Options{}, func(l [][]byte) [][]byte {
			l[2] = []byte(strings.Replace(string(l[2]), `"recordHash"`, `"recordhash"`, 1))
			return l
		}, []want{{ReasonBadField, 0, 0, 3, 3}}, 9},
		{"bad_field: uppercase hash", Options{}, func(l [][]byte) [][]byte {
			h := hashField(l[2])
			l[2] = []byte(strings.Replace(string(l[2]), h, strings.ToUpper(h), 1))
			return l
		}, []want{{ReasonBadField, 0, 0, 3, 3}}, 9},
		{"bad_field: seq as a string", Options{}, func(l [][]byte) [][]byte {
			l[2] = []byte(strings.Replace(string(l[2]), `"seq":3`, `"seq":"3"`, 1))
			return l
		}, []want{{ReasonBadField, 0, 0, 3, 3}}, 9},
		{"tombstone: erased row is a notice and passes", Options{}, func(l [][]byte) [][]byte {
			l[4] = []byte(strings.Replace(string(l[4]), `{"actor":"agent:x","kind":"tool_call","n":5,"tenantId":"globex","ts":1764244800005}`,
				`{"kind":"erased","tenantId":"globex","originalKind":"tool_call","erasedAt":1764300000000,"reason":"gdpr"}`, 1))
			return l
		}, []want{{ReasonTombstone, 5, 5, 5, 5}}, 10},
		{"anchor: first record does not link", Options{Anchor: &Anchor{Seq: 4, Hash: strings.Repeat("a", 64)}}, func(l [][]byte) [][]byte {
			return l[4:]
		}, []want{{ReasonPrevLink, 5, 5, 1, 1}}, 6},
		{"anchor: gap after the anchor", Options{Anchor: &Anchor{Seq: 2, Hash: strings.Repeat("a", 64)}}, func(l [][]byte) [][]byte {
			return l[4:]
		}, []want{{ReasonSeqGap, 3, 4, 1, 1}}, 6},
		{"unanchored start is a notice", Options{}, func(l [][]byte) [][]byte {
			return l[4:]
		}, []want{{ReasonUnanchored, 5, 5, 1, 1}}, 6},
		{"genesis with a prevHash", Options{}, func(l [][]byte) [][]byte {
			l[0] = mkLine(1, "acme", `{"a":1}`, strings.Repeat("b", 64))
			return l
		}, []want{{ReasonPrevLink, 1, 2, 1, 2}}, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := runVerifier(tc.opt, tc.mutate(testChain(10)))
			if len(g.findings) != len(tc.want) {
				t.Fatalf("got %d findings, want %d: %v", len(g.findings), len(tc.want), g.findings)
			}
			for i, w := range tc.want {
				f := g.findings[i]
				if f.Reason != w.reason || f.FirstSeq != w.first || f.LastSeq != w.last || f.FirstLine != w.line || f.LastLine != w.lastLine {
					t.Errorf("finding %d = %v\nwant %s seq %d..%d lines %d..%d", i, f, w.reason, w.first, w.last, w.line, w.lastLine)
				}
				if f.Severity != SeverityOf(w.reason) {
					t.Errorf("severity %s for %s", f.Severity, f.Reason)
				}
			}
			if len(g.passed) != tc.passed {
				t.Errorf("passed %d records %v, want %d", len(g.passed), g.passed, tc.passed)
			}
		})
	}
}

func TestVerifyAnchorOK(t *testing.T) {
	l := testChain(10)
	g := runVerifier(Options{Anchor: &Anchor{Seq: 4, Hash: hashField(l[3])}}, l[4:])
	if len(g.findings) != 0 || len(g.passed) != 6 {
		t.Fatalf("findings %v passed %v", g.findings, g.passed)
	}
}

func TestVerifyStats(t *testing.T) {
	l := testChain(9)
	v := NewVerifier(Options{})
	for i, line := range l {
		v.Check(int64(i+1), line)
	}
	st := v.Stats()
	if st.Records != 9 || st.Verified != 9 || st.FastPath != 9 || st.FirstSeq != 1 || st.LastSeq != 9 || st.HeadHash != hashField(l[8]) {
		t.Fatalf("stats %+v", st)
	}
	if st.Tenants["acme"] != 3 || st.Tenants["globex"] != 3 || st.Tenants["_system"] != 3 {
		t.Fatalf("tenants %v", st.Tenants)
	}
}

func TestLineParser(t *testing.T) {
	good := string(testChain(1)[0])
	cases := []struct {
		name   string
		line   string
		reason Reason // "" = ok
	}{
		{"good", good, ""},
		{"whitespace around", "  " + good + " \t", ""},
		{"extra field", strings.Replace(good, `{"seq"`, `{"x":[1,2,{"y":null}],"seq"`, 1), ""},
		{"escaped tenant", strings.Replace(good, `"tenantId":"acme"`, `"tenantId":"ac\u006de"`, 1), ""},
		{"not an object", `[1,2]`, ReasonBadJSON},
		{"trailing garbage", good + `x`, ReasonBadJSON},
		{"two objects", good + good, ReasonBadJSON},
		{"control char", strings.Replace(good, `agent:x`, "agent:\x01", 1), ReasonBadJSON},
		{"bad escape", strings.Replace(good, `agent:x`, `agent:\q`, 1), ReasonBadJSON},
		{"invalid UTF-8 in a string", strings.Replace(good, `agent:x`, "agent:\xff", 1), ReasonBadJSON},
		{"truncated UTF-8 sequence", strings.Replace(good, `agent:x`, "agent:\xe2\x82", 1), ReasonBadJSON},
		{"NUL in a string", strings.Replace(good, `agent:x`, "agent:\x00", 1), ReasonBadJSON},
		{"NUL outside strings", strings.Replace(good, `"seq"`, "\x00\"seq\"", 1), ReasonBadJSON},
		{"non-ASCII outside strings", strings.Replace(good, `"seq"`, "\u00e9\"seq\"", 1), ReasonBadJSON},
		{"valid non-ASCII", strings.Replace(good, `agent:x`, "agent:é監😀", 1), ""},
		{"NaN", strings.Replace(good, `"n":1`, `"n":NaN`, 1), ReasonBadJSON},
		{"leading zero", strings.Replace(good, `"n":1`, `"n":01`, 1), ReasonBadJSON},
		{"bare dot", strings.Replace(good, `"n":1`, `"n":1.`, 1), ReasonBadJSON},
		{"unterminated", good[:len(good)-3], ReasonBadJSON},
		{"duplicate record key", strings.Replace(good, `{"seq"`, `{"record":{},"seq"`, 1), ReasonBadField},
		{"seq zero", strings.Replace(good, `"seq":1`, `"seq":0`, 1), ReasonBadField},
		{"seq float", strings.Replace(good, `"seq":1`, `"seq":1.0`, 1), ReasonBadField},
		{"seq huge", strings.Replace(good, `"seq":1`, `"seq":99999999999999999999`, 1), ReasonBadField},
		{"record array", strings.Replace(good, `"record":{`, `"record":[{`, 1), ReasonBadJSON},
		{"prevHash short", strings.Replace(good, `"prevHash":""`, `"prevHash":"abc"`, 1), ReasonBadField},
		{"ts string", strings.Replace(good, `"ts":1764244800001,"tenantId"`, `"ts":"now","tenantId"`, 1), ReasonBadField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p LineParser
			r, err := p.Parse([]byte(tc.line))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if r.Seq != 1 || string(r.TenantID) != "acme" || string(r.RecordKind) != "tool_call" || r.Raw[0] != '{' {
					t.Fatalf("parsed %+v", r)
				}
				return
			}
			pe, ok := err.(*ParseError)
			if !ok || pe.Reason != tc.reason {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
		})
	}
}

func BenchmarkVerifyFastPath(b *testing.B) {
	lines := benchLines(10000)
	b.ResetTimer()
	benchVerify(b, lines)
}

func benchVerify(b *testing.B, lines [][]byte) {
	var bytes int64
	for _, l := range lines {
		bytes += int64(len(l))
	}
	v := NewVerifier(Options{})
	n := 0
	for i := 0; i < b.N; i++ {
		if n == len(lines) {
			v = NewVerifier(Options{})
			n = 0
		}
		if ok, _ := v.Check(int64(n+1), lines[n]); !ok {
			b.Fatalf("line %d failed", n+1)
		}
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// benchLines builds ~500-byte canonical records like the database holds.
func benchLines(n int) [][]byte {
	var lines [][]byte
	prev := ""
	pad := strings.Repeat("x", 300)
	for i := 1; i <= n; i++ {
		rec := fmt.Sprintf(`{"actor":"agent:orders","decision":"allow","detail":{"args":%q,"n":%d},"durationMs":%d,"kind":"tool_call","tenantId":"acme","tool":"search","ts":%d}`,
			pad, i, i%1000, 1764244800000+int64(i))
		lines = append(lines, mkLine(int64(i), "acme", rec, prev))
		prev = hashOf(prev, rec)
	}
	return lines
}

// BenchmarkSHA256Baseline hashes the same lines with nothing else: the
// physical limit to compare BenchmarkVerifyFastPath against in one run.
func BenchmarkSHA256Baseline(b *testing.B) {
	lines := benchLines(10000)
	b.ResetTimer()
	var sum [32]byte
	for i := 0; i < b.N; i++ {
		sum = sha256.Sum256(lines[i%len(lines)])
	}
	_ = sum
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkVerifySlowPath(b *testing.B) {
	// The same records with their keys in reverse order: not canonical, so
	// every one is canonicalised before hashing.
	lines := benchLines(10000)
	for i, l := range lines {
		s := string(l)
		s = strings.Replace(s, `{"actor":"agent:orders","decision":"allow",`, `{"decision":"allow","actor":"agent:orders",`, 1)
		lines[i] = []byte(s)
	}
	b.ResetTimer()
	benchVerify(b, lines)
}

// TestVerifyMixedPaths: a stream whose middle was re-serialised (keys out of
// order) verifies throughout, each record counted on the path it needed.
func TestVerifyMixedPaths(t *testing.T) {
	lines := testChain(15)
	for i := 5; i < 10; i++ {
		lines[i] = []byte(strings.Replace(string(lines[i]), `{"actor":"agent:x","kind":"tool_call",`, `{"kind":"tool_call","actor":"agent:x",`, 1))
	}
	v := NewVerifier(Options{})
	for i, l := range lines {
		if ok, f := v.Check(int64(i+1), l); !ok || len(f) > 0 {
			t.Fatalf("line %d: ok=%v findings %v", i+1, ok, f)
		}
	}
	if st := v.Stats(); st.FastPath != 10 || st.SlowPath != 5 || st.Verified != 15 {
		t.Fatalf("fast %d slow %d verified %d, want 10, 5, 15", st.FastPath, st.SlowPath, st.Verified)
	}
}

func TestLineReason(t *testing.T) {
	for kind, want := range map[error]Reason{
		ndjson.ErrTooLong:     ReasonLineTooLong,
		ndjson.ErrTruncated:   ReasonTruncated,
		ndjson.ErrNUL:         ReasonBadJSON,
		ndjson.ErrInvalidUTF8: ReasonBadJSON,
		fmt.Errorf("wrapped: %w", ndjson.ErrTooLong): ReasonLineTooLong,
	} {
		if got := LineReason(kind); got != want {
			t.Errorf("LineReason(%v) = %s, want %s", kind, got, want)
		}
	}
}
