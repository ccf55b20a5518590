package ndjson

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

const (
	// DefaultMaxLine is the line-length cap used when Options.MaxLine is 0,
	// and every stage's --max-line default. Declaragent puts no limit on a
	// record, so the cap is far above any real one: it only bounds memory
	// against a runaway line. Nothing is allocated for it up front: a line
	// that fits in the read buffer is returned from it, and only a longer
	// one grows a buffer of its own (geometrically, up to its length), let
	// go again once the caller moves on (see maxKept).
	DefaultMaxLine = 64 << 20
	// DefaultBufferSize is the read buffer used when Options.BufferSize is 0.
	// A line that fits in it is returned without being copied.
	DefaultBufferSize = 1 << 20
	// maxKept is the largest long-line buffer a Reader keeps for the next
	// long line; a bigger one is dropped when the next line is read.
	maxKept = 4 << 20
	// MaxZstdWindow is the largest zstd window the Reader accepts (the
	// default limit of the zstd command line tool). A stream that asks for a
	// larger one is rejected as corrupt instead of being given the memory.
	MaxZstdWindow = 128 << 20
)

var (
	bom       = []byte{0xEF, 0xBB, 0xBF}
	errClosed = errors.New("read: reader closed")
)

// Options configure a Reader. The zero value is ready to use.
type Options struct {
	// MaxLine is the maximum line length in bytes, excluding the line
	// terminator ("\n" or "\r\n"); 0 means DefaultMaxLine.
	MaxLine int
	// BufferSize is the size of the read buffer; 0 means DefaultBufferSize.
	// Values below 16 are raised to 16.
	BufferSize int
	// NoValidate skips the NUL and UTF-8 checks, for a caller that checks
	// every byte itself in a pass it makes anyway (audit-verify's record
	// parser rejects NUL and invalid UTF-8 inside its single scan).
	NoValidate bool
}

// Line is one non-blank input line.
type Line struct {
	// Bytes is the line without its terminator (no "\n", no trailing "\r").
	// It points into the Reader's buffer: it is valid until the next call to
	// Next, and must be copied to be kept longer. Its capacity is its length,
	// so appending to it copies.
	Bytes []byte
	// Num is the 1-based physical line number in the (decompressed) input,
	// blank lines included.
	Num int64
}

// Stats are the Reader's counters so far.
type Stats struct {
	Lines       int64 // physical lines read, blank and faulty ones included
	Blank       int64 // blank lines skipped
	TooLong     int64 // lines reported with ErrTooLong
	Truncated   int64 // lines reported with ErrTruncated (0 or 1)
	InvalidUTF8 int64 // lines reported with ErrInvalidUTF8
	NUL         int64 // lines reported with ErrNUL
	// Bytes is the number of (decompressed) input bytes consumed, line
	// terminators, blank lines and a leading BOM included.
	Bytes int64
	// RawBytes is the number of bytes read from the underlying io.Reader so
	// far: the compressed size for compressed input. It includes read-ahead.
	RawBytes int64
}

// Reader reads NDJSON lines. It is not safe for concurrent use.
type Reader struct {
	src        *source
	br         *bufio.Reader
	zstd       *zstd.Decoder
	comp       string
	max        int
	noValidate bool
	first      bool   // no line read yet: a BOM may follow
	buf        []byte // a line that spans buffer refills
	err        error  // sticky: io.EOF or a fatal error
	st         Stats
}

// source counts the bytes read from the underlying reader and makes its
// first error sticky, so that bufio never reads past an EOF or an error.
type source struct {
	r   io.Reader
	n   int64
	err error
}

func (s *source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil {
		s.err = err
	}
	return n, err
}

// NewReader returns a Reader of r. It looks at the first bytes of r: a gzip
// (1f 8b) or zstd (28 b5 2f fd) magic number makes it decompress r
// transparently. It returns an error only if the compressed stream's header
// is broken or reading it fails. It reads no more than needed to decide: an
// uncompressed stream whose first byte is neither 1f nor 28 is not waited on.
func NewReader(r io.Reader, opt Options) (*Reader, error) {
	max := opt.MaxLine
	if max <= 0 {
		max = DefaultMaxLine
	}
	size := opt.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	rd := &Reader{src: &source{r: r}, max: max, first: true, noValidate: opt.NoValidate}
	raw := bufio.NewReaderSize(rd.src, size)
	comp, err := sniff(raw)
	if err != nil {
		return nil, err
	}
	rd.comp = comp
	switch comp {
	case "gzip":
		zr, err := gzip.NewReader(raw) // multistream by default
		if err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
		rd.br = bufio.NewReaderSize(zr, size)
	case "zstd":
		zr, err := zstd.NewReader(raw,
			zstd.WithDecoderConcurrency(1), // synchronous: no goroutines, no read-ahead
			zstd.WithDecoderMaxWindow(MaxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		rd.zstd = zr
		rd.br = bufio.NewReaderSize(zr, size)
		// The decoder reads the frame header lazily; read it (and the first
		// block) now so that a broken header is reported here as for gzip.
		if _, err := rd.br.Peek(1); err != nil && err != io.EOF {
			zr.Close()
			return nil, fmt.Errorf("zstd header: %w", err)
		}
	default:
		rd.br = raw
	}
	return rd, nil
}

// sniff reports the compression of the stream in br from its magic number,
// peeking one byte at a time so as never to wait for bytes that are not
// needed.
func sniff(br *bufio.Reader) (string, error) {
	var magic []byte
	var name string
	b, err := br.Peek(1)
	switch {
	case len(b) == 0:
		if err == io.EOF {
			return "", nil
		}
		return "", err
	case b[0] == 0x1f:
		magic, name = []byte{0x1f, 0x8b}, "gzip"
	case b[0] == 0x28:
		magic, name = []byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"
	default:
		return "", nil
	}
	for n := 2; n <= len(magic); n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if err == io.EOF {
				return "", nil // too short to be compressed: plain bytes
			}
			return "", err
		}
		if b[n-1] != magic[n-1] {
			return "", nil
		}
	}
	return name, nil
}

// Compression returns "gzip" or "zstd" for a compressed input, else "".
func (r *Reader) Compression() string { return r.comp }

// Stats returns the counters so far.
func (r *Reader) Stats() Stats {
	st := r.st
	st.RawBytes = r.src.n
	return st
}

// Close releases the decompressor's resources. It does not close the
// underlying reader. Next returns an error after Close.
func (r *Reader) Close() error {
	if r.zstd != nil {
		r.zstd.Close()
		r.zstd = nil
	}
	if r.err == nil || r.err == io.EOF {
		r.err = errClosed
	}
	return nil
}

// Next returns the next non-blank line. At the end of the input it returns
// io.EOF. A problem with one line is a *LineError, possibly returned together
// with the line (ErrTruncated, ErrInvalidUTF8, ErrNUL; for ErrTooLong only
// Line.Num is set); Next may be called again after it. Any other error (I/O,
// corrupt compressed data) is fatal and returned again by every later call.
func (r *Reader) Next() (Line, error) {
	if r.err != nil {
		return Line{}, r.err
	}
	if cap(r.buf) > maxKept {
		r.buf = nil // the last line was long: do not pin its memory
	}
	for {
		b, size, eol, err := r.readLine()
		if err != nil {
			r.err = err
			return Line{}, err
		}
		r.st.Lines++
		num := r.st.Lines
		if size > int64(r.max) {
			r.st.TooLong++
			return Line{Num: num}, &LineError{Num: num, Kind: ErrTooLong, Len: size, Max: int64(r.max)}
		}
		if isBlank(b) {
			r.st.Blank++
			continue
		}
		// Cap the slice at its length, so that a caller appending to it gets
		// a copy instead of overwriting the next lines in the buffer.
		line := Line{Bytes: b[:len(b):len(b)], Num: num}
		if !eol {
			r.st.Truncated++
			return line, &LineError{Num: num, Kind: ErrTruncated}
		}
		if r.noValidate {
			return line, nil
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			r.st.NUL++
			return line, &LineError{Num: num, Kind: ErrNUL, Col: int64(i) + 1}
		}
		if !utf8.Valid(b) {
			r.st.InvalidUTF8++
			return line, &LineError{Num: num, Kind: ErrInvalidUTF8, Col: int64(invalidUTF8At(b)) + 1}
		}
		return line, nil
	}
}

// readLine reads one physical line. It returns the line without its
// terminator, its length and whether it ended with '\n' (false: at EOF).
// When size exceeds MaxLine, b is to be ignored. err is io.EOF when no byte
// was left, or a fatal error.
func (r *Reader) readLine() (b []byte, size int64, eol bool, err error) {
	chunk, err := r.br.ReadSlice('\n')
	r.st.Bytes += int64(len(chunk))
	if r.first {
		r.first = false
		chunk = bytes.TrimPrefix(chunk, bom)
	}
	switch err {
	case nil:
		b = chunk[:len(chunk)-1]
		eol = true
	case io.EOF:
		if len(chunk) == 0 {
			return nil, 0, false, io.EOF
		}
		b = chunk
	case bufio.ErrBufferFull:
		return r.readLong(chunk)
	default:
		return nil, 0, false, err
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b, int64(len(b)), eol, nil
}

// readLong finishes reading a line that does not fit in the read buffer,
// whose first chunk is given. The line is copied into r.buf as long as it
// may still be within MaxLine; past that, the rest is counted and dropped.
func (r *Reader) readLong(chunk []byte) ([]byte, int64, bool, error) {
	limit := int64(r.max) + 1 // room for a '\r' before the '\n'
	size := int64(len(chunk))
	last := chunk[len(chunk)-1] // a full buffer is never empty
	keep := size <= limit
	r.buf = r.buf[:0]
	if keep {
		r.keep(chunk, limit)
	}
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.st.Bytes += int64(len(chunk))
		eol := err == nil
		if eol {
			chunk = chunk[:len(chunk)-1]
		}
		if len(chunk) > 0 {
			last = chunk[len(chunk)-1]
		}
		size += int64(len(chunk))
		if keep {
			if size > limit {
				keep = false
				r.buf = r.buf[:0]
			} else {
				r.keep(chunk, limit)
			}
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil, io.EOF:
			if last == '\r' {
				size--
				if keep {
					r.buf = r.buf[:len(r.buf)-1]
				}
			}
			if !keep {
				return nil, size, eol, nil
			}
			return r.buf, size, eol, nil
		default:
			return nil, 0, false, err
		}
	}
}

// keep appends chunk to r.buf, growing it geometrically but never beyond
// limit bytes, the most it ever has to hold.
func (r *Reader) keep(chunk []byte, limit int64) {
	n := len(r.buf) + len(chunk)
	if n > cap(r.buf) {
		c := int64(max(2*cap(r.buf), n, 4096))
		c = min(c, max(limit, int64(n)))
		nb := make([]byte, len(r.buf), c)
		copy(nb, r.buf)
		r.buf = nb
	}
	r.buf = append(r.buf, chunk...)
}

// isBlank reports whether b holds only spaces, tabs and carriage returns.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// invalidUTF8At returns the offset of the first byte of b that does not
// start a valid UTF-8 sequence, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		c, n := utf8.DecodeRune(b[i:])
		if c == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// Buffered returns how many bytes of (decompressed) input are already read
// and waiting. Zero means the next call to Next may have to wait for the
// source: stages flush their output then, so that the next stage sees the
// records without delay while input is idle.
func (r *Reader) Buffered() int { return r.br.Buffered() }
