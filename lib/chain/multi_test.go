package chain

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// hostChain is a chain of n records distinct per host (its records name
// the host, so each chain has its own hashes and id).
func hostChain(host string, n int) [][]byte {
	var lines [][]byte
	prev := ""
	for i := 1; i <= n; i++ {
		rec := fmt.Sprintf(`{"actor":"agent:%s","kind":"tool_call","n":%d,"tenantId":"acme","ts":%d}`, host, i, 1764244800000+int64(i))
		lines = append(lines, mkLine(int64(i), "acme", rec, prev))
		prev = hashOf(prev, rec)
	}
	return lines
}

// step is one line of a multi-chain stream: a chain mark (chain set,
// line nil) or a record line of the current chain.
type step struct {
	chain  string
	anchor *Anchor
	line   []byte
}

type multiGot struct {
	passed   []string // "chain:seq" passed on
	findings []Finding
}

func runMulti(opt MultiOptions, steps []step) (multiGot, *Multi) {
	m := NewMulti(opt)
	var g multiGot
	var p LineParser
	for i, s := range steps {
		num := int64(i + 1)
		if s.line == nil {
			mk, err := ParseMark(AppendChainMark(nil, s.chain, s.anchor))
			if err != nil {
				panic(err)
			}
			g.findings = append(g.findings, m.Mark(num, &mk)...)
			continue
		}
		if bytes.HasPrefix(s.line, MarkPrefix) {
			mk, err := ParseMark(s.line)
			if err != nil {
				panic(err)
			}
			g.findings = append(g.findings, m.Mark(num, &mk)...)
			continue
		}
		pass, done := m.Check(num, s.line)
		g.findings = append(g.findings, done...)
		if pass {
			r, _ := p.Parse(s.line)
			g.passed = append(g.passed, fmt.Sprintf("%s:%d", m.Current().ID, r.Seq))
		}
	}
	g.findings = append(g.findings, m.Finish()...)
	return g, m
}

// interleave makes a stream of chains a, b, c... taking one record of each
// in turn, with a chain mark before each.
func interleave(chains map[string][][]byte, order []string, anchors map[string]*Anchor, from map[string]int) []step {
	var out []step
	idx := map[string]int{}
	for k, v := range from {
		idx[k] = v
	}
	for more := true; more; {
		more = false
		for _, id := range order {
			i := idx[id]
			if i >= len(chains[id]) {
				continue
			}
			more = true
			var a *Anchor
			if i == from[id] {
				a = anchors[id]
			}
			out = append(out, step{chain: id, anchor: a}, step{line: chains[id][i]})
			idx[id] = i + 1
		}
	}
	return out
}

func tamper(line []byte) []byte {
	return bytes.Replace(line, []byte(`"kind":"tool_call","n"`), []byte(`"kind":"tool_cal1","n"`), 1)
}

func TestMulti(t *testing.T) {
	a, b, c := hostChain("a", 6), hostChain("b", 6), hostChain("c", 6)
	ids := []string{"chain-a", "chain-b", "chain-c"}
	all := func(mod func(map[string][][]byte)) map[string][][]byte {
		m := map[string][][]byte{"chain-a": append([][]byte(nil), a...), "chain-b": append([][]byte(nil), b...), "chain-c": append([][]byte(nil), c...)}
		if mod != nil {
			mod(m)
		}
		return m
	}
	seqs := func(id string, from, to int) []string {
		var s []string
		for i := from; i <= to; i++ {
			s = append(s, fmt.Sprintf("%s:%d", id, i))
		}
		return s
	}
	cases := []struct {
		name    string
		opt     MultiOptions
		steps   []step
		passed  map[string][]string // per chain, in order
		held    map[string]int64    // chain -> held seq
		reasons []string            // "chain:reason" of the error findings, in order
	}{
		{name: "three intact chains from genesis",
			opt:    MultiOptions{FailClosed: true},
			steps:  interleave(all(nil), ids, nil, nil),
			passed: map[string][]string{"chain-a": seqs("chain-a", 1, 6), "chain-b": seqs("chain-b", 1, 6), "chain-c": seqs("chain-c", 1, 6)},
		},
		{name: "a tampered chain stops alone",
			opt:     MultiOptions{FailClosed: true},
			steps:   interleave(all(func(m map[string][][]byte) { m["chain-b"][2] = tamper(m["chain-b"][2]) }), ids, nil, nil),
			passed:  map[string][]string{"chain-a": seqs("chain-a", 1, 6), "chain-b": seqs("chain-b", 1, 2), "chain-c": seqs("chain-c", 1, 6)},
			held:    map[string]int64{"chain-b": 3},
			reasons: []string{"chain-b:hash_mismatch", "chain-b:chain_held"},
		},
		{name: "a deleted record holds its chain at the gap",
			opt: MultiOptions{FailClosed: true},
			steps: interleave(all(func(m map[string][][]byte) {
				m["chain-c"] = append(m["chain-c"][:3:3], m["chain-c"][4:]...)
			}), ids, nil, nil),
			passed:  map[string][]string{"chain-a": seqs("chain-a", 1, 6), "chain-b": seqs("chain-b", 1, 6), "chain-c": seqs("chain-c", 1, 3)},
			held:    map[string]int64{"chain-c": 4},
			reasons: []string{"chain-c:seq_gap", "chain-c:chain_held"},
		},
		{name: "report mode: the chain goes on, the bad record is not passed",
			opt:     MultiOptions{},
			steps:   interleave(all(func(m map[string][][]byte) { m["chain-b"][2] = tamper(m["chain-b"][2]) }), ids, nil, nil),
			passed:  map[string][]string{"chain-a": seqs("chain-a", 1, 6), "chain-b": append(seqs("chain-b", 1, 2), seqs("chain-b", 4, 6)...), "chain-c": seqs("chain-c", 1, 6)},
			reasons: []string{"chain-b:hash_mismatch"},
		},
		{name: "anchored chains resume mid-way",
			opt:    MultiOptions{FailClosed: true},
			steps:  interleave(all(nil), ids, map[string]*Anchor{"chain-a": {3, hashField(a[2])}, "chain-b": {5, hashField(b[4])}, "chain-c": {Seq: 0}}, map[string]int{"chain-a": 3, "chain-b": 5}),
			passed: map[string][]string{"chain-a": seqs("chain-a", 4, 6), "chain-b": seqs("chain-b", 6, 6), "chain-c": seqs("chain-c", 1, 6)},
		},
		{name: "a wrong anchor holds only its chain",
			opt:     MultiOptions{FailClosed: true},
			steps:   interleave(all(nil), ids, map[string]*Anchor{"chain-a": {3, hashField(b[2])}}, map[string]int{"chain-a": 3}),
			passed:  map[string][]string{"chain-b": seqs("chain-b", 1, 6), "chain-c": seqs("chain-c", 1, 6)},
			held:    map[string]int64{"chain-a": 4},
			reasons: []string{"chain-a:prev_link", "chain-a:chain_held"},
		},
		{name: "a chain first seen mid-way without an anchor is held, not trusted",
			opt:     MultiOptions{FailClosed: true},
			steps:   interleave(all(nil), ids, nil, map[string]int{"chain-a": 2}),
			passed:  map[string][]string{"chain-b": seqs("chain-b", 1, 6), "chain-c": seqs("chain-c", 1, 6)},
			held:    map[string]int64{"chain-a": 3},
			reasons: []string{"chain-a:chain_held"},
		},
		{name: "the same chain on two hosts' ids is two chains; records under the wrong chain break it",
			opt: MultiOptions{FailClosed: true},
			steps: []step{{chain: "chain-a"}, {line: a[0]}, {line: a[1]}, {chain: "chain-b"}, {line: b[0]},
				{chain: "chain-a"}, {line: b[1]}, {chain: "chain-b"}, {line: b[1]}, {line: b[2]}},
			passed:  map[string][]string{"chain-a": seqs("chain-a", 1, 2), "chain-b": seqs("chain-b", 1, 3)},
			held:    map[string]int64{"chain-a": 2},
			reasons: []string{"chain-a:equivocation", "chain-a:chain_held"},
		},
		{name: "redelivery after a rebalance: the anchor below the head is proven by the replay",
			opt: MultiOptions{FailClosed: true},
			steps: append(interleave(all(nil), ids, nil, nil),
				interleave(all(nil), ids, map[string]*Anchor{"chain-a": {2, hashField(a[1])}, "chain-b": {2, hashField(b[1])}, "chain-c": {2, hashField(c[1])}},
					map[string]int{"chain-a": 2, "chain-b": 2, "chain-c": 2})...),
			passed: map[string][]string{"chain-a": seqs("chain-a", 1, 6), "chain-b": seqs("chain-b", 1, 6), "chain-c": seqs("chain-c", 1, 6)},
		},
		{name: "more chains than --max-chains: the one kept out is held",
			opt:     MultiOptions{FailClosed: true, MaxChains: 2},
			steps:   interleave(all(nil), ids, nil, nil),
			passed:  map[string][]string{"chain-a": seqs("chain-a", 1, 6), "chain-b": seqs("chain-b", 1, 6)},
			reasons: []string{"chain-c:chain_held"},
		},
		{name: "a record before any chain mark",
			opt:     MultiOptions{FailClosed: true},
			steps:   append([]step{{line: a[0]}}, interleave(all(nil), ids[1:], nil, nil)...),
			passed:  map[string][]string{"chain-b": seqs("chain-b", 1, 6), "chain-c": seqs("chain-c", 1, 6)},
			reasons: []string{":bad_mark"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, m := runMulti(tc.opt, tc.steps)
			per := map[string][]string{}
			for _, p := range g.passed {
				id := p[:strings.IndexByte(p, ':')]
				per[id] = append(per[id], p)
			}
			for _, id := range ids {
				if fmt.Sprint(per[id]) != fmt.Sprint(tc.passed[id]) {
					t.Errorf("%s passed %v, want %v", id, per[id], tc.passed[id])
				}
			}
			var reasons []string
			for _, f := range g.findings {
				if f.Severity == SeverityError {
					reasons = append(reasons, f.Chain+":"+string(f.Reason))
				}
			}
			if fmt.Sprint(reasons) != fmt.Sprint(tc.reasons) {
				t.Errorf("error findings %v, want %v\n%v", reasons, tc.reasons, g.findings)
			}
			for _, s := range m.Chains() {
				want, held := tc.held[s.ID]
				if s.Held != held || s.HeldSeq != want {
					t.Errorf("%s held %v at %d, want %v at %d", s.ID, s.Held, s.HeldSeq, held, want)
				}
			}
			for _, f := range g.findings {
				if f.Reason == ReasonChainHeld && f.FirstSeq > 0 && !strings.Contains(f.String(), "chain "+f.Chain+" seq") {
					t.Errorf("finding does not name its chain and seq: %s", f)
				}
			}
		})
	}
}

// The exact text of a held chain's finding: the chain, the seq, what broke,
// and the fix.
func TestMultiHeldFindingText(t *testing.T) {
	a := hostChain("a", 4)
	a[2] = tamper(a[2])
	g, _ := runMulti(MultiOptions{FailClosed: true}, []step{{chain: "chain-a"}, {line: a[0]}, {line: a[1]}, {line: a[2]}, {line: a[3]}})
	var held string
	for _, f := range g.findings {
		if f.Reason == ReasonChainHeld {
			held = f.String()
		}
	}
	want := "error chain_held: chain chain-a seq 3 line 4: held at seq 3 (hash_mismatch at seq 3): none of its later records are passed on; the other chains go on. Fix: find out what changed the chain at seq 3 on the host it comes from (audit-verify --db on its database); the chain stays held in every run until its records verify, and nothing of it is lost: the consumer keeps its partition's committed offset at its first record not delivered"
	if held != want {
		t.Fatalf("held finding\n got %s\nwant %s", held, want)
	}
}

// FuzzMulti: the multi-chain verifier never panics on any stream of chain
// marks, other marks and lines, and fails closed per chain: once a chain
// is held none of its records pass, and a chain with an error finding is
// held.
func FuzzMulti(f *testing.F) {
	a, b := hostChain("a", 4), hostChain("b", 4)
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, []byte("\n")) }
	cm := func(id string, an *Anchor) []byte { return AppendChainMark(nil, id, an) }
	f.Add(join(cm("a", nil), a[0], cm("b", nil), b[0], cm("a", nil), a[1], cm("b", nil), tamper(b[1]), b[2], cm("a", nil), a[2]))
	f.Add(join(cm("a", &Anchor{Seq: 2, Hash: hashField(a[1])}), a[2], a[3], cm("b", nil), b[1]))
	f.Add(join(cm("a", nil), a[0], []byte(`{"mark":{"type":"skip","fromSeq":2,"toSeq":3,"hash":"`+hashField(a[2])+`","verified":2,"tombstones":0}}`), a[3]))
	f.Add(join(a[0], cm("a", nil), []byte(`{"seq":`), a[1]))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, failClosed := range []bool{true, false} {
			m := NewMulti(MultiOptions{FailClosed: failClosed, Window: 2, MaxChains: 3})
			for i, l := range bytes.Split(in, []byte("\n")) {
				num := int64(i + 1)
				if bytes.HasPrefix(l, MarkPrefix) {
					mk, err := ParseMark(l)
					if err != nil {
						m.Note(num, ReasonBadMark, err.Error())
						continue
					}
					m.Mark(num, &mk)
					continue
				}
				cur := m.Current()
				wasHeld := cur != nil && cur.Held
				pass, done := m.Check(num, l)
				if pass && (cur == nil || wasHeld || failClosed && cur.Held) {
					t.Fatalf("line %d passed for a held or unknown chain (%+v)", num, cur)
				}
				for _, f := range done {
					if failClosed && f.Severity == SeverityError && f.Chain != "" && m.chains[f.Chain] != nil && !m.chains[f.Chain].Held {
						t.Fatalf("line %d: chain %s has an error finding but is not held: %s", num, f.Chain, f)
					}
				}
			}
			m.Finish()
			if m.Len() > 3 {
				t.Fatalf("%d chains held in memory, max 3", m.Len())
			}
		}
	})
}

func TestHoldRoundTrip(t *testing.T) {
	h := Hold{Chain: "chain-a", Seq: 7, Reason: "hash_mismatch"}
	line := AppendHold(nil, h)
	if string(line) != `{"hold":{"chain":"chain-a","seq":7,"reason":"hash_mismatch"}}` {
		t.Fatalf("AppendHold = %s", line)
	}
	if g, err := ParseHold(line); err != nil || g != h {
		t.Fatalf("ParseHold = %+v, %v", g, err)
	}
	for _, l := range []string{`{"hold":{}}`, `{"hold":{"chain":"a b","seq":1}}`, `{"hold":{"chain":"a","seq":-1}}`, `{"hold":`, `{"hold":{"chain":"a"}}`} {
		if _, err := ParseHold([]byte(l)); err == nil {
			t.Errorf("ParseHold(%s) accepted", l)
		}
	}
}

// BenchmarkMemoryPerChain: the heap a chain holds in a Multi (default
// window 64) once it has verified records: 10000 chains of 3 records each,
// the heap measured after a GC before and after.
//
//	go test ./lib/chain -run XXX -bench MemoryPerChain -benchtime 1x
func BenchmarkMemoryPerChain(b *testing.B) {
	const n = 10000
	var lines [][][]byte
	ids := make([]Mark, n)
	for i := range n {
		lines = append(lines, hostChain(fmt.Sprintf("h%d", i), 3))
		ids[i] = Mark{Type: MarkChain, Chain: fmt.Sprintf("chain-%06d", i)}
	}
	b.ResetTimer()
	var per float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewMulti(MultiOptions{FailClosed: true})
		for i := range n {
			m.Mark(1, &ids[i])
			for _, l := range lines[i] {
				if pass, _ := m.Check(2, l); !pass {
					b.Fatal("not passed")
				}
			}
		}
		m.Flush()
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(m)
	}
	b.ReportMetric(per, "bytes/chain")
}
