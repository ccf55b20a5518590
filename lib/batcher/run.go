package batcher

import (
	"context"
	"io"
	"sync/atomic"
	"time"
)

// Defaults of the adaptive interval (audit-batch's --min-interval and
// --max-interval, audit-ship's in-process batcher).
const (
	DefaultMinInterval = 50 * time.Millisecond
	DefaultMaxInterval = 5 * time.Second
)

// Config is how Run batches.
type Config struct {
	Limits  Limits
	MaxLine int // longest input line
	// Clock is the time source of the batch loop; nil is the system clock.
	// Tests pass a fake one to decide exactly when batches age.
	Clock Clock
	// Marks counts the mark lines dropped (framing.IsMark); nil: not counted.
	Marks *atomic.Int64
	// In, if set, is told of the record lines taken in, a chunk at a time.
	In func(records, bytes int)
}

// Run reads record lines from r (plain, gzip or zstd) and hands batches to
// b's Out until the input ends (everything flushed, then nil, or the
// input's error: an exitcode.Input error naming the line) or ctx is
// cancelled (what was read is flushed, then ctx.Err()). r is read in a
// goroutine that may stay blocked in a Read after Run returns if nothing
// interrupts it.
func Run(ctx context.Context, r io.Reader, b *Batcher, cfg Config) error {
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	marks := cfg.Marks
	if marks == nil {
		marks = new(atomic.Int64)
	}
	h := newHandoff(handoffLimit)
	go readLoop(h, r, cfg.MaxLine, marks)
	err := loop(ctx, h, b, clock, cfg.In)
	h.stop()
	return err
}

// loop moves lines from the handoff into the Batcher and calls Tick when
// the Batcher's deadline comes, until the input ends (flush, then nil or
// the input's error) or ctx is cancelled (take what was read, flush, return
// ctx.Err()).
func loop(ctx context.Context, h *handoff, b *Batcher, clock Clock, in func(records, bytes int)) error {
	timer := clock.NewTimer()
	defer timer.Stop()
	var c chunk
	for {
		if d, ok := b.Deadline(); ok {
			timer.Reset(max(d.Sub(clock.Now()), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			h.take(&c)
			if err := feed(b, clock, &c, in); err != nil {
				return err
			}
			if err := b.Flush(); err != nil {
				return err
			}
			return ctx.Err()
		case <-h.wake:
		case <-timer.C():
		}
		h.take(&c)
		if len(c.ends) == 0 && len(c.chains) == 0 && c.err == nil {
			// Nothing was waiting: the time-driven rules.
			if err := b.Tick(clock.Now()); err != nil {
				return err
			}
			continue
		}
		if err := feed(b, clock, &c, in); err != nil {
			return err
		}
		if c.err != nil {
			// Everything before the end (or the bad line) goes out first.
			if err := b.Flush(); err != nil {
				return err
			}
			if c.err == io.EOF {
				return nil
			}
			return c.err
		}
	}
}

// feed adds the lines of c to b. They arrived now; after a batch was
// written (which may have blocked on a full pipe) the clock is read again.
func feed(b *Batcher, clock Clock, c *chunk, in func(records, bytes int)) error {
	if in != nil {
		in(len(c.ends), len(c.buf))
	}
	now := clock.Now()
	start := 0
	marks := c.chains
	for i, end := range c.ends {
		id := b.id.Load()
		for len(marks) > 0 && marks[0].at <= i {
			if err := b.SetChain(marks[0].id); err != nil {
				return err
			}
			marks = marks[1:]
		}
		if err := b.Add(now, c.buf[start:end], c.seqs[i]); err != nil {
			return err
		}
		if b.id.Load() != id {
			now = clock.Now()
		}
		start = end
	}
	for _, m := range marks { // marks after the last line: the next lines' chain
		if err := b.SetChain(m.id); err != nil {
			return err
		}
	}
	return nil
}
