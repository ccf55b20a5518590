package ack

import "testing"

// rows is a CountFunc over the seqs of an exporter's selection.
func rows(seqs ...int64) (CountFunc, *int) {
	calls := new(int)
	return func(lo, hi int64) (n, first, last int64, err error) {
		*calls++
		for _, s := range seqs {
			if s > lo && s < hi {
				if n == 0 {
					first = s
				}
				n, last = n+1, s
			}
		}
		return
	}, calls
}

// TestCheck: the gap rule of the package doc, case by case.
func TestCheck(t *testing.T) {
	all := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name    string
		rows    []int64
		known   int64
		span    Span
		want    *Gap
		queries int // 0: answered without a query
	}{
		{"clean, follows on", all, 4, Span{FirstSeq: 5, LastSeq: 7, Count: 3}, nil, 0},
		{"clean, overlaps the cursor", all, 6, Span{FirstSeq: 5, LastSeq: 7, Count: 3}, nil, 0},
		{"skips rows", all, 2, Span{FirstSeq: 6, LastSeq: 7, Count: 2}, &Gap{Missing: 3, MissFirst: 3, MissLast: 5}, 1},
		{"skips only rows outside the selection", []int64{1, 2, 6, 7}, 2, Span{FirstSeq: 6, LastSeq: 7, Count: 2}, nil, 1},
		{"count short inside its range", all, 4, Span{FirstSeq: 5, LastSeq: 9, Count: 3}, &Gap{Missing: 2, MissFirst: 5, MissLast: 9, Inside: true}, 1},
		{"count short but the selection is filtered", []int64{5, 7, 9}, 4, Span{FirstSeq: 5, LastSeq: 9, Count: 3}, nil, 1},
		{"since claim holds (acks lost)", all, 2, Span{FirstSeq: 6, LastSeq: 7, Count: 2, Since: 3, SinceCount: 5}, nil, 2},
		{"since claim short", all, 2, Span{FirstSeq: 6, LastSeq: 7, Count: 2, Since: 3, SinceCount: 4},
			&Gap{Missing: 1, MissFirst: 3, MissLast: 7, SinceShort: true}, 2},
		{"run began after the gap", all, 2, Span{FirstSeq: 6, LastSeq: 7, Count: 2, Since: 5, SinceCount: 3},
			&Gap{Missing: 2, MissFirst: 3, MissLast: 4}, 2},
		{"since behind the cursor (restarted from an older read)", all, 2, Span{FirstSeq: 6, LastSeq: 7, Count: 2, Since: 1, SinceCount: 7}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			count, calls := rows(tt.rows...)
			g, err := Check(tt.known, tt.span, count)
			if err != nil {
				t.Fatal(err)
			}
			if (g == nil) != (tt.want == nil) || g != nil && *g != *tt.want {
				t.Fatalf("Check = %+v, want %+v", g, tt.want)
			}
			if *calls != tt.queries {
				t.Errorf("%d queries, want %d", *calls, tt.queries)
			}
		})
	}
}

// TestSpans: clean acks that follow on from the cursor merge into one
// span (one commit, no query); any other is kept as it came; replays are
// dropped.
func TestSpans(t *testing.T) {
	var p Spans
	add := func(committed, first, last, count int64) bool {
		return p.Add(committed, Span{FirstSeq: first, LastSeq: last, Count: count, LastHash: "h", Since: 1, SinceCount: last})
	}
	steps := []struct {
		committed, first, last, count int64
		taken                         bool
		spans                         int
	}{
		{10, 5, 10, 6, false, 0},  // a replay of what is committed
		{10, 11, 12, 2, true, 1},  // follows on
		{10, 13, 15, 3, true, 1},  // merged
		{10, 14, 15, 2, false, 1}, // a replay of what is taken
		{10, 18, 20, 3, true, 2},  // a gap: kept apart, for the refusal to name it
		{10, 21, 22, 2, true, 3},  // after a gapped one: not merged (the tail is not clean)
	}
	for i, st := range steps {
		if got := add(st.committed, st.first, st.last, st.count); got != st.taken || len(p.List) != st.spans {
			t.Fatalf("step %d: taken %v with %d spans, want %v with %d", i, got, len(p.List), st.taken, st.spans)
		}
	}
	if m := p.List[0]; m.FirstSeq != 11 || m.LastSeq != 15 || m.Count != 5 || m.SinceCount != 0 {
		t.Fatalf("merged span %+v, want 11..15, count 5, no since", m)
	}
	if p.List[1].SinceCount != 20 {
		t.Fatalf("a span kept as it came keeps its claim: %+v", p.List[1])
	}
	p.Reset()
	if len(p.List) != 0 || !add(15, 16, 17, 2) || len(p.List) != 1 {
		t.Fatalf("after Reset: %+v", p.List)
	}
}
