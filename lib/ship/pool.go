package ship

import (
	"math"
	"os"
	"sync"
	"unsafe"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// Batch memory is pooled: the arena that holds a batch's record lines, its
// Records (whose strings and slices alias the arena), the per-record state
// of its delivery and the scratch copy of the records sent, are taken from
// batchPool by ReadBatchesMarks and Builder.Build and given back by
// release.
//
// The ownership rule: a Batch the package made (newBatch) is owned, with
// all its memory, by whoever holds it, from the reader through the
// channel to Run's dispatcher, the worker that ships it (every attempt,
// retry, split and bisection of it) and the sequencer; release is called
// at one place, the sequencer's loop (Shipper.sequence), once the batch's
// outcome is settled: its worker returned (no Send for it is running: a
// sink does not keep a record's memory past Send's return, see sink.Record)
// and its ack was handed to the AckSink, dropped, or never made (the batch
// failed). Nothing of the batch may outlive that point: ackOf copies what
// an ack keeps (LastHash; an AckSink may hold acks, ack.FIFOWriter does),
// Quarantine.Put writes the line before it returns, a log line is
// formatted before it returns. A Batch built by hand (&Batch{...}, tests)
// is never pooled: its memory is its maker's.
//
// The pool is bounded: sync.Pool drops what it holds when the garbage
// collector runs with no use for it, a batch whose memory is over
// maxPooledBatch is not kept at all, and a pooled arena much larger than
// the batch that takes it is dropped rather than used (so one huge batch
// does not pin its memory for the rest of the run).
var batchPool sync.Pool // *Batch

// maxPooledBatch is the most memory (arena plus records) a released batch
// may hold to be kept for reuse: the largest arena a header's claim
// preallocates (16 MiB) and its records.
const maxPooledBatch = 24 << 20

// poisonReleased, when set (tests; or AUDITPIPE_POISON_RELEASED=1 in the
// environment of a binary, for pipeline tests), overwrites a released
// batch's memory with 0xAA bytes (and its records with a seq no record
// has) before it is pooled, so any use of it after release shows up as
// changed bytes instead of passing unnoticed.
var poisonReleased = os.Getenv("AUDITPIPE_POISON_RELEASED") == "1"

// poisonByte fills released memory.
const poisonByte = 0xAA

// poisonSeq is the seq of a released batch's records.
const poisonSeq = -0x5555555555555556 // 0xAAAAAAAAAAAAAAAA as int64

// newBatch returns an empty pooled batch whose arena holds at least
// size bytes (a header's claim, capped at 16 MiB: the arena grows past
// it if the lines need more).
func newBatch(id int64, chain string, size int64) *Batch {
	need := int(min(max(size, 0), 16<<20))
	b, _ := batchPool.Get().(*Batch)
	if b == nil {
		b = &Batch{}
	}
	b.ID, b.Chain, b.pooled = id, chain, true
	if c := cap(b.arena); c < need || c > 1<<20 && c > 4*need {
		b.arena = make([]byte, 0, arenaSize(need))
	}
	b.arena = b.arena[:0]
	return b
}

// arenaSize rounds n up with room to spare, so an arena pooled for one
// batch fits the next batch of about the same size.
func arenaSize(n int) int {
	const unit = 64 << 10
	n += n / 8
	return (n + unit - 1) &^ (unit - 1)
}

// release gives a pooled batch's memory back for a later batch (see the
// ownership rule above). b must not be used afterwards.
func (b *Batch) release() {
	if b == nil || !b.pooled {
		return
	}
	size := cap(b.arena) + (cap(b.Records)+cap(b.recs))*int(unsafe.Sizeof(sink.Record{}))
	if poisonReleased {
		b.poison()
	}
	b.pooled = false // until newBatch hands it out again
	if size > maxPooledBatch {
		return
	}
	// What the slices hold is overwritten before it is read again (index
	// sets every record, ship clears the delivery state, deliver refills
	// recs): no clearing here.
	b.ID, b.Chain = 0, ""
	b.arena = b.arena[:0]
	b.Records, b.Status, b.Reason = b.Records[:0], b.Status[:0], b.Reason[:0]
	b.handled, b.idx, b.recs = b.handled[:0], b.idx[:0], b.recs[:0]
	batchPool.Put(b)
}

// poison overwrites b's memory (see poisonReleased).
func (b *Batch) poison() {
	a := b.arena[:cap(b.arena)]
	for i := range a {
		a[i] = poisonByte
	}
	junk := sink.Record{Seq: poisonSeq, TS: math.MinInt64, Line: a[:0], Raw: a[:0],
		TenantID: "\xaa", Kind: "\xaa", Hash: "\xaa", PrevHash: "\xaa", Chain: "\xaa"}
	for _, rs := range [][]sink.Record{b.Records[:cap(b.Records)], b.recs[:cap(b.recs)]} {
		for i := range rs {
			rs[i] = junk
		}
	}
	st := b.Status[:cap(b.Status)]
	for i := range st {
		st[i] = poisonByte
	}
	h := b.handled[:cap(b.handled)]
	for i := range h {
		h[i] = true
	}
	b.ID, b.Chain = poisonSeq, "\xaa"
}

// resize returns s with length n, reusing its memory when it is large
// enough; the elements keep what they held (the caller sets each).
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// grow returns s with length n, its first n elements zero, reusing its
// memory when it is large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}
