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

// TestSequencersPerChain: with batches of several chains interleaved, each
// chain's claim is its own (since = the chain's first seq, sinceCount its
// records), a chain stopped holds back only its own later acks, StopAll
// holds back every chain (also one not seen yet), and one chain behaves as
// a Sequencer.
func TestSequencersPerChain(t *testing.T) {
	type step struct {
		chain string
		seqs  []int64 // nil = not delivered (Stop of that chain); "*" chain = StopAll
		ok    bool
		since int64
		count int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"interleaved: a claim per chain", []step{
			{"A", []int64{1, 2, 3}, true, 1, 3},
			{"B", []int64{40, 41}, true, 40, 2},
			{"A", []int64{4, 5}, true, 1, 5},
			{"B", []int64{42}, true, 40, 3},
			{"C", []int64{1}, true, 1, 1},
		}},
		{"a stop holds back only its chain", []step{
			{"A", []int64{1, 2}, true, 1, 2},
			{"B", nil, false, 0, 0},
			{"A", []int64{3}, true, 1, 3},
			{"B", []int64{7}, false, 0, 0},
			{"A", []int64{4}, true, 1, 4},
		}},
		{"StopAll holds back every chain", []step{
			{"A", []int64{1}, true, 1, 1},
			{"*", nil, false, 0, 0},
			{"A", []int64{2}, false, 0, 0},
			{"B", []int64{1}, false, 0, 0},
		}},
		{"one chain is a Sequencer", []step{
			{"", []int64{1, 2}, true, 1, 2},
			{"", nil, false, 0, 0},
			{"", []int64{5, 6}, false, 0, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sequencers
			for i, st := range tt.steps {
				if st.seqs == nil {
					if st.chain == "*" {
						s.StopAll()
					} else {
						s.Stop(st.chain)
					}
					if !s.Stopped() {
						t.Fatalf("step %d: not Stopped after a stop", i)
					}
					continue
				}
				in := Ack{Exporter: "x:y", Chain: st.chain, FirstSeq: st.seqs[0], LastSeq: st.seqs[len(st.seqs)-1], LastHash: hash, Count: len(st.seqs)}
				a, ok := s.Release(in, slices.Values(st.seqs))
				if ok != st.ok {
					t.Fatalf("step %d: released %v, want %v", i, ok, st.ok)
				}
				if ok && (a.Since != st.since || a.SinceCount != st.count || a.Chain != st.chain) {
					t.Fatalf("step %d: chain %q since %d sinceCount %d, want %q %d %d", i, a.Chain, a.Since, a.SinceCount, st.chain, st.since, st.count)
				}
			}
		})
	}
}
