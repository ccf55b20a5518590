package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/auditpipe/auditpipe/lib/batch"
)

// WriterAcks writes ack lines to a stream (stdout), flushing each.
type WriterAcks struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewWriterAcks returns an AckSink writing to w.
func NewWriterAcks(w io.Writer) *WriterAcks { return &WriterAcks{w: w} }

// Ack writes one ack line.
func (a *WriterAcks) Ack(ctx context.Context, ack batch.Ack) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf = append(batch.AppendAck(a.buf[:0], ack), '\n')
	_, err := a.w.Write(a.buf)
	return err
}

// Close does nothing: every ack was written when it was made.
func (a *WriterAcks) Close(ctx context.Context) error { return nil }

// FIFOAcks writes ack lines to a named pipe read by audit-ack. It never
// blocks the shipper on a missing reader: while nobody reads the FIFO, acks
// are kept (merged into one range, which is all the cursor needs) and
// written when a reader appears. Each line goes out in one write(2), atomic
// up to PIPE_BUF, so a crash cannot leave half an ack in the pipe.
type FIFOAcks struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	pending []batch.Ack
	log     io.Writer
	warned  time.Time
	buf     []byte
	Written int64 // ack lines written
}

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
		return fmt.Errorf("%s is not a FIFO (it is a %s); remove it or create one with mkfifo", path, describe(fi.Mode()))
	}
	return nil
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	}
	return m.Type().String()
}

// NewFIFOAcks returns an AckSink for the FIFO at path (created if absent).
func NewFIFOAcks(path string, log io.Writer) (*FIFOAcks, error) {
	if err := EnsureFIFO(path); err != nil {
		return nil, err
	}
	return &FIFOAcks{path: path, log: log}, nil
}

// Ack queues one ack and writes every queued ack if a reader is there.
func (a *FIFOAcks) Ack(ctx context.Context, ack batch.Ack) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.pending); n > 0 && mergeable(a.pending[n-1], ack) {
		last := &a.pending[n-1]
		last.LastSeq, last.LastHash = ack.LastSeq, ack.LastHash
		last.Count += ack.Count
	} else {
		a.pending = append(a.pending, ack)
	}
	return a.flushLocked()
}

func mergeable(prev, next batch.Ack) bool {
	return len(prev.Quarantined) == 0 && len(next.Quarantined) == 0 && prev.Exporter == next.Exporter
}

// flushLocked writes pending acks. A missing reader is not an error.
func (a *FIFOAcks) flushLocked() error {
	for len(a.pending) > 0 {
		if a.f == nil {
			f, err := os.OpenFile(a.path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				if errors.Is(err, syscall.ENXIO) { // no reader yet
					a.warnf("no audit-ack is reading %s; %d ack(s) held until one does", a.path, len(a.pending))
					return nil
				}
				return fmt.Errorf("open ack FIFO: %w", err)
			}
			a.f = f
		}
		a.buf = append(batch.AppendAck(a.buf[:0], a.pending[0]), '\n')
		if _, err := a.f.Write(a.buf); err != nil {
			a.f.Close()
			a.f = nil
			if errors.Is(err, syscall.EPIPE) { // the reader went away
				a.warnf("audit-ack stopped reading %s; %d ack(s) held until it is back", a.path, len(a.pending))
				return nil
			}
			return fmt.Errorf("write ack FIFO: %w", err)
		}
		a.Written++
		a.pending = a.pending[1:]
	}
	return nil
}

func (a *FIFOAcks) warnf(format string, args ...any) {
	if time.Since(a.warned) < 10*time.Second {
		return
	}
	a.warned = time.Now()
	fmt.Fprintf(a.log, "audit-ship: "+format+"\n", args...)
}

// Pending returns how many acks are held.
func (a *FIFOAcks) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// Close keeps trying to hand over held acks until ctx is done, then closes
// the FIFO. Acks still held are reported: their records will be shipped
// again after the restart (duplicates, not loss).
func (a *FIFOAcks) Close(ctx context.Context) error {
	for {
		a.mu.Lock()
		err := a.flushLocked()
		n := len(a.pending)
		a.mu.Unlock()
		if err != nil || n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			a.mu.Lock()
			fmt.Fprintf(a.log, "audit-ship: %d ack(s) (up to seq %d) could not be handed to audit-ack; those records will be shipped again after a restart\n",
				n, a.pending[n-1].LastSeq)
			a.mu.Unlock()
			goto done
		case <-time.After(100 * time.Millisecond):
		}
	}
done:
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f != nil {
		err := a.f.Close()
		a.f = nil
		return err
	}
	return nil
}
