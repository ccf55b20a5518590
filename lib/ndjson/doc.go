// Package ndjson reads and writes newline-delimited JSON as raw lines. It is
// the input and output layer of every auditpipe binary, so the rules below
// are how all of them treat their input.
//
//	r, err := ndjson.NewReader(os.Stdin, ndjson.Options{MaxLine: maxLine})
//	if err != nil { ... }              // broken gzip/zstd header
//	for {
//		line, err := r.Next()
//		var le *ndjson.LineError
//		switch {
//		case err == io.EOF:
//			return nil
//		case errors.As(err, &le):
//			// report le (it says "line N: ..."); line.Bytes may be set
//			continue
//		case err != nil:
//			return err                 // I/O error, corrupt compressed data
//		}
//		// use line.Bytes before the next call to Next
//	}
//
// # Input
//
// The Reader never parses JSON: it returns each line's bytes exactly as they
// are, so that stages can pass records through byte for byte. It does not
// check that a line is JSON; it does check the rules below.
//
// Compression. The first bytes of the input decide: 1f 8b is gzip, 28 b5 2f fd
// is zstd; the input is then decompressed transparently, and everything below
// applies to the decompressed bytes. Concatenated gzip members and zstd frames
// are read as one stream. Only one level is undone (a gzip of a gzip yields
// gzip bytes). NewReader fails if the compressed header is broken; corruption
// found later (a bad block, a checksum mismatch, a stream cut short, bytes
// after the last member that are not another member) is a fatal error from
// Next. A zstd window above 128 MiB is refused (MaxZstdWindow).
//
// Line numbers. Line.Num and LineError.Num are 1-based physical line numbers
// of the decompressed input: blank and faulty lines count.
//
// Terminators. A line ends with "\n". One "\r" right before it is dropped
// too, so CRLF input is read like LF input; the stages always write "\n".
//
// BOM. A UTF-8 byte order mark (EF BB BF) at the very start of the
// (decompressed) input is skipped; it is not part of line 1. A BOM anywhere
// else is ordinary bytes (and is valid UTF-8).
//
// Blank lines. A line that is empty or holds only spaces, tabs and "\r" is
// skipped and counted in Stats.Blank; Next does not return it, but it has a
// line number. This also holds for a whitespace-only last line without a
// newline.
//
// End of input. Next returns io.EOF at the end. An empty input (or one that
// is only a BOM) is just io.EOF. A final "\n" followed by nothing is the
// normal end. A last line without "\n" is a truncated record, the trace of a
// writer that died mid-line: Next returns the Line (bytes set, so that it can
// be reported) together with a *LineError of kind ErrTruncated, then io.EOF.
// It is never to be accepted as a record.
//
// Line length. A line longer than Options.MaxLine bytes (default 64 MiB; the
// terminator is not counted) gives a *LineError of kind ErrTooLong with Len
// set to the full length and a Line with Num set and Bytes nil. The rest of
// the line is read and discarded without being held in memory: whatever the
// input, the Reader holds at most MaxLine bytes of a line plus its read
// buffer (1 MiB; twice that, plus the decompressor's window, for compressed
// input). Nothing is allocated for MaxLine up front: a line that fits the
// read buffer is returned from it; a longer one grows a buffer of its own,
// dropped again (above 4 MiB) when the next line is read. A too-long line is reported as such even when it is also blank,
// or is the unterminated last line.
//
// Bytes. A line containing a NUL byte gives ErrNUL; else a line that is not
// valid UTF-8 gives ErrInvalidUTF8. Both come with the Line (bytes intact)
// and LineError.Col, the 1-based byte offset of the first offending byte in
// Line.Bytes. Each line gets at most one LineError, checked in this order:
// too long, truncated, NUL, invalid UTF-8.
//
// Errors. A *LineError concerns one line: the Reader is already positioned on
// the next one and the caller may go on calling Next. Any other error (an
// I/O error, corrupt compressed data) is fatal and is returned as it is, by
// this and every later call.
//
// Buffers. Line.Bytes is valid only until the next call to Next; copy it to
// keep it. Its capacity equals its length, so appending to it copies rather
// than overwriting input not yet read. A line that fits in the read buffer
// (Options.BufferSize, 1 MiB by default) is not copied at all; a longer one
// is copied once.
//
// Counters. Stats reports the physical lines read, the blank lines skipped,
// the count of each kind of LineError, the (decompressed) bytes consumed and
// the raw bytes read from the underlying reader.
//
// # Output
//
// Writer buffers lines (256 KiB by default) and writes each as its bytes
// plus "\n". Errors of the underlying writer, such as EPIPE when the next
// stage has gone or ENOSPC, are wrapped as "write: %w" (errors.Is sees
// syscall.EPIPE) and are sticky: once a write failed, every later call,
// Flush included, returns the same error. Call Flush before exiting and check
// its error.
//
// SetPipeSize enlarges a pipe's kernel buffer (Linux; best effort), which
// lets the stages of a pipeline run with fewer context switches.
package ndjson
