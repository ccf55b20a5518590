package chain

import (
	"strconv"
	"strings"
	"testing"
)

// TestFindingNotHeldBack (issue 12 item 3c): a finding is returned by the
// Check of the line that completes it, not held until Finish while good
// records go on (a tombstone in --follow was never logged nor counted).
func TestFindingNotHeldBack(t *testing.T) {
	l := testChain(20)
	l[9] = []byte(strings.Replace(string(l[9]), `{"actor":"agent:x","kind":"tool_call","n":10,"tenantId":"acme","ts":1764244800010}`,
		`{"kind":"erased","tenantId":"acme","originalKind":"tool_call","erasedAt":1764300000000,"reason":"gdpr"}`, 1))
	v := NewVerifier(Options{})
	for i, line := range l {
		_, done := v.Check(int64(i+1), line)
		if i+1 == 10 || i+1 == 11 {
			if len(done) == 1 && done[0].Reason == ReasonTombstone && done[0].FirstSeq == 10 {
				return
			}
		}
	}
	t.Fatalf("the tombstone at seq 10 was not reported by line 10 or 11; only at Finish: %v", v.Finish())
}

// dupScenario: records 1..n, then from..to again (a batch written twice
// after a Ctrl-C), then to+1..n+extra.
func dupScenario(n, from, to, extra int) ([][]byte, [][]byte) {
	all := testChain(n + extra)
	var in [][]byte
	in = append(in, all[:n]...)
	in = append(in, all[from-1:to]...)
	in = append(in, all[n:]...)
	return all, in
}

// TestDuplicatesAnyDistance (item 1d): a replayed run longer than the window
// is a duplicate run, counted, dropped, and no error.
func TestDuplicatesAnyDistance(t *testing.T) {
	cases := []struct {
		name     string
		n, from  int
		to, more int
		window   int
	}{
		{"replay beyond the window", 60, 11, 60, 10, 8},
		{"replay inside the window", 60, 55, 60, 10, 8},
		{"replay of the whole stream", 30, 1, 30, 5, 4},
		{"replay of one old record then its successors", 40, 3, 40, 0, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, in := dupScenario(tc.n, tc.from, tc.to, tc.more)
			v := NewVerifier(Options{Window: tc.window})
			var passed []int64
			var p LineParser
			var fs []Finding
			for i, l := range in {
				pass, done := v.Check(int64(i+1), l)
				fs = append(fs, done...)
				if pass {
					r, _ := p.Parse(l)
					passed = append(passed, r.Seq)
				}
			}
			fs = append(fs, v.Finish()...)
			if v.Failed() {
				t.Fatalf("failed: %v", fs)
			}
			for _, f := range fs {
				if f.Severity == SeverityError || f.Reason != ReasonDuplicate {
					t.Errorf("finding %v", f)
				}
			}
			want := int64(tc.to - tc.from + 1)
			if st := v.Stats(); st.Duplicates != want {
				t.Errorf("duplicates %d, want %d", st.Duplicates, want)
			}
			if len(passed) != tc.n+tc.more {
				t.Fatalf("passed %d records, want %d", len(passed), tc.n+tc.more)
			}
			for i, s := range passed {
				if s != int64(i+1) {
					t.Fatalf("passed seq %d at %d", s, i)
				}
			}
		})
	}
}

// TestReplayDiverges: a different record inside a long replay (beyond the
// window) is still an error, and nothing unproven is passed.
func TestReplayDiverges(t *testing.T) {
	// A forged history from seq 15 on: every record's own hash holds and
	// links to the one before, so only the head comparison shows it.
	all := testChain(60)
	forged := make([][]byte, 0, 46)
	prev := hashField(all[13])
	for i := 15; i <= 60; i++ {
		rec := `{"forged":` + strconv.Itoa(i) + `}`
		forged = append(forged, mkLine(int64(i), "acme", rec, prev))
		prev = hashOf(prev, rec)
	}
	cases := []struct {
		name   string
		in     [][]byte
		reason Reason
	}{
		{"forged run reaching the head", append(append(append([][]byte{}, all...), all[10:14]...), forged...), ReasonEquivocation},
		{"altered record in the replay", func() [][]byte {
			in := append(append([][]byte{}, all...), all[10:]...)
			in[60+12] = []byte(strings.Replace(string(in[60+12]), `"actor":"agent:x"`, `"actor":"agent:y"`, 1))
			return in
		}(), ReasonHashMismatch},
		{"replayed record that does not link", func() [][]byte {
			in := append(append([][]byte{}, all...), all[10:]...)
			in[60+12] = mkLine(23, "acme", `{"other":1}`, hashField(all[21]))
			return in
		}(), ReasonEquivocation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVerifier(Options{Window: 8})
			var fs []Finding
			passedOld := 0
			for i, l := range tc.in {
				pass, done := v.Check(int64(i+1), l)
				fs = append(fs, done...)
				if pass && i >= 60 {
					passedOld++
				}
			}
			fs = append(fs, v.Finish()...)
			if !v.Failed() {
				t.Fatalf("not failed: %v", fs)
			}
			found := false
			for _, f := range fs {
				found = found || f.Reason == tc.reason && f.Severity == SeverityError
			}
			if !found {
				t.Errorf("no %s error in %v", tc.reason, fs)
			}
			if passedOld != 0 {
				t.Errorf("%d replayed records passed", passedOld)
			}
		})
	}
}

// TestReplayCutShort: a replay that ends (EOF) before it reaches the head
// is a warning naming the unproven range; nothing from it passes.
func TestReplayCutShort(t *testing.T) {
	all := testChain(60)
	in := append(append([][]byte{}, all...), all[10:30]...)
	v := NewVerifier(Options{Window: 8})
	passed := 0
	var fs []Finding
	for i, l := range in {
		pass, done := v.Check(int64(i+1), l)
		fs = append(fs, done...)
		if pass {
			passed++
		}
	}
	fs = append(fs, v.Finish()...)
	if v.Failed() || passed != 60 {
		t.Fatalf("failed %v passed %d: %v", v.Failed(), passed, fs)
	}
	var w *Finding
	for i := range fs {
		if fs[i].Reason == ReasonReplayUnproven {
			w = &fs[i]
		}
	}
	if w == nil || w.Severity != SeverityWarning || w.FirstSeq != 11 || w.LastSeq != 30 {
		t.Fatalf("want a replay_unproven warning for seq 11..30, got %v", fs)
	}
}
