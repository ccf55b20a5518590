package ndjson

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

// TestDefaultMaxLineTakesLargeRecords: Declaragent puts no limit on a
// record; the default cap is far above any record seen (4 MiB + 1 byte
// stopped the pipeline for good before).
func TestDefaultMaxLineTakesLargeRecords(t *testing.T) {
	if DefaultMaxLine < 64<<20 {
		t.Fatalf("DefaultMaxLine = %d, want at least 64 MiB", DefaultMaxLine)
	}
	for _, size := range []int{4<<20 + 1, 5 << 20, 20<<20 + 7} {
		long := `{"pad":"` + strings.Repeat("x", size-10) + `"}`
		src := long + "\n{\"ok\":1}\n"
		r, err := NewReader(strings.NewReader(src), Options{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := r.Next()
		if err != nil || string(l.Bytes) != long {
			t.Fatalf("size %d: %v, %d bytes", size, err, len(l.Bytes))
		}
		if l, err = r.Next(); err != nil || string(l.Bytes) != `{"ok":1}` {
			t.Fatalf("after it: %q %v", l.Bytes, err)
		}
	}
}

// TestNormalLinesDoNotPayForMaxLine: reading ordinary 1 KB lines
// allocates the read buffer and nothing in proportion to the line cap.
func TestNormalLinesDoNotPayForMaxLine(t *testing.T) {
	line := `{"seq":1,"pad":"` + strings.Repeat("y", 1000) + `"}` + "\n"
	src := strings.Repeat(line, 10000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := NewReader(strings.NewReader(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	runtime.ReadMemStats(&after)
	if n != 10000 {
		t.Fatalf("%d lines", n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*DefaultBufferSize {
		t.Fatalf("TotalAlloc %d for 1 KB lines: more than the read buffer", alloc)
	}
}

// TestLongLineBufferReleased: the buffer a long line needed is let go once
// the caller moves on, so one 20 MiB record does not pin 20 MiB for the
// rest of the stream.
func TestLongLineBufferReleased(t *testing.T) {
	long := bytes.Repeat([]byte("z"), 20<<20)
	src := append(append(long, '\n'), "{}\n{}\n"...)
	r, err := NewReader(bytes.NewReader(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := r.Next(); err != nil || len(l.Bytes) != len(long) {
		t.Fatalf("%v %d", err, len(l.Bytes))
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if c := cap(r.buf); c > maxKept {
		t.Fatalf("after a short line the reader still holds %d bytes", c)
	}
}
