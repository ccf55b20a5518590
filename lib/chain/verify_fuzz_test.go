package chain

import (
	"bytes"
	"encoding/hex"
	"os"
	"reflect"
	"testing"

	"github.com/auditpipe/auditpipe/lib/canon"
)

// FuzzVerify feeds arbitrary lines to the verifier: it must never panic,
// give the same answer twice (no hidden state beyond the stream), and only
// pass a record whose own hash holds (or a tombstone).
func FuzzVerify(f *testing.F) {
	if b, err := os.ReadFile("testdata/chain-public.ndjson"); err == nil {
		// The first records only (the awkward keys, numbers and strings are
		// there): a 40-record seed makes every minimisation take its full
		// minute and the fuzzer seem stuck.
		lines := bytes.Split(b, []byte("\n"))
		f.Add(bytes.Join(lines[:6], []byte("\n")))
		f.Add(bytes.Join([][]byte{lines[0], lines[2], lines[1]}, []byte("\n")))
		f.Add(bytes.Join([][]byte{lines[0], lines[1], lines[1], lines[3]}, []byte("\n")))
	}
	for _, l := range testChain(4) {
		f.Add(l)
	}
	tc := testChain(6)
	f.Add(bytes.Join([][]byte{tc[0], tc[1], tc[2], tc[3], tc[1], tc[2], tc[3], tc[4]}, []byte("\n")))
	f.Add(bytes.Join([][]byte{AppendMark(nil, &Mark{Type: MarkAnchor, Source: SourceDBRow, Seq: 1, Hash: hashField(tc[0])}), tc[1],
		AppendMark(nil, &Mark{Type: MarkSkip, FromSeq: 3, ToSeq: 4, Hash: hashField(tc[3]), Verified: 2}), tc[4], tc[5]}, []byte("\n")))
	f.Add([]byte(`{"seq":1,"ts":1,"tenantId":"a","kind":"k","record":{"kind":"erased"},"prevHash":"","recordHash":"` + string(bytes.Repeat([]byte("a"), 64)) + `"}`))
	f.Add([]byte("{\"seq\":1,\n\x00\xff[]{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Split(data, []byte("\n"))
		run := func() ([]bool, []Finding, Stats) {
			v := NewVerifier(Options{Window: 8})
			var passes []bool
			var all []Finding
			for i, l := range lines {
				if bytes.HasPrefix(l, MarkPrefix) {
					// Marks as audit-verify applies them on stdin.
					if m, err := ParseMark(l); err == nil {
						passes = append(passes, false)
						all = append(all, v.ApplyMark(int64(i+1), &m)...)
						continue
					}
				}
				pass, done := v.Check(int64(i+1), l)
				// The window's newest entry is the head's recordHash,
				// decoded (advance takes it from the sum just checked when
				// the record verified, and decodes it otherwise).
				if e := v.win[(v.winPos+len(v.win)-1)%len(v.win)]; e.seq != 0 && e.seq == v.lastSeq && IsHexHash(v.lastHash) &&
					hex.EncodeToString(e.hash[:]) != string(v.lastHash) {
					t.Fatalf("line %d: the window holds %x for seq %d, the head is %s", i+1, e.hash, e.seq, v.lastHash)
				}
				passes = append(passes, pass)
				all = append(all, done...)
			}
			all = append(all, v.Finish()...)
			return passes, all, v.Stats()
		}
		p1, f1, s1 := run()
		p2, f2, s2 := run()
		if !reflect.DeepEqual(p1, p2) || !reflect.DeepEqual(f1, f2) || s1.Records != s2.Records || s1.Errors != s2.Errors {
			t.Fatalf("two runs over the same input differ")
		}
		var lp LineParser
		var lastPassed int64
		for i, pass := range p1 {
			if !pass {
				continue
			}
			r, err := lp.Parse(lines[i])
			if err != nil {
				t.Fatalf("line %d passed but does not parse: %v", i+1, err)
			}
			// Nothing is passed on twice, or out of order: a replay is
			// dropped (Options.PassDuplicates is off).
			if r.Seq <= lastPassed {
				t.Fatalf("line %d passed seq %d after seq %d", i+1, r.Seq, lastPassed)
			}
			lastPassed = r.Seq
			if string(r.RecordKind) == "erased" {
				continue
			}
			c, err := canon.Append(nil, r.Raw)
			if err != nil {
				t.Fatalf("line %d passed but its record does not canonicalise: %v", i+1, err)
			}
			if got := string(AppendHexHash(nil, string(r.PrevHash), c)); got != string(r.RecordHash) {
				t.Fatalf("line %d passed with a hash that does not hold", i+1)
			}
		}
		for _, fd := range f1 {
			if fd.Count < 1 || fd.LastSeq < fd.FirstSeq || fd.LastLine < fd.FirstLine {
				t.Fatalf("malformed finding %+v", fd)
			}
		}
	})
}
