package ack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// Counters are what a writer counts as it hands acks over; any may be nil.
// lib/ship points them at its Metrics (AckedRecords, LastAckedSeq,
// AcksHeld): an ack a writer accepted is not yet one audit-ack can commit.
type Counters struct {
	Records *atomic.Int64 // records whose ack was handed over
	LastSeq *atomic.Int64 // lastSeq of the last ack handed over
	Held    *atomic.Int64 // records whose ack is held (no reader, FIFO full)
}

func (c *Counters) handed(a Ack) {
	if c.Records != nil {
		c.Records.Add(int64(a.Count))
	}
	if c.LastSeq != nil {
		c.LastSeq.Store(a.LastSeq)
	}
}

func (c *Counters) held(n int64) {
	if c.Held != nil {
		c.Held.Add(n)
	}
}

// ErrNotHandedOver is returned (wrapped, with exit code
// exitcode.Incomplete) by Close when acks of delivered records could not be
// handed over before its deadline.
var ErrNotHandedOver = errors.New("acks not handed over")

// StreamWriter writes ack lines to a stream (audit-ship --acks -: stdout),
// one Write per line.
type StreamWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	c   Counters
}

// NewStreamWriter returns a writer of ack lines to w.
func NewStreamWriter(w io.Writer) *StreamWriter { return &StreamWriter{w: w} }

// Count sets the counters the writer keeps; call it before the first Ack.
func (a *StreamWriter) Count(c Counters) { a.c = c }

// Ack writes one ack line.
func (a *StreamWriter) Ack(ctx context.Context, k Ack) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf = append(Append(a.buf[:0], k), '\n')
	_, err := a.w.Write(a.buf)
	if err == nil {
		a.c.handed(k)
	}
	return err
}

// Close does nothing: every ack was written when it was made.
func (a *StreamWriter) Close(ctx context.Context) error { return nil }

// FIFOWriter writes ack lines to a named pipe read by audit-ack. It never
// blocks the shipper: while nobody reads the FIFO, or the reader does not
// keep up and the FIFO is full, acks are kept (merged into one range, which
// is all the cursor needs) and written when there is room. Each line goes
// out in one non-blocking write(2), atomic up to PIPE_BUF, so neither a
// crash nor a full FIFO can leave half an ack in the pipe.
type FIFOWriter struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	pending []Ack
	rest    []byte // the unwritten end of a line longer than PIPE_BUF
	restAck Ack
	log     io.Writer
	warned  time.Time
	buf     []byte
	c       Counters
	Written int64 // ack lines written

	retrying bool // a goroutine tries the held acks again
	closed   bool
}

// Count sets the counters the writer keeps; call it before the first Ack.
func (a *FIFOWriter) Count(c Counters) { a.c = c }

// EnsureFIFO creates path as a FIFO (mode 0600) unless it exists, and fails
// if it exists as something else.
func EnsureFIFO(path string) error {
	err := syscall.Mkfifo(path, 0o600)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create FIFO %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		fix := "give a path that does not exist yet (a FIFO is created there) or one made with mkfifo"
		if fi.Mode().IsRegular() {
			fix = "remove it or " + fix
		}
		return fmt.Errorf("%s is %s, not a FIFO (the channel audit-ack reads acks from): %s", path, describe(fi.Mode()), fix)
	}
	return nil
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a " + m.Type().String()
}

// NewFIFOWriter returns a writer of ack lines to the FIFO at path (created
// if absent, see EnsureFIFO); its warnings go to log.
func NewFIFOWriter(path string, log io.Writer) (*FIFOWriter, error) {
	if err := EnsureFIFO(path); err != nil {
		return nil, err
	}
	return &FIFOWriter{path: path, log: log}, nil
}

// Ack queues one ack and writes every queued ack there is room for.
func (a *FIFOWriter) Ack(ctx context.Context, k Ack) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.pending); n > 0 && mergeable(a.pending[n-1], k) {
		last := &a.pending[n-1]
		last.LastSeq, last.LastHash = k.LastSeq, k.LastHash
		last.Count += k.Count
		// The run's claim is the newest one, if it still fits the merged
		// range (it always does unless the seqs went back).
		if k.SinceCount > 0 && k.Since <= last.FirstSeq && k.SinceCount >= int64(last.Count) {
			last.Since, last.SinceCount = k.Since, k.SinceCount
		} else {
			last.Since, last.SinceCount = 0, 0
		}
	} else {
		a.pending = append(a.pending, k)
	}
	a.c.held(int64(k.Count))
	err := a.flushLocked()
	if err == nil && (len(a.pending) > 0 || len(a.rest) > 0) && !a.retrying && !a.closed {
		// Held acks go out as soon as there is room, not only with the
		// next ack: the log may be quiet for hours.
		a.retrying = true
		go a.retry()
	}
	return err
}

// retryEvery is how often held acks are tried again.
const retryEvery = 200 * time.Millisecond

func (a *FIFOWriter) retry() {
	for {
		time.Sleep(retryEvery)
		a.mu.Lock()
		if a.closed {
			a.retrying = false
			a.mu.Unlock()
			return
		}
		err := a.flushLocked()
		if err != nil || len(a.pending) == 0 && len(a.rest) == 0 {
			a.retrying = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
	}
}

func mergeable(prev, next Ack) bool {
	return len(prev.Quarantined) == 0 && len(next.Quarantined) == 0 && prev.Exporter == next.Exporter && prev.Chain == next.Chain
}

// errFull is a write that found the FIFO full: nothing was written.
var errFull = errors.New("ack FIFO full")

// flushLocked writes pending acks while the FIFO takes them. A missing
// reader or a full FIFO is not an error: the acks stay pending.
func (a *FIFOWriter) flushLocked() error {
	for len(a.pending) > 0 || len(a.rest) > 0 {
		if a.f == nil {
			if len(a.rest) > 0 {
				// The reader went away mid-line: audit-ack drops a line
				// cut by a closed pipe; send the whole ack again.
				a.pending = append([]Ack{a.restAck}, a.pending...)
				a.rest = nil
			}
			f, err := os.OpenFile(a.path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				if errors.Is(err, syscall.ENXIO) { // no reader yet
					a.warnf("no audit-ack is reading %s; acks for %d record(s) held until one does", a.path, a.held())
					return nil
				}
				return fmt.Errorf("open ack FIFO: %w", err)
			}
			a.f = f
		}
		var line []byte
		if len(a.rest) > 0 {
			line = a.rest
		} else {
			a.buf = append(Append(a.buf[:0], a.pending[0]), '\n')
			line = a.buf
		}
		n, err := a.write(line)
		if err == errFull {
			a.warnf("audit-ack is not keeping up with %s (the FIFO is full); acks for %d record(s) held", a.path, a.held())
			return nil
		}
		if err != nil {
			a.f.Close()
			a.f = nil
			if errors.Is(err, syscall.EPIPE) { // the reader went away
				a.warnf("audit-ack stopped reading %s; acks for %d record(s) held until it is back", a.path, a.held())
				return nil
			}
			return fmt.Errorf("write ack FIFO: %w", err)
		}
		if len(a.rest) == 0 {
			a.restAck = a.pending[0]
			a.pending = a.pending[1:]
		}
		if n < len(line) { // only a line over PIPE_BUF can be cut
			a.rest = append(a.rest[:0:0], line[n:]...)
			continue
		}
		a.rest = nil
		a.Written++
		a.c.handed(a.restAck)
		a.c.held(-int64(a.restAck.Count))
	}
	return nil
}

// write makes one non-blocking write(2) of b: errFull if the FIFO has no
// room (nothing written).
func (a *FIFOWriter) write(b []byte) (int, error) {
	rc, err := a.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	if err := rc.Control(func(fd uintptr) {
		for {
			n, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	switch {
	case werr == syscall.EAGAIN:
		return 0, errFull
	case werr != nil:
		return 0, &os.PathError{Op: "write", Path: a.path, Err: werr}
	}
	return n, nil
}

// held is the records of the acks not written.
func (a *FIFOWriter) held() int64 {
	var n int64
	for _, p := range a.pending {
		n += int64(p.Count)
	}
	return n
}

func (a *FIFOWriter) warnf(format string, args ...any) {
	if time.Since(a.warned) < 10*time.Second {
		return
	}
	a.warned = time.Now()
	fmt.Fprintf(a.log, "audit-ship: "+format+"\n", args...)
}

// Pending returns how many acks are held.
func (a *FIFOWriter) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// Close keeps trying to hand over held acks until ctx is done, then closes
// the FIFO. If acks are still held then, it returns an error wrapping
// ErrNotHandedOver (exit code exitcode.Incomplete) that says which
// records: they were delivered, and will be shipped again after the
// restart (duplicates, not loss).
func (a *FIFOWriter) Close(ctx context.Context) error {
	var held error
	for {
		a.mu.Lock()
		err := a.flushLocked()
		n := len(a.pending) + min(len(a.rest), 1)
		if err == nil && n > 0 && ctx.Err() != nil {
			first, last, recs := a.restAck.FirstSeq, a.restAck.LastSeq, int64(0)
			if len(a.pending) > 0 {
				if len(a.rest) == 0 {
					first = a.pending[0].FirstSeq
				}
				last = a.pending[len(a.pending)-1].LastSeq
			}
			recs = a.held()
			if len(a.rest) > 0 {
				recs += int64(a.restAck.Count)
			}
			held = exitcode.New(exitcode.Incomplete, fmt.Errorf("%w: the acks of %d delivered record(s), seq %d..%d, were not handed to audit-ack: nobody read %s in time; they were delivered but not acked, and will be shipped again from the cursor on the next run (duplicates, not loss); is audit-ack running on that FIFO?",
				ErrNotHandedOver, recs, first, last, a.path))
		}
		a.mu.Unlock()
		if err != nil || n == 0 || held != nil {
			if err != nil {
				held = err
			}
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.f != nil {
		if err := a.f.Close(); err != nil && held == nil {
			held = err
		}
		a.f = nil
	}
	return held
}
