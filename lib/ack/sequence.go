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

// Sequencers is the ordering rule of a run that carries many chains (the
// Kafka fleet's central side, where batches of different chains
// interleave): seq order, and so the run's claim, is per chain, so each
// chain (Ack.Chain) has its own Sequencer. A batch not delivered stops
// its own chain's acks (Stop), not the other chains': their records are
// acked independently (audit-consume commits a partition's offset only up
// to its lowest record not acked, whatever chain it belongs to). A run of
// one chain ("" or one id) behaves exactly as one Sequencer. The zero
// value is ready; not safe for concurrent use. Memory: one small entry per
// chain seen in the run.
type Sequencers struct {
	m       map[string]*Sequencer
	stopped bool // some chain was stopped
	all     bool // every chain, also those not seen yet, is stopped
}

func (s *Sequencers) of(chain string) *Sequencer {
	q := s.m[chain]
	if q == nil {
		if s.m == nil {
			s.m = map[string]*Sequencer{}
		}
		q = &Sequencer{stopped: s.all}
		s.m[chain] = q
	}
	return q
}

// Stop records that the next batch of chain, in order, was not delivered:
// no later ack of that chain may be released in this run.
func (s *Sequencers) Stop(chain string) {
	s.of(chain).Stop()
	s.stopped = true
}

// StopAll stops every chain, those not seen yet too (the acks' reader is
// gone: no ack can be handed over any more).
func (s *Sequencers) StopAll() {
	for _, q := range s.m {
		q.Stop()
	}
	s.stopped, s.all = true, true
}

// Stopped reports whether any chain was stopped.
func (s *Sequencers) Stopped() bool { return s.stopped }

// Release is Sequencer.Release for a's chain.
func (s *Sequencers) Release(a Ack, seqs iter.Seq[int64]) (Ack, bool) {
	return s.of(a.Chain).Release(a, seqs)
}
