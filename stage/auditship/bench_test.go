package auditship

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/stage/auditbatch"
)

// benchShip runs audit-ship --kind file (no fsync, no gzip) over in, a
// fresh archive each time, and reports records per second.
func benchShip(b *testing.B, in []byte, n int) {
	dir := b.TempDir()
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	start, cpu0, i := time.Now(), cpuTime(), 0
	for b.Loop() {
		i++
		args := []string{"--kind", "file", "--path", filepath.Join(dir, fmt.Sprint(i)), "--no-fsync", "--gzip=false", "--acks", "-", "--quiet"}
		if err := Run(context.Background(), args, bytes.NewReader(in), io.Discard, io.Discard); err != nil {
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

// BenchmarkShipPlain is audit-ship batching plain record lines itself
// (the in-process batcher) into a file.
func BenchmarkShipPlain(b *testing.B) {
	const n = 20_000
	benchShip(b, ndjsonOf(makeChain(b, n, 1_700_000_000_000, "acme", "globex")), n)
}

// BenchmarkShipFramed is audit-ship reading audit-batch's framing into a
// file.
func BenchmarkShipFramed(b *testing.B) {
	const n = 20_000
	var in bytes.Buffer
	if err := auditbatch.Run(context.Background(), []string{"--siem", "file", "--quiet"},
		bytes.NewReader(ndjsonOf(makeChain(b, n, 1_700_000_000_000, "acme", "globex"))), &in, io.Discard); err != nil {
		b.Fatal(err)
	}
	benchShip(b, in.Bytes(), n)
}
