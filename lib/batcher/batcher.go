// Package batcher groups record lines into batches, closing a batch by
// count, by bytes or by age under an adaptive interval (the rule is
// cmd/audit-batch's doc), and hands each closed batch to an Out: as text
// (TextOut, audit-batch's stdout) or in memory (audit-ship's in-process
// batching). Records stay byte-exact; memory stays at about two batches
// plus the handoff buffer. Presets holds each SIEM's default caps and hard
// limits, from the sinks' declarations.
package batcher

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// Limits are the caps of a batch and the range of the adaptive interval.
type Limits struct {
	MaxCount    int           // records per batch, >= 1
	MaxBytes    int64         // sum of record line lengths (no '\n'), >= 1
	MinInterval time.Duration // the interval after a collapse, > 0
	MaxInterval time.Duration // the widest interval, >= MinInterval
}

// Validate says what is wrong with l, if anything.
func (l Limits) Validate() error {
	switch {
	case l.MaxCount < 1:
		return fmt.Errorf("max count %d: must be >= 1", l.MaxCount)
	case l.MaxBytes < 1:
		return fmt.Errorf("max bytes %d: must be >= 1", l.MaxBytes)
	case l.MinInterval < time.Millisecond:
		return fmt.Errorf("min interval %v: must be >= 1ms", l.MinInterval)
	case l.MaxInterval < l.MinInterval:
		return fmt.Errorf("max interval %v is below min interval %v", l.MaxInterval, l.MinInterval)
	}
	return nil
}

// Reason says why a batch was closed.
type Reason int

const (
	ClosedFull  Reason = iota // count or bytes cap reached: the interval doubles
	ClosedAge                 // its first record waited the interval: below half full, the interval collapses
	ClosedSeq                 // the next record's seq is lower than the last one's: interval unchanged
	ClosedFlush               // end of input, stop or input error: interval unchanged
	ClosedChain               // a chain mark named another chain than the open batch's: interval unchanged
	NumReasons
)

func (r Reason) String() string {
	switch r {
	case ClosedFull:
		return "full"
	case ClosedAge:
		return "age"
	case ClosedSeq:
		return "seq"
	case ClosedFlush:
		return "flush"
	case ClosedChain:
		return "chain"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Stats are a Batcher's counters. They are read atomically, so a metrics
// goroutine may call Stats while the Batcher runs.
type Stats struct {
	Records int64             // records written in closed batches
	Batches int64             // batches written
	Closed  [NumReasons]int64 // batches written, by Reason
	Bytes   int64             // record bytes written (headers and '\n' not counted)
}

// Out receives each closed batch: its header and its record lines, each
// followed by '\n'. lines is the Batcher's buffer: it is valid only until
// Batch returns. An error stops the Batcher and is returned as it is.
type Out interface {
	Batch(h framing.Header, lines []byte) error
}

// TextOut writes each batch as audit-batch's framing, header line first,
// to w, flushing it after every batch.
func TextOut(w *ndjson.Writer) Out { return &textOut{w: w} }

type textOut struct {
	w   *ndjson.Writer
	hdr []byte
}

func (t *textOut) Batch(h framing.Header, lines []byte) error {
	t.hdr = framing.AppendHeader(t.hdr[:0], h)
	err := t.w.Write(t.hdr)
	if err == nil {
		err = t.w.WriteRaw(lines)
	}
	if err == nil {
		err = t.w.Flush()
	}
	return err
}

// Batcher groups record lines into batches and hands each to an Out. It owns the adaptive
// interval; see the package documentation of cmd/audit-batch for the rule.
//
// Time is passed in (the now arguments) rather than read from a clock, so
// that the rule can be driven deterministically; the caller is expected to
// call Tick at Deadline. Add, Tick and Flush must be called from one
// goroutine; Interval and Stats may be called from any.
type Batcher struct {
	lim   Limits
	out   Out
	arena []byte // the open batch's record lines, each followed by '\n'
	n     int    // records in the open batch
	bytes int64  // their length without '\n'
	first int64  // seq of the first record
	last  int64  // seq of the last record
	chain string // the chain of the records added from now on ("" unknown): the open batch's
	start time.Time
	quiet time.Time // when input last arrived: the queue drained at quiet+MinInterval

	interval atomic.Int64 // nanoseconds
	id       atomic.Int64 // last batch id written
	records  atomic.Int64
	written  atomic.Int64
	closed   [NumReasons]atomic.Int64
}

// NewBatcher returns a Batcher handing batches to out, its interval at
// lim.MinInterval.
func NewBatcher(out Out, lim Limits) (*Batcher, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	b := &Batcher{lim: lim, out: out}
	b.interval.Store(int64(lim.MinInterval))
	return b, nil
}

// Interval returns the current adaptive batch interval (the value of the
// declaragent_audit_batch_interval_ms gauge).
func (b *Batcher) Interval() time.Duration { return time.Duration(b.interval.Load()) }

// Stats returns the counters so far.
func (b *Batcher) Stats() Stats {
	s := Stats{Records: b.records.Load(), Batches: b.id.Load(), Bytes: b.written.Load()}
	for i := range s.Closed {
		s.Closed[i] = b.closed[i].Load()
	}
	return s
}

// Deadline returns when Tick must next be called, if ever: when the open
// batch's first record has waited the interval, or — while the interval is
// above the minimum — when the input will have been quiet for MinInterval.
func (b *Batcher) Deadline() (time.Time, bool) {
	var d time.Time
	ok := false
	iv := b.Interval()
	if b.n > 0 {
		d, ok = b.start.Add(iv), true
	}
	if iv > b.lim.MinInterval && !b.quiet.IsZero() {
		if q := b.quiet.Add(b.lim.MinInterval); !ok || q.Before(d) {
			d, ok = q, true
		}
	}
	return d, ok
}

// Add appends one record line with its seq, which arrived at now. It first
// closes the open batch if its age is up, if line would take it over
// MaxBytes, or if seq is below the last record's seq; it then closes the
// batch if it is full. line is copied. A write error is returned as it is.
func (b *Batcher) Add(now time.Time, line []byte, seq int64) error {
	if b.n > 0 {
		var err error
		switch {
		case !now.Before(b.start.Add(b.Interval())):
			err = b.close(ClosedAge)
		case b.bytes+int64(len(line)) > b.lim.MaxBytes:
			err = b.close(ClosedFull)
		case seq < b.last:
			err = b.close(ClosedSeq)
		}
		if err != nil {
			return err
		}
	}
	if b.n == 0 {
		b.start = now
		b.first = seq
	}
	b.arena = append(b.arena, line...)
	b.arena = append(b.arena, '\n')
	b.n++
	b.bytes += int64(len(line))
	b.last = seq
	b.quiet = now
	if b.n >= b.lim.MaxCount || b.bytes >= b.lim.MaxBytes {
		return b.close(ClosedFull)
	}
	return nil
}

// SetChain says that the record lines added from now on belong to the
// chain id (a chain mark, lib/chain: audit-verify and audit-consume write
// one before each run of a chain's records). A batch holds one chain's
// records: if the open batch has records of another chain, it is closed
// first (ClosedChain, the interval unchanged). Every batch closed from now
// on carries id in its header's "chain" until the next SetChain; a stream
// without chain marks never calls it, and its headers have no "chain".
func (b *Batcher) SetChain(id string) error {
	if id == b.chain {
		return nil
	}
	if b.n > 0 {
		if err := b.close(ClosedChain); err != nil {
			return err
		}
	}
	b.chain = id
	return nil
}

// Tick is called when no input is waiting. If the input has been quiet for
// MinInterval (the queue drained), the interval collapses to MinInterval;
// then, if the open batch's first record has waited the interval, the batch
// is closed by age.
func (b *Batcher) Tick(now time.Time) error {
	if !b.quiet.IsZero() && !now.Before(b.quiet.Add(b.lim.MinInterval)) {
		b.interval.Store(int64(b.lim.MinInterval))
	}
	if b.n > 0 && !now.Before(b.start.Add(b.Interval())) {
		return b.close(ClosedAge)
	}
	return nil
}

// Flush closes the open batch, if any, without changing the interval: at
// the end of the input, on a stop, or before reporting a bad input line.
func (b *Batcher) Flush() error {
	if b.n == 0 {
		return nil
	}
	return b.close(ClosedFlush)
}

// close writes the open batch and applies the interval rule for why.
func (b *Batcher) close(why Reason) error {
	iv := b.Interval()
	h := framing.Header{
		ID:         b.id.Load() + 1,
		Count:      b.n,
		Bytes:      b.bytes,
		FirstSeq:   b.first,
		LastSeq:    b.last,
		IntervalMs: iv.Milliseconds(),
		Chain:      b.chain,
	}
	if err := b.out.Batch(h, b.arena); err != nil {
		return fmt.Errorf("write batch %d: %w", h.ID, err)
	}
	b.id.Store(h.ID)
	b.records.Add(int64(b.n))
	b.written.Add(b.bytes)
	b.closed[why].Add(1)
	switch why {
	case ClosedFull:
		b.interval.Store(int64(min(2*iv, b.lim.MaxInterval)))
	case ClosedAge:
		if 2*int64(b.n) < int64(b.lim.MaxCount) && 2*b.bytes < b.lim.MaxBytes {
			b.interval.Store(int64(b.lim.MinInterval))
		}
	}
	b.arena = b.arena[:0]
	b.n = 0
	b.bytes = 0
	return nil
}
