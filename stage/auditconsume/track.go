package auditconsume

import (
	"github.com/auditpipe/auditpipe/lib/chain"
)

// tp is a topic partition.
type tp struct {
	topic string
	part  int32
}

// entry is one record written downstream and not yet acked.
type entry struct {
	off   int64
	seq   int64
	done  bool // acked, or released to a pin (its chain is held)
	epoch int32
}

// partState is what the consumer holds for one assigned partition.
type partState struct {
	pending []*entry // in offset order; the front ones done are dropped
	next    int64    // the offset after the last record seen (-1: none yet)
	epoch   int32
	// pins: held chains (and the offset of their first record not
	// delivered): the committed offset stays at or below the lowest.
	pins      map[string]int64
	committed int64 // the last offset committed (-1: none by us)
}

// chainState is what the consumer holds for one chain.
type chainState struct {
	acked     int64  // the highest seq acked (or stored as its anchor)
	ackedHash string // its recordHash
	stored    int64  // the seq of the anchor stored durably
	dirty     bool   // acked moved past stored
	owned     bool   // its partition is assigned to us
	announced bool   // its chain mark (with anchor) was written since assignment
	held      bool
	heldSeq   int64
	q         []qent // in flight, in the order written
}

type qent struct {
	e *entry
	p *partState
}

// tracker keeps the per-partition commit watermark (the lowest record not
// yet acked) and the per-chain anchors (issue 15). It is not safe for
// concurrent use: the consumer holds its lock around every call.
type tracker struct {
	parts    map[tp]*partState
	chains   map[string]*chainState
	inFlight int // records written and not acked, held chains' left out
}

func newTracker() *tracker {
	return &tracker{parts: map[tp]*partState{}, chains: map[string]*chainState{}}
}

func (t *tracker) chain(id string) *chainState {
	c := t.chains[id]
	if c == nil {
		c = &chainState{}
		t.chains[id] = c
	}
	return c
}

// assign starts tracking a partition.
func (t *tracker) assign(k tp) {
	if t.parts[k] == nil {
		t.parts[k] = &partState{next: -1, committed: -1, pins: map[string]int64{}}
	}
}

// revoke forgets a partition: its records in flight will be delivered
// again to whoever gets it (at-least-once); the chains seen on it must be
// announced again (with their anchor) when they come back.
func (t *tracker) revoke(k tp) {
	p := t.parts[k]
	if p == nil {
		return
	}
	for _, e := range p.pending {
		if !e.done {
			e.done = true
			t.inFlight--
		}
	}
	delete(t.parts, k)
	for _, c := range t.chains {
		kept := c.q[:0]
		for _, q := range c.q {
			if q.p != p {
				kept = append(kept, q)
			}
		}
		c.q = kept
		if len(c.q) == 0 {
			c.owned = false
			c.announced = false
		}
	}
}

// record decides what to do with a record of chain id at seq, read at
// offset off of partition k: skip it (at or below what was acked: it was
// delivered), or write it, after the chain mark returned (nil: none needed).
func (t *tracker) record(k tp, off int64, epoch int32, id string, seq int64) (write bool, mark []byte) {
	p := t.parts[k]
	if p == nil {
		return false, nil // revoked while the record was on its way
	}
	p.next, p.epoch = off+1, epoch
	c := t.chain(id)
	c.owned = true
	if seq <= c.acked {
		return false, nil // delivered before (its anchor says so): not again
	}
	if c.held {
		// Held: verify refuses it anyway; the partition stays pinned at
		// the chain's first record not delivered.
		if _, ok := p.pins[id]; !ok {
			p.pins[id] = off
		}
		return true, t.announce(c, id)
	}
	e := &entry{off: off, seq: seq, epoch: epoch}
	p.pending = append(p.pending, e)
	c.q = append(c.q, qent{e: e, p: p})
	t.inFlight++
	return true, t.announce(c, id)
}

func (t *tracker) announce(c *chainState, id string) []byte {
	if c.announced {
		return nil
	}
	c.announced = true
	var a *chain.Anchor
	if c.acked > 0 {
		a = &chain.Anchor{Seq: c.acked, Hash: c.ackedHash}
	}
	return chain.AppendChainMark(nil, id, a)
}

// ack takes an ack of chain id up to seq, whose recordHash is hash: every
// record of the chain at or below seq in flight is delivered.
func (t *tracker) ack(id string, seq int64, hash string) {
	c := t.chain(id)
	if seq > c.acked {
		c.acked, c.ackedHash = seq, hash
		c.dirty = c.owned // stored only while we own the chain
	}
	n := 0
	for _, q := range c.q {
		if q.e.seq > seq {
			break
		}
		if !q.e.done {
			q.e.done = true
			t.inFlight--
		}
		n++
	}
	// A replay (records delivered twice) may sit behind a higher seq.
	kept := c.q[:0]
	for _, q := range c.q[n:] {
		if q.e.seq <= seq {
			if !q.e.done {
				q.e.done = true
				t.inFlight--
			}
			continue
		}
		kept = append(kept, q)
	}
	c.q = kept
}

// hold takes a hold line: chain id is held from seq on. Its records in
// flight from seq on leave the in-flight count (they will never be acked)
// and pin their partition at the first of them.
func (t *tracker) hold(id string, seq int64) {
	c := t.chain(id)
	c.held, c.heldSeq = true, seq
	kept := c.q[:0]
	for _, q := range c.q {
		if q.e.seq < seq {
			kept = append(kept, q) // passed before the break: acks will come
			continue
		}
		if off, ok := q.p.pins[id]; !ok || q.e.off < off {
			q.p.pins[id] = q.e.off
		}
		if !q.e.done {
			q.e.done = true
			t.inFlight--
		}
	}
	c.q = kept
}

// watermark is the offset to commit for partition k: the lowest record not
// delivered (not acked, or pinned by a held chain), or the offset after
// the last record seen when all are delivered; -1 when nothing was seen.
func (t *tracker) watermark(k tp) (off int64, epoch int32) {
	p := t.parts[k]
	if p == nil {
		return -1, -1
	}
	i := 0
	for i < len(p.pending) && p.pending[i].done {
		i++
	}
	p.pending = p.pending[i:]
	off, epoch = p.next, p.epoch
	if len(p.pending) > 0 {
		off, epoch = p.pending[0].off, p.pending[0].epoch
	}
	for _, pin := range p.pins {
		if off < 0 || pin < off {
			off = pin
		}
	}
	return off, epoch
}

// dirtyAnchors returns the anchors to store before the next commit.
func (t *tracker) dirtyAnchors() map[string]chain.Anchor {
	out := map[string]chain.Anchor{}
	for id, c := range t.chains {
		if c.dirty {
			out[id] = chain.Anchor{Seq: c.acked, Hash: c.ackedHash}
		}
	}
	return out
}

// stored marks anchors as stored durably.
func (t *tracker) stored(as map[string]chain.Anchor) {
	for id, a := range as {
		c := t.chains[id]
		if c == nil {
			continue
		}
		if a.Seq > c.stored {
			c.stored = a.Seq
		}
		if c.acked <= c.stored {
			c.dirty = false
		}
	}
}

// loadAnchor sets a chain's stored anchor (read from the store on
// assignment): records at or below it are skipped as delivered.
func (t *tracker) loadAnchor(id string, a chain.Anchor) {
	c := t.chain(id)
	if a.Seq > c.acked {
		c.acked, c.ackedHash = a.Seq, a.Hash
	}
	if a.Seq > c.stored {
		c.stored = a.Seq
	}
}
