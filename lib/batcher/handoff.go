package batcher

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// handoffLimit is the size at which the reader stops and waits for the
// batch loop to take what it has read. The reader holds at most this plus
// one line, the loop as much again: memory stays at about two batches.
const handoffLimit = 256 << 10

// handoff is the double buffer between the reader goroutine and the batch
// loop. The reader appends each record line (a copy, with its seq) under
// the mutex and wakes the loop when the buffer is full, before every read
// of stdin (which may block: what was read must not wait behind it) and at
// the end. The loop swaps the buffer for its own empty one, which lets the
// reader go on.
type handoff struct {
	mu   sync.Mutex
	buf  []byte  // record lines, back to back, no '\n'
	ends []int   // end offset of each line in buf
	seqs []int64 // seq of each line
	// chains are the chain marks read, each with the index in ends of the
	// first line after it: at most one per index (a later mark before any
	// record replaces the earlier), so at most one more than the lines.
	chains []chainAt
	err    error // how the input ended: io.EOF, an input error, a read error
	gone   bool  // the loop has returned: stop reading
	limit  int

	wake  chan struct{} // cap 1: the loop has something to take
	space chan struct{} // cap 1: the loop took the buffer
	done  chan struct{} // closed when the loop returns
}

func newHandoff(limit int) *handoff {
	return &handoff{
		limit: limit,
		wake:  make(chan struct{}, 1),
		space: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// chunk is what the loop takes from the handoff.
type chunk struct {
	buf    []byte
	ends   []int
	seqs   []int64
	chains []chainAt
	err    error
}

// chainAt is a chain mark: the lines from index at on belong to chain id.
type chainAt struct {
	at int
	id string
}

func (h *handoff) notify() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// put appends a copy of line. It waits while the buffer is at its limit,
// and returns false if the loop has gone.
func (h *handoff) put(line []byte, seq int64) bool {
	h.mu.Lock()
	if h.gone {
		h.mu.Unlock()
		return false
	}
	for len(h.buf) >= h.limit {
		h.mu.Unlock()
		h.notify()
		select {
		case <-h.space:
		case <-h.done:
			return false
		}
		h.mu.Lock()
	}
	h.buf = append(h.buf, line...)
	h.ends = append(h.ends, len(h.buf))
	h.seqs = append(h.seqs, seq)
	h.mu.Unlock()
	return true
}

// putChain records a chain mark before the next line put. It never waits:
// one mark per line at most is kept (see chains).
func (h *handoff) putChain(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return false
	}
	if n := len(h.chains); n > 0 && h.chains[n-1].at == len(h.ends) {
		h.chains[n-1].id = id
	} else {
		h.chains = append(h.chains, chainAt{at: len(h.ends), id: id})
	}
	return true
}

// publish wakes the loop if lines are waiting.
func (h *handoff) publish() {
	h.mu.Lock()
	n := len(h.ends) + len(h.chains)
	h.mu.Unlock()
	if n > 0 {
		h.notify()
	}
}

// finish records how the input ended and wakes the loop.
func (h *handoff) finish(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	h.notify()
}

// stop tells the reader that the loop has returned: it reads no further
// line (it may still be blocked in a read of stdin, which nothing can
// interrupt; the process is about to exit then).
func (h *handoff) stop() {
	h.mu.Lock()
	h.gone = true
	h.mu.Unlock()
	close(h.done)
}

// take moves everything waiting into c, whose previous contents are
// dropped and whose buffers the reader reuses.
func (h *handoff) take(c *chunk) {
	h.mu.Lock()
	c.buf, h.buf = h.buf, c.buf[:0]
	c.ends, h.ends = h.ends, c.ends[:0]
	c.seqs, h.seqs = h.seqs, c.seqs[:0]
	c.chains, h.chains = h.chains, c.chains[:0]
	c.err, h.err = h.err, nil
	h.mu.Unlock()
	select {
	case h.space <- struct{}{}:
	default:
	}
}

// publishingReader wakes the loop before each read of the input, so that
// lines already read never wait behind a read that blocks.
type publishingReader struct {
	r io.Reader
	h *handoff
}

func (p publishingReader) Read(b []byte) (int, error) {
	p.h.publish()
	return p.r.Read(b)
}

// readLoop reads record lines from stdin into h until the end of the input,
// the first bad line, or the loop's return. It ends with h.finish: io.EOF,
// an exitcode.Input error naming the line, or a fatal read error.
//
// Mark lines (framing.IsMark: audit-read's control lines for audit-verify)
// are dropped and counted in marks: a mark is not a record. A chain mark
// ({"mark":{"type":"chain","chain":ID,...}}, lib/chain) is passed on to
// the loop in its place among the lines (Batcher.SetChain): the records
// after it belong to that chain. One that does not parse is an input
// error naming the line: its records must not be shipped as another
// chain's.
func readLoop(h *handoff, stdin io.Reader, maxLine int, marks *atomic.Int64) {
	r, err := ndjson.NewReader(publishingReader{stdin, h}, ndjson.Options{MaxLine: maxLine})
	if err != nil {
		h.finish(fmt.Errorf("read stdin: %w", err))
		return
	}
	defer r.Close()
	var p fastjson.Parser
	for {
		line, err := r.Next()
		if err != nil {
			var le *ndjson.LineError
			switch {
			case err == io.EOF:
				h.finish(io.EOF)
			case errors.As(err, &le):
				h.finish(exitcode.New(exitcode.Input, le))
			default:
				h.finish(fmt.Errorf("read stdin: %w", err))
			}
			return
		}
		if framing.IsMark(line.Bytes) {
			marks.Add(1)
			id, ok, err := ChainOfMark(line.Bytes)
			if err != nil {
				h.finish(exitcode.Errorf(exitcode.Input, "line %d: %w", line.Num, err))
				return
			}
			if ok && !h.putChain(id) {
				return
			}
			continue
		}
		seq, err := RecordSeq(&p, line.Bytes)
		if err != nil {
			h.finish(exitcode.Errorf(exitcode.Input, "line %d: %w", line.Num, err))
			return
		}
		if !h.put(line.Bytes, seq) {
			return
		}
	}
}
