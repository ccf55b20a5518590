package ndjson

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// benchLines returns n distinct record lines of about 500 bytes each,
// newline-terminated, as the stages see them.
func benchLines(n int) []byte {
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		start := buf.Len()
		fmt.Fprintf(&buf, `{"seq":%d,"prevHash":"%064x","recordHash":"%064x","record":{"ts":%d,"actor":"user-%d@example.com","action":"tool.call","tool":"fs.write","target":"/srv/data/reports/%d/summary.json","outcome":"ok","note":"résumé ✓","args":{"bytes":%d,"mode":"0644"},"pad":"`,
			i+1, i*7919, i*104729, 1700000000000+i, i%97, i, i*31)
		for buf.Len()-start < 497 {
			buf.WriteByte('a' + byte(buf.Len()%26))
		}
		buf.WriteString("\"}}\n")
	}
	return buf.Bytes()
}

// report adds lines/s and MB/s (wall clock), and lines per second of CPU
// time (cpu-lines/s), which the load of a shared machine distorts less.
// cpu0 is cpuTime() at the start of the timed loop.
func report(b *testing.B, lines int, bytes int64, cpu0 time.Duration) {
	s := max(b.Elapsed().Seconds(), 1e-9)
	b.ReportMetric(float64(lines)/s, "lines/s")
	b.ReportMetric(float64(bytes)/s/1e6, "MB/s")
	if c := (cpuTime() - cpu0).Seconds(); c > 0 {
		b.ReportMetric(float64(lines)/c, "cpu-lines/s")
	}
}

func benchReader(b *testing.B, src io.Reader) {
	r, err := NewReader(src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var n int64
	for i := 0; i < b.N; i++ {
		line, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(line.Bytes)) + 1
	}
	b.StopTimer()
	report(b, b.N, n, cpu0)
}

// BenchmarkReader reads 500-byte lines from memory; one op is one line.
func BenchmarkReader(b *testing.B) {
	benchReader(b, &cycleReader{block: benchLines(2000)})
}

// BenchmarkReaderGzip reads the same lines from a gzip stream (level 1, one
// member per 2000 lines, the members concatenated endlessly).
func BenchmarkReaderGzip(b *testing.B) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(benchLines(2000))
	zw.Close()
	benchReader(b, &cycleReader{block: buf.Bytes()})
}

// BenchmarkReaderZstd: as BenchmarkReaderGzip with zstd frames.
func BenchmarkReaderZstd(b *testing.B) {
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	zw.Write(benchLines(2000))
	zw.Close()
	benchReader(b, &cycleReader{block: buf.Bytes()})
}

// BenchmarkBaselineReadSlice is bufio.ReadSlice alone over the same input:
// the floor the Reader's own work (CR, blank, NUL and UTF-8 checks) adds to.
func BenchmarkBaselineReadSlice(b *testing.B) {
	br := bufio.NewReaderSize(&cycleReader{block: benchLines(2000)}, DefaultBufferSize)
	b.ResetTimer()
	cpu0 := cpuTime()
	var n int64
	for i := 0; i < b.N; i++ {
		line, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(line))
	}
	b.StopTimer()
	report(b, b.N, n, cpu0)
}

// BenchmarkValidate is the per-line check: a NUL search and utf8.Valid.
func BenchmarkValidate(b *testing.B) {
	line := bytes.TrimSuffix(benchLines(1), []byte("\n"))
	b.SetBytes(int64(len(line)))
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if bytes.IndexByte(line, 0) >= 0 || !utf8.Valid(line) {
			b.Fatal("invalid")
		}
	}
	report(b, b.N, int64(b.N*len(line)), cpu0)
}

// BenchmarkWriter writes 500-byte lines to io.Discard; one op is one line.
func BenchmarkWriter(b *testing.B) {
	lines := bytes.Split(bytes.TrimSuffix(benchLines(100), []byte("\n")), []byte("\n"))
	w := NewWriter(io.Discard, 0)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var n int64
	for i := 0; i < b.N; i++ {
		l := lines[i%len(lines)]
		if err := w.Write(l); err != nil {
			b.Fatal(err)
		}
		n += int64(len(l)) + 1
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	report(b, b.N, n, cpu0)
}
