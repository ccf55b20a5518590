package chain

import (
	"bytes"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/framing"
)

func TestMarkRoundTrip(t *testing.T) {
	h := strings.Repeat("ab", 32)
	cases := []struct {
		m    Mark
		line string
	}{
		{Mark{Type: MarkAnchor, Source: SourceCursor, Exporter: "splunk:prod", Seq: 41, Hash: h},
			`{"mark":{"type":"anchor","source":"cursor","exporter":"splunk:prod","seq":41,"hash":"` + h + `"}}`},
		{Mark{Type: MarkAnchor, Source: SourceCursor, Exporter: "a\"b", Seq: 0},
			`{"mark":{"type":"anchor","source":"cursor","exporter":"a\"b","seq":0,"hash":""}}`},
		{Mark{Type: MarkAnchor, Source: SourceDBRow, Seq: 9, Hash: h},
			`{"mark":{"type":"anchor","source":"db-row","seq":9,"hash":"` + h + `"}}`},
		{Mark{Type: MarkAnchor, Source: SourceCursor, Exporter: "kafka:fleet", Seq: 41, Hash: h, Chain: strings.Repeat("cd", 32)},
			`{"mark":{"type":"anchor","source":"cursor","exporter":"kafka:fleet","seq":41,"hash":"` + h + `","chain":"` + strings.Repeat("cd", 32) + `"}}`},
		{Mark{Type: MarkAnchor, Source: SourceDBRow, Seq: 0, Chain: "host-17.prod"},
			`{"mark":{"type":"anchor","source":"db-row","seq":0,"hash":"","chain":"host-17.prod"}}`},
		{Mark{Type: MarkSkip, FromSeq: 42, ToSeq: 57, Hash: h, Verified: 16},
			`{"mark":{"type":"skip","fromSeq":42,"toSeq":57,"hash":"` + h + `","verified":16,"tombstones":0}}`},
		{Mark{Type: MarkSkip, FromSeq: 42, ToSeq: 57, Hash: h, Verified: 15, Breaks: 1, BreakSeq: 50, BreakReason: ReasonHashMismatch, BreakDetail: "x"},
			`{"mark":{"type":"skip","fromSeq":42,"toSeq":57,"hash":"` + h + `","verified":15,"tombstones":0,"breaks":1,"breakSeq":50,"breakReason":"hash_mismatch","breakDetail":"x"}}`},
		// issue 15: the chain mark, bare and with the chain's anchor, and
		// an anchor mark naming its chain
		{Mark{Type: MarkChain, Chain: h},
			`{"mark":{"type":"chain","chain":"` + h + `"}}`},
		{Mark{Type: MarkChain, Chain: "host-7.db:override", Anchored: true, Seq: 41, Hash: h},
			`{"mark":{"type":"chain","chain":"host-7.db:override","seq":41,"hash":"` + h + `"}}`},
		{Mark{Type: MarkChain, Chain: h, Anchored: true},
			`{"mark":{"type":"chain","chain":"` + h + `","seq":0,"hash":""}}`},
		{Mark{Type: MarkAnchor, Source: SourceCursor, Exporter: "kafka:fleet", Seq: 41, Hash: h, Chain: h},
			`{"mark":{"type":"anchor","source":"cursor","exporter":"kafka:fleet","seq":41,"hash":"` + h + `","chain":"` + h + `"}}`},
	}
	for _, tc := range cases {
		got := string(AppendMark(nil, &tc.m))
		if got != tc.line {
			t.Errorf("AppendMark\n got %s\nwant %s", got, tc.line)
		}
		m, err := ParseMark([]byte(got))
		if err != nil || m != tc.m {
			t.Errorf("ParseMark(%s) = %+v, %v", got, m, err)
		}
	}
}

func TestParseMarkRefuses(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, l := range []string{
		`{"mark":{}}`,
		`{"mark":{"type":"rewind","seq":1}}`,
		`{"mark":{"type":"anchor","source":"cursor","seq":4,"hash":"` + h + `"}}`,
		`{"mark":{"type":"anchor","source":"guess","seq":4,"hash":"` + h + `"}}`,
		`{"mark":{"type":"anchor","source":"db-row","seq":4,"hash":""}}`,
		`{"mark":{"type":"anchor","source":"db-row","seq":4,"hash":"` + strings.ToUpper(h) + `"}}`,
		`{"mark":{"type":"anchor","source":"db-row","seq":-1,"hash":""}}`,
		`{"mark":{"type":"anchor","source":"db-row","seq":4,"hash":"` + h + `","chain":""}}`,
		`{"mark":{"type":"anchor","source":"db-row","seq":4,"hash":"` + h + `","chain":"a b"}}`,
		`{"mark":{"type":"skip","fromSeq":5,"toSeq":6,"hash":"` + h + `","chain":"x"}}`,
		`{"mark":{"type":"anchor","source":"db-row","seq":4,"hash":"` + h + `","chain":"` + strings.Repeat("a", 129) + `"}}`,
		`{"mark":{"type":"skip","fromSeq":5,"toSeq":3,"hash":"` + h + `"}}`,
		`{"mark":{"type":"skip","fromSeq":5,"toSeq":6,"hash":"` + h + `","verified":9}}`,
		`{"mark":{"type":"skip","fromSeq":5,"toSeq":6,"hash":"` + h + `","breaks":1,"breakReason":"tombstone"}}`,
		`{"mark":{"type":"skip","fromSeq":5,"toSeq":6,"hash":"` + h + `","evil":1}}`,
		`{"mark":{"type":"skip","fromSeq":5,"toSeq":6,"hash":"` + h + `"}}{}`,
		`{"mark":`,
		`{"mark":{"type":"chain"}}`,
		`{"mark":{"type":"chain","chain":""}}`,
		`{"mark":{"type":"chain","chain":"a b"}}`,
		`{"mark":{"type":"chain","chain":"a\nb"}}`,
		`{"mark":{"type":"chain","chain":"` + strings.Repeat("a", 129) + `"}}`,
		`{"mark":{"type":"chain","chain":7}}`,
		`{"mark":{"type":"chain","chain":"c","seq":4}}`,
		`{"mark":{"type":"chain","chain":"c","hash":"` + h + `"}}`,
		`{"mark":{"type":"chain","chain":"c","seq":4,"hash":""}}`,
		`{"mark":{"type":"chain","chain":"c","seq":0,"hash":"` + h + `"}}`,
		`{"mark":{"type":"chain","chain":"c","seq":-1,"hash":""}}`,
		`{"mark":{"type":"chain","chain":"c","source":"cursor"}}`,
		`{"mark":{"type":"chain","chain":"c","fromSeq":1}}`,
		`{"mark":{"type":"chain","chain":"c","evil":1}}`,
		`{"mark":{"type":"skip","fromSeq":5,"toSeq":6,"hash":"` + h + `","chain":"c"}}`,
		`{"mark":{"type":"anchor","source":"db-row","seq":4,"hash":"` + h + `","chain":"x y"}}`,
	} {
		if m, err := ParseMark([]byte(l)); err == nil {
			t.Errorf("ParseMark(%s) = %+v, want an error", l, m)
		}
	}
}

func mark(m Mark) []byte { return AppendMark(nil, &m) }

// runMixed runs lines that may be marks (applied as trusted).
func runMixed(opt Options, lines [][]byte) (got, *Verifier) {
	v := NewVerifier(opt)
	var g got
	var p LineParser
	for i, l := range lines {
		if bytes.HasPrefix(l, MarkPrefix) {
			m, err := ParseMark(l)
			if err != nil {
				panic(err)
			}
			g.findings = append(g.findings, v.ApplyMark(int64(i+1), &m)...)
			continue
		}
		pass, done := v.Check(int64(i+1), l)
		g.findings = append(g.findings, done...)
		if pass {
			r, _ := p.Parse(l)
			g.passed = append(g.passed, r.Seq)
		}
	}
	g.findings = append(g.findings, v.Finish()...)
	return g, v
}

func TestApplyMark(t *testing.T) {
	l := testChain(20)
	h := func(seq int) string { return hashField(l[seq-1]) }
	skip := func(a, b int) []byte {
		return mark(Mark{Type: MarkSkip, FromSeq: int64(a), ToSeq: int64(b), Hash: h(b), Verified: int64(b - a + 1)})
	}
	cases := []struct {
		name   string
		lines  [][]byte
		errors []Reason // error findings, in order
		holes  int64
		passed int
	}{
		{"anchor then records", append([][]byte{mark(Mark{Type: MarkAnchor, Source: SourceDBRow, Seq: 9, Hash: h(9)})}, l[9:]...), nil, 0, 11},
		{"anchor at genesis", append([][]byte{mark(Mark{Type: MarkAnchor, Source: SourceCursor, Exporter: "x"})}, l...), nil, 0, 20},
		{"anchor that does not link", append([][]byte{mark(Mark{Type: MarkAnchor, Source: SourceDBRow, Seq: 9, Hash: h(8)})}, l[9:]...), []Reason{ReasonPrevLink}, 0, 11},
		{"holes from genesis", [][]byte{skip(1, 3), l[3], skip(5, 9), l[9], l[10], skip(12, 20)}, nil, 3, 3},
		{"hole after an anchor", [][]byte{mark(Mark{Type: MarkAnchor, Source: SourceDBRow, Seq: 4, Hash: h(4)}), skip(5, 9), l[9]}, nil, 1, 1},
		{"hole that skips more than it says", [][]byte{l[0], l[1], skip(5, 9), l[9]}, []Reason{ReasonSeqGap}, 1, 3},
		{"hole whose hash is not the next record's link", [][]byte{l[0], l[1], mark(Mark{Type: MarkSkip, FromSeq: 3, ToSeq: 9, Hash: h(8)}), l[9]}, []Reason{ReasonPrevLink}, 1, 3},
		{"hole that goes back", [][]byte{l[0], l[1], l[2], skip(2, 3), l[3]}, []Reason{ReasonBadMark}, 0, 4},
		{"break found in a hole", [][]byte{l[0], mark(Mark{Type: MarkSkip, FromSeq: 2, ToSeq: 5, Hash: h(5), Verified: 3, Breaks: 1, BreakSeq: 3, BreakReason: ReasonHashMismatch, BreakDetail: "recordHash …"}), l[5]}, []Reason{ReasonHashMismatch}, 1, 2},
		{"second anchor that joins", [][]byte{l[0], l[1], mark(Mark{Type: MarkAnchor, Source: SourceDBRow, Seq: 2, Hash: h(2)}), l[2]}, nil, 0, 3},
		{"second anchor elsewhere", [][]byte{l[0], l[1], mark(Mark{Type: MarkAnchor, Source: SourceDBRow, Seq: 7, Hash: h(7)}), l[7]}, []Reason{ReasonBadMark}, 0, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, v := runMixed(Options{}, tc.lines)
			var errs []Reason
			for _, f := range g.findings {
				if f.Severity == SeverityError {
					errs = append(errs, f.Reason)
				}
				if f.Reason == ReasonFiltered && f.Severity != SeverityNotice {
					t.Errorf("hole finding %v", f)
				}
			}
			if strings.Join(reasons(errs), ",") != strings.Join(reasons(tc.errors), ",") {
				t.Errorf("errors %v, want %v (all: %v)", errs, tc.errors, g.findings)
			}
			if st := v.Stats(); st.Holes != tc.holes {
				t.Errorf("holes %d, want %d", st.Holes, tc.holes)
			}
			if len(g.passed) != tc.passed {
				t.Errorf("passed %v, want %d", g.passed, tc.passed)
			}
		})
	}
}

func reasons(rs []Reason) []string {
	var s []string
	for _, r := range rs {
		s = append(s, string(r))
	}
	return s
}

// TestExpect: the cursor moved past the reader's anchor: the stream must
// carry the cursor's hash at its seq.
func TestExpect(t *testing.T) {
	l := testChain(20)
	for _, tc := range []struct {
		hash string
		fail bool
	}{{hashField(l[11]), false}, {hashField(l[10]), true}} {
		v := NewVerifier(Options{Anchor: &Anchor{Seq: 5, Hash: hashField(l[4])}})
		v.Expect(12, tc.hash, "cursor x's shipped hash")
		for i, line := range l[5:] {
			v.Check(int64(i+1), line)
		}
		v.Finish()
		if v.Failed() != tc.fail {
			t.Errorf("hash %s: failed %v", tc.hash[:8], v.Failed())
		}
	}
}

// FuzzParseMark: mark parsing never panics, and whatever it accepts
// writes back to a line that parses to the same mark.
func FuzzParseMark(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte(`{"mark":{"type":"anchor","source":"cursor","exporter":"splunk:prod","seq":41,"hash":"` + h + `"}}`))
	f.Add([]byte(`{"mark":{"type":"skip","fromSeq":42,"toSeq":57,"hash":"` + h + `","verified":15,"tombstones":0,"breaks":1,"breakSeq":50,"breakReason":"hash_mismatch","breakDetail":"x"}}`))
	f.Add([]byte(`{"mark":{"type":"skip","fromSeq":1,"toSeq":0,"hash":""}}`))
	f.Add([]byte(`{"mark":{"type":"chain","chain":"` + h + `"}}`))
	f.Add([]byte(`{"mark":{"type":"chain","chain":"c-1","seq":3,"hash":"` + h + `"}}`))
	f.Add([]byte(`{"mark":{"type":"anchor","source":"db-row","seq":9,"hash":"` + h + `","chain":"` + h + `"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMark(b)
		if err != nil {
			return
		}
		line := AppendMark(nil, &m)
		m2, err := ParseMark(line)
		if err != nil || m2 != m {
			t.Fatalf("%s -> %+v -> %s -> %+v, %v", b, m, line, m2, err)
		}
		v := NewVerifier(Options{Window: 2})
		v.ApplyMark(1, &m)
		v.Finish()
	})
}

// A tombstone among the records a filter left out is still reported (the
// tombstone alert must see every erasure).
func TestSkipTombstonesReported(t *testing.T) {
	l := testChain(10)
	g, v := runMixed(Options{}, [][]byte{l[0], mark(Mark{Type: MarkSkip, FromSeq: 2, ToSeq: 5, Hash: hashField(l[4]), Verified: 3, Tombstones: 1}), l[5]})
	if v.Failed() || v.Stats().Tombstones != 1 {
		t.Fatalf("failed %v stats %+v", v.Failed(), v.Stats())
	}
	for _, f := range g.findings {
		if f.Reason == ReasonTombstone && f.Count == 1 && f.Severity == SeverityNotice {
			return
		}
	}
	t.Fatalf("no tombstone notice: %v", g.findings)
}

// Every chain mark is a mark line to the other stages (lib/framing.IsMark,
// which audit-batch, audit-ship and seal use to drop marks).
func TestChainMarkIsMark(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, a := range []*Anchor{nil, {Seq: 0}, {Seq: 5, Hash: h}} {
		line := AppendChainMark(nil, h, a)
		if !bytes.HasPrefix(line, MarkPrefix) || !framing.IsMark(line) {
			t.Errorf("%s is not a mark line", line)
		}
		m, err := ParseMark(line)
		if err != nil || m.Type != MarkChain || m.Chain != h || m.Anchored != (a != nil) {
			t.Errorf("ParseMark(%s) = %+v, %v", line, m, err)
		}
	}
}

func TestValidChainID(t *testing.T) {
	for id, ok := range map[string]bool{
		strings.Repeat("0f", 32): true, "host-1": true, "a.b_c:d-E9": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "a b": false, "a/b": false, "é": false, "a\x00": false, `a"b`: false,
	} {
		if err := ValidChainID(id); (err == nil) != ok {
			t.Errorf("ValidChainID(%q) = %v, want ok %v", id, err, ok)
		}
	}
}
