package ndjson

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

// recorder records every Write call it gets.
type recorder struct {
	bytes.Buffer
	calls int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.calls++
	return r.Buffer.Write(p)
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		ops       func(w *Writer) error
		want      string
		wantCalls int
	}{
		{"lines", 0, func(w *Writer) error {
			for _, l := range []string{`{"a":1}`, `{"b":2}`, ""} {
				if err := w.Write([]byte(l)); err != nil {
					return err
				}
			}
			return nil
		}, "{\"a\":1}\n{\"b\":2}\n\n", 1},
		{"raw", 0, func(w *Writer) error {
			if err := w.WriteRaw([]byte("a\nb")); err != nil {
				return err
			}
			return w.WriteRaw([]byte("c\n"))
		}, "a\nbc\n", 1},
		{"fills buffer exactly", 8, func(w *Writer) error {
			if err := w.Write([]byte("1234567")); err != nil { // 8 bytes with '\n'
				return err
			}
			return w.Write([]byte("abc"))
		}, "1234567\nabc\n", 2},
		{"line larger than buffer written through", 8, func(w *Writer) error {
			if err := w.Write([]byte("ab")); err != nil {
				return err
			}
			if err := w.Write([]byte(strings.Repeat("x", 20))); err != nil {
				return err
			}
			return w.Write([]byte("cd"))
		}, "ab\n" + strings.Repeat("x", 20) + "\ncd\n", 3},
		{"raw larger than buffer written through", 8, func(w *Writer) error {
			if err := w.WriteRaw([]byte("ab")); err != nil {
				return err
			}
			return w.WriteRaw([]byte(strings.Repeat("y", 9) + "\n"))
		}, "ab" + strings.Repeat("y", 9) + "\n", 2},
		{"line of exactly buffer size", 8, func(w *Writer) error {
			return w.Write([]byte("12345678"))
		}, "12345678\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			w := NewWriter(&rec, tt.size)
			if err := tt.ops(w); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if w.Buffered() != 0 {
				t.Errorf("Buffered() = %d after Flush", w.Buffered())
			}
			if rec.String() != tt.want {
				t.Errorf("wrote %q, want %q", rec.String(), tt.want)
			}
			if rec.calls != tt.wantCalls {
				t.Errorf("%d writes to the underlying writer, want %d", rec.calls, tt.wantCalls)
			}
		})
	}
}

func TestWriterBuffers(t *testing.T) {
	var rec recorder
	w := NewWriter(&rec, 0)
	for i := 0; i < 1000; i++ {
		if err := w.Write([]byte(`{"seq":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	if rec.calls != 0 || w.Buffered() != 10000 {
		t.Errorf("before Flush: %d writes, %d buffered; want 0, 10000", rec.calls, w.Buffered())
	}
	if err := w.Flush(); err != nil || rec.calls != 1 || rec.Len() != 10000 {
		t.Errorf("Flush: %v, %d writes, %d bytes", err, rec.calls, rec.Len())
	}
	if err := w.Flush(); err != nil || rec.calls != 1 {
		t.Errorf("empty Flush: %v, %d writes", err, rec.calls)
	}
	line := []byte(`{"seq":1}`)
	if allocs := testing.AllocsPerRun(1000, func() { w.Write(line) }); allocs != 0 {
		t.Errorf("%v allocations per Write", allocs)
	}
}

// failWriter accepts n bytes, then fails.
type failWriter struct {
	n   int
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return len(p), nil
	}
	n := f.n
	f.n = 0
	return n, f.err
}

// shortWriter writes half and reports no error, which breaks io.Writer's
// contract; the Writer reports io.ErrShortWrite.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWriterErrorIsSticky(t *testing.T) {
	enospc := syscall.ENOSPC
	tests := []struct {
		name string
		w    io.Writer
		want error
	}{
		{"fails at once", &failWriter{err: enospc}, enospc},
		{"fails midway", &failWriter{n: 5, err: enospc}, enospc},
		{"short write", shortWriter{}, io.ErrShortWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter(tt.w, 16)
			if err := w.Write([]byte("0123456789")); err != nil {
				t.Fatalf("buffered Write failed: %v", err)
			}
			err := w.Flush()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Flush = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "write: ") {
				t.Errorf("error %q not wrapped as write: ...", err)
			}
			if w.Buffered() == 0 || w.Buffered() > 11 {
				t.Errorf("Buffered() = %d, want the unwritten bytes", w.Buffered())
			}
			for name, call := range map[string]func() error{
				"Write":    func() error { return w.Write([]byte("x")) },
				"WriteRaw": func() error { return w.WriteRaw([]byte("x\n")) },
				"Flush":    w.Flush,
				"big":      func() error { return w.Write(make([]byte, 100)) },
			} {
				if err2 := call(); err2 != err {
					t.Errorf("%s after failure = %v, want the first error %v", name, err2, err)
				}
			}
		})
	}
	// A write-through of a big line fails the same way.
	w := NewWriter(&failWriter{err: enospc}, 4)
	if err := w.Write(make([]byte, 10)); !errors.Is(err, enospc) {
		t.Errorf("big Write = %v, want ENOSPC", err)
	}
}

// Writing into a pipe whose reader has gone gives EPIPE (for a descriptor
// other than 1 and 2 the Go runtime does not raise SIGPIPE).
func TestWriterEPIPE(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	pr.Close()
	w := NewWriter(pw, 0)
	if err := w.Write([]byte(`{"seq":1}`)); err != nil {
		t.Fatalf("buffered Write: %v", err)
	}
	err = w.Flush()
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Flush = %v, want EPIPE", err)
	}
	if err2 := w.Write([]byte("x")); err2 != err {
		t.Errorf("Write after EPIPE = %v", err2)
	}
}
