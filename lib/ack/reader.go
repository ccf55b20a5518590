package ack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// Reader is the reader's side of the protocol: it delivers ack lines from
// a stream (stdin) or from the FIFO, following the FIFO's path when it is
// replaced (see the package doc). Lines come on Lines; a fatal error (a
// read that fails for another reason than the end of the stream or a stop)
// on Errs, io.EOF when the stream ends. A line longer than MaxLine is
// reported and skipped, never held.
type Reader struct {
	stderr io.Writer
	prog   string // the prefix of every message: "audit-ack"
	lines  chan Line
	errs   chan error

	mu     sync.Mutex
	files  []*os.File // every file open, closed by close
	closed bool
}

// NewReader returns a Reader writing its notices to stderr, each prefixed
// "prog: ".
func NewReader(stderr io.Writer, prog string) *Reader {
	return &Reader{stderr: stderr, prog: prog, lines: make(chan Line), errs: make(chan error, 4)}
}

// Line is one ack line as read, with its newline.
type Line struct {
	Num int64 // 1-based line number in its stream (or FIFO)
	B   []byte
}

// Lines delivers the lines read.
func (in *Reader) Lines() <-chan Line { return in.lines }

// Errs delivers the error that ends the reading (io.EOF: the stream ended).
func (in *Reader) Errs() <-chan error { return in.errs }

// watchEvery is how often the FIFO's path is checked for a replacement
// (a removed and recreated FIFO): a read waits at most this long before the
// path is looked at again.
const watchEvery = time.Second

// ReadStream reads r (stdin) to its end.
func (in *Reader) ReadStream(ctx context.Context, r io.Reader) {
	go in.read(ctx, &swapReader{r: r}, nil, "")
}

// OpenFIFO opens the FIFO at path (created 0600 if absent) read-write, so
// that it never reaches end-of-file when a shipper exits, and reads it,
// following the path: when the FIFO at path is another one than the one
// open (removed and recreated, or renamed over), the new one is opened and
// read, and the old one is read on until its last writer closes it, so no
// ack written to either is lost.
func (in *Reader) OpenFIFO(ctx context.Context, path string) error {
	f, err := openFIFORW(path)
	if err != nil {
		return err
	}
	if !in.add(f) {
		return ctx.Err()
	}
	go in.read(ctx, &swapReader{r: f, f: f}, f, path)
	return nil
}

func openFIFORW(path string) (*os.File, error) {
	if err := EnsureFIFO(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open FIFO: %w", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		f.Close()
		return nil, fmt.Errorf("open FIFO: %s is no longer a FIFO", path)
	}
	return f, nil
}

func (in *Reader) add(f *os.File) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		f.Close()
		return false
	}
	in.files = append(in.files, f)
	return true
}

func (in *Reader) remove(f *os.File) {
	in.mu.Lock()
	for i, g := range in.files {
		if g == f {
			in.files = append(in.files[:i], in.files[i+1:]...)
			break
		}
	}
	in.mu.Unlock()
	f.Close()
}

// Stop unblocks every read at once (SIGINT/SIGTERM).
func (in *Reader) Stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, f := range in.files {
		f.SetReadDeadline(time.Now())
	}
}

// Close closes every file the Reader has open.
func (in *Reader) Close() {
	in.mu.Lock()
	files := in.files
	in.files, in.closed = nil, true
	in.mu.Unlock()
	for _, f := range files {
		f.Close()
	}
}

// swapReader reads from r, which read may replace (the FIFO reopened
// read-only) without losing what bufio holds.
type swapReader struct {
	r io.Reader
	f *os.File // r as a file, when it is one
}

func (s *swapReader) Read(p []byte) (int, error) { return s.r.Read(p) }

// read reads lines from src until its end or a stop. f is src's file when
// it is the FIFO at path (the current one): it is then watched.
func (in *Reader) read(ctx context.Context, src *swapReader, f *os.File, path string) {
	br := bufio.NewReaderSize(src, 64<<10)
	var partial []byte // a line cut by a watch timeout
	var id os.FileInfo
	if f != nil {
		id, _ = f.Stat()
	}
	lastWatch := time.Now()
	for num := int64(1); ; {
		if ctx.Err() != nil {
			return
		}
		if f != nil {
			f.SetReadDeadline(time.Now().Add(watchEvery))
			if ctx.Err() != nil { // stop may have run just before
				return
			}
		}
		line, err := ReadLine(br, MaxLine)
		if f != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				return
			}
			partial = append(partial, line...) // the line goes on after the timeout
			if len(partial) > MaxLine {
				partial = partial[:0]
			}
		} else {
			if len(partial) > 0 {
				line, partial = append(partial, line...), nil
			}
			if errors.Is(err, ErrLineTooLong) {
				fmt.Fprintf(in.stderr, "%s: line %d: skipping an ack line longer than %d bytes\n", in.prog, num, MaxLine)
				num++
				continue
			}
			if len(line) > 0 && err == nil {
				select {
				case in.lines <- Line{num, line}:
				case <-ctx.Done():
					return
				}
				num++
			}
			if err != nil {
				if len(line) > 0 && err == io.EOF {
					fmt.Fprintf(in.stderr, "%s: line %d: ignoring a partial ack line at end of input (%d bytes)\n", in.prog, num, len(line))
				}
				switch {
				case ctx.Err() != nil:
				case path != "" && err == io.EOF:
					// An old FIFO whose last writer has gone: done with it.
					in.remove(src.f)
				case path != "" && errors.Is(err, os.ErrDeadlineExceeded):
					// An old FIFO, stopped.
				default:
					in.errs <- err
				}
				return
			}
		}
		if f == nil || time.Since(lastWatch) < watchEvery {
			continue
		}
		lastWatch = time.Now()
		if now, err := os.Stat(path); err == nil && id != nil && os.SameFile(now, id) {
			continue
		}
		// The path names another FIFO now, or nothing. Open (or create) the
		// one at the path and read it; read the old one on until its last
		// writer closes it: reopened read-only (through /proc), it reaches
		// end-of-file then, which the read-write descriptor never does.
		fmt.Fprintf(in.stderr, "%s: the FIFO %s was removed or replaced: now reading the new one at that path (the old one is read until its last writer closes it)\n", in.prog, path)
		nf, err := openFIFORW(path)
		if err != nil {
			in.errs <- fmt.Errorf("the FIFO %s was replaced and cannot be reopened: %w", path, err)
			return
		}
		if !in.add(nf) {
			return
		}
		go in.read(ctx, &swapReader{r: nf, f: nf}, nf, path)
		ro, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			// Keep the read-write descriptor: read it on, forever.
			fmt.Fprintf(in.stderr, "%s: cannot reopen the old FIFO read-only (%v): reading it on\n", in.prog, err)
			f = nil
			continue
		}
		if !in.add(ro) {
			return
		}
		src.r, src.f = ro, ro
		in.remove(f)
		f = nil
	}
}

// MaxLine bounds an ack line: the longest real one names every seq of
// a fully quarantined batch. A longer line is skipped without being held.
const MaxLine = 1 << 20

// ErrLineTooLong is ReadLine's error for a line over its bound.
var ErrLineTooLong = errors.New("line too long")

// ReadLine reads one line (with its \n) of at most max bytes. A longer
// line is read to its end and dropped (ErrLineTooLong), so memory stays
// bounded whatever the writer sends.
func ReadLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return nil, err
			}
			return nil, ErrLineTooLong
		}
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// TrimEOL drops the line terminator (\n, \r\n) from b.
func TrimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
