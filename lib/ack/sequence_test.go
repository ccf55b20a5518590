package ack

import (
	"slices"
	"testing"
)

// TestSequencer: acks are released in order with the run's claim, none
// after a Stop; a replayed batch adds nothing to the count; seqs that go
// back below the run's start get no claim.
func TestSequencer(t *testing.T) {
	type step struct {
		seqs []int64 // the batch's seqs; nil = not delivered (Stop)
		// want: released, since, sinceCount
		ok                bool
		since, sinceCount int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{
			{[]int64{31, 32, 33}, true, 31, 3},
			{[]int64{34, 35}, true, 31, 5},
		}},
		{"stop holds back every later ack", []step{
			{[]int64{1, 2}, true, 1, 2},
			{nil, false, 0, 0},
			{[]int64{5, 6}, false, 0, 0},
			{[]int64{7}, false, 0, 0},
		}},
		{"a replayed batch adds nothing", []step{
			{[]int64{1, 2, 3, 4, 5}, true, 1, 5},
			{[]int64{6, 7, 8, 9, 10}, true, 1, 10},
			{[]int64{1, 2, 3, 4, 5}, true, 1, 10}, // the claim is the run's, unchanged
			{[]int64{11, 12, 13, 14, 15}, true, 1, 15},
		}},
		{"a gap in seqs (a filter) counts what was sent", []step{
			{[]int64{10, 20}, true, 10, 2},
			{[]int64{30}, true, 10, 3},
		}},
		{"below the run's start: no claim", []step{
			{[]int64{50, 51}, true, 50, 2},
			{[]int64{40, 41}, true, 0, 0}, // released, without a claim
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sequencer
			for i, st := range tt.steps {
				if st.seqs == nil {
					s.Stop()
					continue
				}
				in := Ack{Exporter: "x:y", FirstSeq: st.seqs[0], LastSeq: st.seqs[len(st.seqs)-1], LastHash: hash, Count: len(st.seqs)}
				a, ok := s.Release(in, slices.Values(st.seqs))
				if ok != st.ok || ok == s.Stopped() {
					t.Fatalf("step %d: released %v (stopped %v), want %v", i, ok, s.Stopped(), st.ok)
				}
				if !ok {
					continue
				}
				if a.Since != st.since || a.SinceCount != st.sinceCount {
					t.Fatalf("step %d: since %d sinceCount %d, want %d %d", i, a.Since, a.SinceCount, st.since, st.sinceCount)
				}
				if a.SinceCount != 0 {
					if err := a.Validate(); err != nil {
						t.Fatalf("step %d: released ack does not validate: %v", i, err)
					}
				}
			}
		})
	}
}
