package ack

import "iter"

// Sequencer is the writer's side of the ordering rule: it releases the
// acks of a run's batches in batch order, none after the first batch that
// was not delivered, and sets each released ack's claim for the run
// ("since", "sinceCount"). Because acks stop at the first failure, every
// record the run received from its first seq to a released ack's lastSeq
// was delivered or quarantined: that is the claim audit-ack checks against
// the database when acks between were lost (see the package doc).
//
// Give it each batch in the order the batches were received, whether it
// was delivered (Release) or not (Stop). One Sequencer per run; it is not
// safe for concurrent use.
type Sequencer struct {
	stopped bool
	// The run's first seq, the highest seq released in the run, and how
	// many records raised it: a seq at or below one released (a duplicate
	// in a replayed archive) adds nothing, so the count never claims more
	// distinct records than were acked.
	since, high, count int64
	started            bool
}

// Stop records that the next batch in order was not delivered, or its ack
// not handed over: no later ack may be released in this run (the cursor
// must not pass it).
func (s *Sequencer) Stop() { s.stopped = true }

// Stopped reports whether Stop was called.
func (s *Sequencer) Stopped() bool { return s.stopped }

// Release returns a, the ack of the next batch in order (delivered), with
// Since and SinceCount set from the run so far; seqs are the seqs of the
// batch's records, in order. It returns false after Stop: that ack must
// not be written (the records are delivered but not acked; they are
// shipped again from the cursor, duplicates not loss). When the seqs went
// back below the run's first seq, the ack is released without a claim.
func (s *Sequencer) Release(a Ack, seqs iter.Seq[int64]) (Ack, bool) {
	if s.stopped {
		return a, false
	}
	if !s.started {
		s.since, s.high, s.started = a.FirstSeq, -1, true
	}
	for seq := range seqs {
		if seq > s.high {
			s.high = seq
			s.count++
		}
	}
	if a.FirstSeq >= s.since && s.count >= int64(a.Count) {
		a.Since, a.SinceCount = s.since, s.count
	}
	return a, true
}
