package ndjson

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// fuzzOptions are the configurations every fuzz input is read with: a
// roomy buffer, and tiny ones so that lines span refills and hit MaxLine
// both inside one buffer and across several.
var fuzzOptions = []Options{
	{BufferSize: 4096},
	{BufferSize: 16, MaxLine: 24},
	{BufferSize: 32, MaxLine: 8},
}

// FuzzReader checks that the Reader never panics, gives the same result
// every time and however its input is chunked, never returns a '\n' inside
// a line, and agrees line by line with refSplit, a plain reference splitter.
// The seed corpus is in testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, refOK := refDecompress(data)
		for _, opt := range fuzzOptions {
			got1, err1 := fuzzRead(t, bytes.NewReader(data), opt)
			got2, err2 := fuzzRead(t, bytes.NewReader(data), opt)
			if !equal(got1, got2) || fmt.Sprint(err1) != fmt.Sprint(err2) {
				t.Fatalf("%+v: not stable:\n%v %v\n%v %v", opt, got1, err1, got2, err2)
			}
			got3, err3 := fuzzRead(t, iotest.OneByteReader(bytes.NewReader(data)), opt)
			if !equal(got1, got3) || fmt.Sprint(err1) != fmt.Sprint(err3) {
				t.Fatalf("%+v: depends on chunking:\n%v %v\n%v %v", opt, got1, err1, got3, err3)
			}
			if !refOK {
				if err1 == io.EOF {
					t.Fatalf("%+v: reference decompressor failed but the Reader read to EOF: %v", opt, got1)
				}
				continue
			}
			if err1 != io.EOF {
				t.Fatalf("%+v: final error %v, want io.EOF (the reference decompressed it)", opt, err1)
			}
			want := refSplit(plain, opt.MaxLine)
			if !equal(got1, want) {
				t.Fatalf("%+v: input %q\n got %v\nwant %v", opt, plain, got1, want)
			}
			// The good lines, joined, are what the reference keeps.
			if g, w := joinGood(got1), joinGood(want); !bytes.Equal(g, w) {
				t.Fatalf("%+v: good lines differ:\n got %q\nwant %q", opt, g, w)
			}
		}
	})
}

// fuzzRead reads src to the end and checks the invariants that hold for any
// input. It returns the lines and the final error (io.EOF or fatal, or the
// NewReader error).
func fuzzRead(t *testing.T, src io.Reader, opt Options) ([]got, error) {
	r, err := NewReader(src, opt)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	max := opt.MaxLine
	if max == 0 {
		max = DefaultMaxLine
	}
	var out []got
	var last int64
	for {
		line, err := r.Next()
		var le *LineError
		if err != nil && !errors.As(err, &le) {
			if _, err2 := r.Next(); err2 != err {
				t.Fatalf("error %v not sticky: then %v", err, err2)
			}
			st := r.Stats()
			if st.Lines < last {
				t.Fatalf("Stats.Lines %d < last line number %d", st.Lines, last)
			}
			return out, err
		}
		if line.Num <= last {
			t.Fatalf("line number %d after %d", line.Num, last)
		}
		last = line.Num
		if bytes.IndexByte(line.Bytes, '\n') >= 0 {
			t.Fatalf("line %d contains a newline: %q", line.Num, line.Bytes)
		}
		if len(line.Bytes) > max {
			t.Fatalf("line %d is %d bytes > MaxLine %d", line.Num, len(line.Bytes), max)
		}
		g := got{Num: line.Num, Bytes: string(line.Bytes), Nil: line.Bytes == nil}
		if le != nil {
			if le.Num != line.Num {
				t.Fatalf("LineError.Num %d != Line.Num %d", le.Num, line.Num)
			}
			g.Kind, g.Col, g.Len = le.Kind, le.Col, le.Len
		} else if isBlank(line.Bytes) || !utf8.Valid(line.Bytes) || bytes.IndexByte(line.Bytes, 0) >= 0 {
			t.Fatalf("line %d returned without error: %q", line.Num, line.Bytes)
		}
		out = append(out, g)
	}
}

// refDecompress undoes the compression NewReader would detect, with the
// standard library's gzip (an independent implementation) and zstd's
// one-shot decoder. ok is false if the reference decoder fails.
func refDecompress(data []byte) (plain []byte, ok bool) {
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		zr, err := stdgzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, false
		}
		plain, err := io.ReadAll(zr)
		return plain, err == nil
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			panic(err)
		}
		defer d.Close()
		plain, err := d.DecodeAll(data, nil)
		return plain, err == nil
	}
	return data, true
}

// refSplit is the reference: the documented rules applied with
// bytes.Split to a whole input held in memory.
func refSplit(data []byte, max int) []got {
	if max == 0 {
		max = DefaultMaxLine
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	if len(data) == 0 {
		return nil
	}
	parts := bytes.Split(data, []byte("\n"))
	terminated := data[len(data)-1] == '\n'
	if terminated {
		parts = parts[:len(parts)-1]
	}
	var out []got
	for i, p := range parts {
		num := int64(i + 1)
		eol := terminated || i < len(parts)-1
		p = bytes.TrimSuffix(p, []byte("\r"))
		switch {
		case len(p) > max:
			out = append(out, got{Num: num, Nil: true, Kind: ErrTooLong, Len: int64(len(p))})
		case len(bytes.Trim(p, " \t\r")) == 0:
			// blank
		case !eol:
			out = append(out, got{Num: num, Bytes: string(p), Kind: ErrTruncated})
		case bytes.IndexByte(p, 0) >= 0:
			out = append(out, got{Num: num, Bytes: string(p), Kind: ErrNUL, Col: int64(bytes.IndexByte(p, 0)) + 1})
		case !utf8.Valid(p):
			col := 0
			for col < len(p) {
				r, n := utf8.DecodeRune(p[col:])
				if r == utf8.RuneError && n == 1 {
					break
				}
				col += n
			}
			out = append(out, got{Num: num, Bytes: string(p), Kind: ErrInvalidUTF8, Col: int64(col) + 1})
		default:
			out = append(out, got{Num: num, Bytes: string(p)})
		}
	}
	return out
}

func joinGood(lines []got) []byte {
	var b []byte
	for _, l := range lines {
		if l.Kind == nil {
			b = append(b, l.Bytes...)
			b = append(b, '\n')
		}
	}
	return b
}
