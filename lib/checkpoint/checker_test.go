package checkpoint

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/chain"
	"golang.org/x/mod/sumdb/note"
)

// fixture is one run of a Checker.
type fixture struct {
	trusted     *State
	notes       [][]byte // given with AddCheckpoint
	file        string   // given with ReadCheckpoints, if not ""
	log         []testRecord
	maxUnsealed time.Duration
	now         time.Time
}

func (fx fixture) run(t *testing.T, v note.Verifiers) Report {
	t.Helper()
	c, err := NewChecker(Options{Verifiers: v, Origin: testOrigin, Trusted: fx.trusted,
		MaxUnsealed: fx.maxUnsealed, Now: func() time.Time { return fx.now }})
	if err != nil {
		t.Fatal(err)
	}
	if fx.file != "" {
		if err := c.ReadCheckpoints(context.Background(), strings.NewReader(fx.file)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range fx.notes {
		if err := c.AddCheckpoint(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range fx.log {
		if err := c.Append(r.seq, []byte(r.hash), r.ts); err != nil {
			t.Fatal(err)
		}
	}
	rep := c.Finish()
	if again := c.Finish(); fmt.Sprint(again) != fmt.Sprint(rep) {
		t.Fatal("a second Finish gave another report")
	}
	return rep
}

// want is the expected finding, field by field; Detail is matched by the
// substrings in detail.
type want struct {
	reason              Reason
	firstSeq, lastSeq   int64
	size, logSize, line int64
	notes               []string
	detail              []string
}

func checkFindings(t *testing.T, rep Report, ws ...want) {
	t.Helper()
	if len(rep.Findings) != len(ws) {
		t.Fatalf("%d findings, want %d:\n%s", len(rep.Findings), len(ws), findingsText(rep))
	}
	for i, w := range ws {
		f := rep.Findings[i]
		if f.Reason != w.reason || f.FirstSeq != w.firstSeq || f.LastSeq != w.lastSeq || f.Size != w.size ||
			f.LogSize != w.logSize || f.Line != w.line || f.Severity != chain.SeverityError {
			t.Errorf("finding %d = %+v\nwant %+v", i, f, w)
		}
		if w.notes != nil && fmt.Sprint(f.Notes) != fmt.Sprint(w.notes) {
			t.Errorf("finding %d notes:\n%q\nwant\n%q", i, f.Notes, w.notes)
		}
		for _, d := range w.detail {
			if !strings.Contains(f.Detail, d) {
				t.Errorf("finding %d detail %q lacks %q", i, f.Detail, d)
			}
		}
	}
	if rep.State != nil {
		t.Errorf("the state advanced to size %d despite findings", rep.State.Size)
	}
}

func findingsText(rep Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		fmt.Fprintf(&b, "  %s (size %d, log %d, line %d)\n", f, f.Size, f.LogSize, f.Line)
	}
	return b.String()
}

// everyTen signs the log's prefixes of 10, 20, ..., up to n.
func everyTen(t *testing.T, s note.Signer, hashes []string, n int) [][]byte {
	var notes [][]byte
	for k := 10; k <= n; k += 10 {
		notes = append(notes, signAt(t, s, hashes, k))
	}
	return notes
}

func TestCheckerClean(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(105, nil)
	hashes := hashesOf(log)
	rep := fixture{notes: everyTen(t, signer, hashes, 100), log: log}.run(t, v)
	checkFindings(t, Report{Findings: rep.Findings})
	if rep.LogSize != 105 || rep.Checkpoints != 10 || rep.Sizes != 10 || rep.Matched != 10 ||
		rep.Proofs != 9 || rep.ProofsOK != 9 || rep.Covered != 100 || rep.Unchecked != 0 {
		t.Fatalf("report %+v", rep)
	}
	if rep.State == nil || rep.State.Size != 100 || rep.State.Root != rootOf(t, hashes, 100).String() {
		t.Fatalf("state %+v, want the checkpoint of size 100", rep.State)
	}
}

func TestCheckerTruncatedTail(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(100, nil)
	hashes := hashesOf(log)
	cp100 := signAt(t, signer, hashes, 100)
	rep := fixture{notes: [][]byte{signAt(t, signer, hashes, 50), cp100}, log: log[:73]}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonTruncatedTail, firstSeq: 74, lastSeq: 100, size: 100, logSize: 73, line: 2,
		notes:  []string{string(cp100)},
		detail: []string{"the log has 73 records but checkpoint #2 signed size 100: seqs 74..100 (27 records) are missing"}})
	if rep.Matched != 1 || rep.Unchecked != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestCheckerRewrite(t *testing.T) {
	signer, v := testVerifiers(t)
	honest := chainOf(100, nil)
	notes := everyTen(t, signer, hashesOf(honest), 100)
	// The attacker edits record 55 and recomputes every later hash; the chain
	// itself verifies again, but the signed roots from 60 on do not match.
	forged := chainOf(100, func(seq int64, rec string) string {
		if seq == 55 {
			return strings.Replace(rec, `"allow"`, `"deny"`, 1)
		}
		return rec
	})
	rep := fixture{notes: notes, log: forged}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonRewrite, firstSeq: 51, lastSeq: 60, size: 60, logSize: 100, line: 6,
		notes: []string{string(notes[5])},
		detail: []string{"while it matches at size 50: rows in (50, 60] (seqs 51..60) were rewritten",
			"4 larger signed sizes up to 100 mismatch too"}})
	if rep.Matched != 5 || rep.Proofs != 9 || rep.ProofsOK != 4 { // 10->20 .. 40->50
		t.Fatalf("report %+v", rep)
	}

	// Rewriting the last row before a checkpoint: the window is exact.
	forged = chainOf(100, func(seq int64, rec string) string {
		if seq == 60 {
			return rec + " "
		}
		return rec
	})
	rep = fixture{notes: notes, log: forged}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonRewrite, firstSeq: 51, lastSeq: 60, size: 60, logSize: 100, line: 6})
}

func TestCheckerReplacedChain(t *testing.T) {
	signer, v := testVerifiers(t)
	notes := everyTen(t, signer, hashesOf(chainOf(100, nil)), 100)
	other := chainOf(100, func(seq int64, rec string) string { return strings.Replace(rec, "agent:x", "agent:y", 1) })
	rep := fixture{notes: notes, log: other}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonReplacedChain, firstSeq: 1, lastSeq: 10, size: 10, logSize: 100, line: 1,
		notes:  []string{string(notes[0])},
		detail: []string{"none of the 10 signed sizes the log reaches (10..100) matches", "at or before seq 10"}})
}

func TestCheckerRollback(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(100, nil)
	hashes := hashesOf(log)
	trusted := StateOf(mustOpen(t, signAt(t, signer, hashes, 100), v))
	old := everyTen(t, signer, hashes, 60)

	// The checkpoint file was rolled back to size 60, and the log cut to
	// match: both are reported.
	rep := fixture{trusted: &trusted, notes: old, log: log[:60]}.run(t, v)
	checkFindings(t, rep,
		want{reason: ReasonRollback, size: 60, logSize: 60, line: 6,
			notes:  []string{string(old[5]), trusted.Note},
			detail: []string{"the newest checkpoint presented (checkpoint #6, size 60) is older than the trusted state (size 100)"}},
		want{reason: ReasonTruncatedTail, firstSeq: 61, lastSeq: 100, size: 100, logSize: 60,
			detail: []string{"but the trusted state signed size 100"}})

	// Only the checkpoints are stale; the log is whole.
	rep = fixture{trusted: &trusted, notes: old, log: log}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonRollback, size: 60, logSize: 100, line: 6})
}

func TestCheckerEquivocation(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(100, nil)
	hashes := hashesOf(log)
	fork := hashesOf(chainOf(50, func(seq int64, rec string) string {
		if seq == 50 {
			return rec + " "
		}
		return rec
	}))
	a, b := signAt(t, signer, hashes, 50), signAt(t, signer, fork, 50)
	rep := fixture{notes: [][]byte{a, signAt(t, signer, hashes, 100), b}, log: log}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonEquivocation, size: 50, logSize: 100, line: 3,
		notes:  []string{string(a), string(b)},
		detail: []string{"two validly signed checkpoints of size 50 have different roots: checkpoint #1 has", "checkpoint #3 has", "the log matches the first"}})
	if rep.Matched != 2 {
		t.Fatalf("report %+v", rep)
	}
	// The same checkpoint twice (or re-signed) is not equivocation.
	rep = fixture{notes: [][]byte{a, a}, log: log}.run(t, v)
	checkFindings(t, Report{Findings: rep.Findings})
}

func TestCheckerInconsistent(t *testing.T) {
	signer, v := testVerifiers(t)
	honest := chainOf(100, nil)
	trusted := StateOf(mustOpen(t, signAt(t, signer, hashesOf(honest), 50), v))
	// Row 30 rewritten and the rewritten log signed again at 100 (a signer
	// that signs whatever the database holds, or a stolen key).
	forged := chainOf(100, func(seq int64, rec string) string {
		if seq == 30 {
			return rec + " "
		}
		return rec
	})
	cp100 := signAt(t, signer, hashesOf(forged), 100)
	rep := fixture{trusted: &trusted, notes: [][]byte{cp100}, log: forged}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonInconsistent, firstSeq: 1, lastSeq: 50, size: 50, logSize: 100, line: 0,
		notes: []string{trusted.Note, string(cp100)},
		detail: []string{"the trusted state (size 50) and checkpoint #1 (size 100) are validly signed but not one history",
			"the consistency proof from size 50 to 100 made from the log fails: it verifies against checkpoint #1's root and not against the trusted state's",
			"Rows in (0, 50] differ"}})
	if rep.Proofs != 1 || rep.ProofsOK != 0 {
		t.Fatalf("report %+v", rep)
	}

	// With the honest checkpoints of 10 and 20 too, the window narrows.
	notes := append(everyTen(t, signer, hashesOf(honest), 20), cp100)
	rep = fixture{trusted: &trusted, notes: notes, log: forged}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonInconsistent, firstSeq: 21, lastSeq: 50, size: 50, logSize: 100, line: 0,
		detail: []string{"Rows in (20, 50] differ"}})
}

func TestCheckerBadNotes(t *testing.T) {
	signer, v := testVerifiers(t)
	other, _ := testKey(t, "other.test/key")
	log := chainOf(30, nil)
	hashes := hashesOf(log)
	good := signAt(t, signer, hashes, 20)
	bad := signAt(t, signer, hashes, 10)
	bad[len(bad)-5] ^= 1
	foreign := signAt(t, other, hashes, 30)
	otherOrigin, _ := Sign(signer, "other.test/log", 30, rootOf(t, hashes, 30))
	file := ""
	for _, n := range [][]byte{bad, foreign, good, otherOrigin} {
		var b bytes.Buffer
		AppendCheckpoint(&b, n)
		file += b.String()
	}
	file += "\nnot json\n{\"x\":1}\n"
	rep := fixture{file: file, log: log}.run(t, v)
	checkFindings(t, rep,
		want{reason: ReasonBadSignature, logSize: 30, line: 1, notes: []string{string(bad)}, detail: []string{"the checkpoint at line 1: open checkpoint: bad signature"}},
		want{reason: ReasonUnknownKey, logSize: 30, line: 2, detail: []string{"signed only by other.test/key+"}},
		want{reason: ReasonOriginMismatch, logSize: 30, line: 4, detail: []string{`of origin "other.test/log", not this log's "auditpipe.test/log"`}},
		want{reason: ReasonMalformed, logSize: 30, line: 6, detail: []string{"checkpoint file line 6: not a JSON object"}},
		want{reason: ReasonMalformed, logSize: 30, line: 7, detail: []string{`no "checkpoint" member`}},
	)
	if rep.Checkpoints != 1 || rep.Matched != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestCheckerTrustedStateTampered(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(50, nil)
	s := StateOf(mustOpen(t, signAt(t, signer, hashesOf(log), 40), v))
	s.Size = 20 // edited to hide a truncation, say
	rep := fixture{trusted: &s, log: log}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonMalformed, logSize: 50, detail: []string{"the trusted state: open state: malformed checkpoint"}})

	s = StateOf(mustOpen(t, signAt(t, signer, hashesOf(log), 40), v))
	s.Origin = "other.test/log"
	if _, err := NewChecker(Options{Verifiers: v, Origin: testOrigin, Trusted: &s}); err == nil {
		t.Fatal("a trusted state of another origin was accepted")
	}
}

func TestCheckerUnsealedTail(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(100, nil)
	notes := [][]byte{signAt(t, signer, hashesOf(log), 80)}
	oldest := time.UnixMilli(log[80].ts) // seq 81
	fx := fixture{notes: notes, log: log, maxUnsealed: time.Hour, now: oldest.Add(2 * time.Hour)}
	rep := fx.run(t, v)
	checkFindings(t, rep, want{reason: ReasonUnsealedTail, firstSeq: 81, lastSeq: 100, size: 80, logSize: 100,
		detail: []string{"20 records (seqs 81..100) are not covered by a signed checkpoint; the oldest, seq 81 at 2025-11-27T12:01:21Z, is 2h0m0s old, more than the 1h0m0s allowed"}})

	fx.now = oldest.Add(time.Hour)
	checkFindings(t, Report{Findings: fx.run(t, v).Findings})
	fx.maxUnsealed = 0
	fx.now = oldest.Add(1000 * time.Hour)
	checkFindings(t, Report{Findings: fx.run(t, v).Findings})
}

func TestCheckerStream(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(100, nil)
	hashes := hashesOf(log)
	notes := [][]byte{signAt(t, signer, hashes, 40), signAt(t, signer, hashes, 80)}

	// An at-least-once replay of 31..35 after 40 is skipped.
	replayed := append(append(append([]testRecord{}, log[:40]...), log[30:35]...), log[40:]...)
	rep := fixture{notes: notes, log: replayed}.run(t, v)
	checkFindings(t, Report{Findings: rep.Findings})
	if rep.Duplicates != 5 || rep.LogSize != 100 || rep.State == nil || rep.State.Size != 80 {
		t.Fatalf("report %+v", rep)
	}

	gap := append(append([]testRecord{}, log[:50]...), log[51:]...)
	rep = fixture{notes: notes, log: gap}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonStreamBreak, firstSeq: 51, lastSeq: 51, logSize: 50,
		detail: []string{"seq 52 follows seq 50: seqs 51..51 are missing: the tree covers seqs 1..50 only; 1 signed sizes (80..80) are not checked"}})

	fork := append([]testRecord{}, log...)
	fork = append(fork[:60:60], log[40])
	fork[60].hash = hashes[0]
	rep = fixture{notes: notes, log: fork}.run(t, v)
	checkFindings(t, rep, want{reason: ReasonStreamBreak, firstSeq: 61, lastSeq: 61, logSize: 60,
		detail: []string{"seq 41 appears again with a different recordHash"}})

	c, _ := NewChecker(Options{Verifiers: v, Origin: testOrigin})
	if err := c.Append(1, []byte("XYZ"), 0); err == nil {
		t.Fatal("a malformed recordHash was accepted")
	}
	if err := c.Append(1, []byte(hashes[0]), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.AddCheckpoint(notes[0]); err == nil {
		t.Fatal("AddCheckpoint after Append was accepted")
	}
	if err := c.ReadCheckpoints(context.Background(), strings.NewReader("")); err == nil {
		t.Fatal("ReadCheckpoints after Append was accepted")
	}
}

// TestCheckerTrustOnFirstUse: a first run without a state trusts the
// checkpoints; the next run carries that trust forward.
func TestCheckerTrustOnFirstUse(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(100, nil)
	hashes := hashesOf(log)
	rep := fixture{notes: everyTen(t, signer, hashes, 60), log: log[:65]}.run(t, v)
	if len(rep.Findings) != 0 || rep.State == nil || rep.State.Size != 60 {
		t.Fatalf("first run: %+v", rep)
	}
	state := *rep.State
	rep = fixture{trusted: &state, notes: everyTen(t, signer, hashes, 100), log: log}.run(t, v)
	if len(rep.Findings) != 0 || rep.State == nil || rep.State.Size != 100 || rep.ProofsOK != 9 {
		t.Fatalf("second run: %+v", rep)
	}
	// Only the trusted state, no new checkpoints: it stays.
	rep = fixture{trusted: &state, log: log}.run(t, v)
	if len(rep.Findings) != 0 || rep.State == nil || *rep.State != state {
		t.Fatalf("no new checkpoints: %+v", rep)
	}
	// Nothing signed at all: nothing to trust, nothing wrong.
	rep = fixture{log: log}.run(t, v)
	if len(rep.Findings) != 0 || rep.State != nil {
		t.Fatalf("no checkpoints: %+v", rep)
	}
}

// TestCheckerPairProofs runs the streaming consistency proofs for every
// pair of sizes 1 <= m < n <= 70, and for chains of many sizes: the proof
// gathered while streaming must verify (the Checker panics if a hash it
// needs was not captured).
func TestCheckerPairProofs(t *testing.T) {
	signer, v := testVerifiers(t)
	log := chainOf(300, nil)
	hashes := hashesOf(log)
	notes := make([][]byte, 301)
	for n := 1; n <= 300; n++ {
		notes[n] = signAt(t, signer, hashes, n)
	}
	for n := 2; n <= 70; n++ {
		for m := 1; m < n; m++ {
			rep := fixture{notes: [][]byte{notes[n], notes[m]}, log: log[:n]}.run(t, v)
			if len(rep.Findings) != 0 || rep.Proofs != 1 || rep.ProofsOK != 1 {
				t.Fatalf("%d -> %d: %+v", m, n, rep)
			}
		}
	}
	rep := fixture{notes: notes[1:], log: log}.run(t, v)
	if len(rep.Findings) != 0 || rep.Proofs != 299 || rep.ProofsOK != 299 {
		t.Fatalf("every size: %+v", rep)
	}
	var pow [][]byte
	for n := 1; n <= 256; n *= 2 {
		pow = append(pow, notes[n], notes[n-1+min(n, 1)], notes[min(n+1, 300)])
	}
	rep = fixture{notes: pow, log: log}.run(t, v)
	if len(rep.Findings) != 0 || rep.ProofsOK != rep.Proofs || rep.Proofs == 0 {
		t.Fatalf("powers of two: %+v", rep)
	}
}

func TestAppendCheckpointFormat(t *testing.T) {
	signer, _ := testVerifiers(t)
	var b bytes.Buffer
	if err := AppendCheckpoint(&b, signAt(t, signer, synth(1000), 1000)); err != nil {
		t.Fatal(err)
	}
	golden(t, "checkpoints.golden", b.Bytes())
}

func BenchmarkChecker(b *testing.B) {
	signer, v := testVerifiers(b)
	const n = 1 << 16
	hashes := synth(n)
	var notes [][]byte
	for k := 1000; k <= n; k += 1000 {
		notes = append(notes, signAt(b, signer, hashes, k))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, _ := NewChecker(Options{Verifiers: v, Origin: testOrigin})
		for _, m := range notes {
			c.AddCheckpoint(m)
		}
		for j, h := range hashes {
			c.Append(int64(j+1), []byte(h), 0)
		}
		if rep := c.Finish(); len(rep.Findings) != 0 {
			b.Fatal(rep.Findings)
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "records/s")
}

// TestFindingString: a finding without seqs (equivocation, bad_signature)
// reads "error REASON: detail", not "error REASON:: detail".
func TestFindingString(t *testing.T) {
	for _, tc := range []struct {
		f    Finding
		want string
	}{
		{Finding{Reason: ReasonEquivocation, Severity: chain.SeverityError, Size: 50, Detail: "two roots"},
			"error equivocation: two roots"},
		{Finding{Reason: ReasonTruncatedTail, Severity: chain.SeverityError, FirstSeq: 7, LastSeq: 7, Detail: "cut"},
			"error truncated_tail: seq 7: cut"},
		{Finding{Reason: ReasonRewrite, Severity: chain.SeverityError, FirstSeq: 51, LastSeq: 100, Detail: "rewritten"},
			"error rewrite: seq 51..100: rewritten"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
