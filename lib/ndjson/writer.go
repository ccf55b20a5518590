package ndjson

import (
	"fmt"
	"io"
)

// DefaultWriterSize is the Writer's buffer size when NewWriter is given 0.
const DefaultWriterSize = 256 << 10

// Writer is a buffered line writer. The first error from the underlying
// writer is kept: every later call returns it. It is not safe for concurrent
// use.
type Writer struct {
	w   io.Writer
	buf []byte
	err error
}

// NewWriter returns a Writer with a buffer of size bytes (size <= 0 means
// DefaultWriterSize).
func NewWriter(w io.Writer, size int) *Writer {
	if size <= 0 {
		size = DefaultWriterSize
	}
	return &Writer{w: w, buf: make([]byte, 0, size)}
}

// Write writes line followed by '\n'. line should not contain '\n'; Write
// does not check. A line larger than the buffer is written straight through.
func (w *Writer) Write(line []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(line) < cap(w.buf)-len(w.buf) {
		w.buf = append(w.buf, line...)
		w.buf = append(w.buf, '\n')
		return nil
	}
	if err := w.writeSlow(line); err != nil {
		return err
	}
	w.buf = append(w.buf, '\n') // writeSlow left the buffer with room
	return nil
}

// WriteRaw writes b as it is: the caller includes the newlines.
func (w *Writer) WriteRaw(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(b) <= cap(w.buf)-len(w.buf) {
		w.buf = append(w.buf, b...)
		return nil
	}
	return w.writeSlow(b)
}

// writeSlow writes b when it does not fit in the free part of the buffer:
// it flushes the buffer, then buffers b if it fits, else writes it through.
// On success the buffer has room for at least one more byte.
func (w *Writer) writeSlow(b []byte) error {
	if err := w.Flush(); err != nil {
		return err
	}
	if len(b) < cap(w.buf) {
		w.buf = append(w.buf, b...)
		return nil
	}
	n, err := w.w.Write(b)
	return w.fail(n, len(b), err)
}

// Flush writes the buffered bytes to the underlying writer. It returns the
// underlying error (EPIPE, ENOSPC, ...) wrapped as "write: %w".
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.w.Write(w.buf)
	if err := w.fail(n, len(w.buf), err); err != nil {
		if n > 0 && n < len(w.buf) {
			w.buf = w.buf[:copy(w.buf, w.buf[n:])]
		}
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

// fail records and returns the error of a write of want bytes that wrote n.
func (w *Writer) fail(n, want int, err error) error {
	if err == nil && n < want {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("write: %w", err)
	}
	return w.err
}

// Buffered returns the number of bytes buffered and not yet written.
func (w *Writer) Buffered() int { return len(w.buf) }
