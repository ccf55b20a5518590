package ndjson

import (
	"errors"
	"fmt"
)

// The kinds of *LineError. Test for them with errors.Is.
var (
	// ErrTooLong: the line is longer than Options.MaxLine. Its bytes were
	// discarded without being held in memory.
	ErrTooLong = errors.New("line too long")
	// ErrTruncated: the last line of the input has no terminating newline. The
	// writer most likely died mid-line; the bytes are returned for reporting
	// but must not be treated as a record.
	ErrTruncated = errors.New("truncated record")
	// ErrInvalidUTF8: the line is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrNUL: the line contains a NUL byte.
	ErrNUL = errors.New("NUL byte")
)

// LineError is a problem with one input line. After a *LineError the Reader
// is positioned on the next line and Next may be called again.
type LineError struct {
	Num  int64 // 1-based physical line number
	Kind error // ErrTooLong, ErrTruncated, ErrInvalidUTF8 or ErrNUL
	Col  int64 // 1-based byte column in Line.Bytes (ErrInvalidUTF8, ErrNUL), else 0
	Len  int64 // ErrTooLong: the full length of the line seen, without its terminator
	Max  int64 // ErrTooLong: the limit in force (Options.MaxLine)
}

// Error returns, for example, "line 17: line too long (5242880 bytes > max
// 4194304); raise --max-line", "line 9: truncated record (no newline at end of
// input)", "line 3: invalid UTF-8 at byte 41" or "line 4: NUL byte at byte 7".
func (e *LineError) Error() string {
	switch e.Kind {
	case ErrTooLong:
		return fmt.Sprintf("line %d: %v (%d bytes > max %d); raise --max-line", e.Num, e.Kind, e.Len, e.Max)
	case ErrTruncated:
		return fmt.Sprintf("line %d: %v (no newline at end of input)", e.Num, e.Kind)
	}
	if e.Col > 0 {
		return fmt.Sprintf("line %d: %v at byte %d", e.Num, e.Kind, e.Col)
	}
	return fmt.Sprintf("line %d: %v", e.Num, e.Kind)
}

// Unwrap returns Kind, so that errors.Is(err, ErrTooLong) works.
func (e *LineError) Unwrap() error { return e.Kind }
