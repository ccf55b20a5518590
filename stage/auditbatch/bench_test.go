package auditbatch

import (
	"bytes"
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/batcher"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// benchInput is n record lines of 500 bytes.
func benchInput(n int) ([]byte, [][]byte) {
	in := []byte(recs(1_000_000, int64(1_000_000+n-1), 500))
	return in, bytes.Split(bytes.TrimSuffix(in, []byte("\n")), []byte("\n"))
}

// BenchmarkBatch is the whole stage, Run, on 500-byte record lines from
// memory to io.Discard with the default caps (500 records per batch).
func BenchmarkBatch(b *testing.B) {
	const n = 100_000
	in, _ := benchInput(n)
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		if err := Run(context.Background(), []string{"-quiet"}, bytes.NewReader(in), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	recs := float64(n) * float64(b.N)
	b.ReportMetric(recs/time.Since(start).Seconds(), "records/s")
	// Wall time swings with the machine's load; CPU time much less.
	b.ReportMetric(recs/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBatcherAdd is the batching alone: Add with the seq known.
func BenchmarkBatcherAdd(b *testing.B) {
	_, lines := benchInput(10_000)
	bt, err := batcher.NewBatcher(batcher.TextOut(ndjson.NewWriter(io.Discard, 0)), Limits{MaxCount: 500, MaxBytes: 800_000, MinInterval: 50 * time.Millisecond, MaxInterval: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(lines[0])))
	now := time.Now()
	i := 0
	start := time.Now()
	for b.Loop() {
		if err := bt.Add(now, lines[i], int64(i)); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(lines) {
			i = 0
			bt.Flush()
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

func BenchmarkRecordSeq(b *testing.B) {
	_, lines := benchInput(1)
	var p fastjson.Parser
	for b.Loop() {
		if _, err := batcher.RecordSeq(&p, lines[0]); err != nil {
			b.Fatal(err)
		}
	}
}
