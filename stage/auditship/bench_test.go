package auditship

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/canon"
	"github.com/auditpipe/auditpipe/lib/chain"
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

// longChain is makeChain with record lines of about 750 bytes, the size
// of the default pipeline's benchmark records (audit-sample): a note of
// mixed text (escapes, non-ASCII) pads each record.
func longChain(b testing.TB, n int) []byte {
	b.Helper()
	words := []string{"refund", "customer", "threshold", "escalated", "resolved", "sep \u2028", "emoji 😀", `quote \" back \\`, "order", "invoice", "policy", "session"}
	var note strings.Builder
	for i := 0; note.Len() < 480; i++ {
		note.WriteString(words[(i*7)%len(words)])
		note.WriteByte(' ')
	}
	prev := ""
	var out bytes.Buffer
	tenants := []string{"acme", "globex", "initech"}
	for i := range n {
		seq, ts, tenant := int64(i+1), int64(1_700_000_000_000+i), tenants[i%len(tenants)]
		rec := fmt.Sprintf(`{"actor":"agent:orders","decision":"allow","detail":{"note":"%s","score":%d.5},"durationMs":%d,"kind":"channel_event","tenantId":%q,"ts":%d}`,
			note.String(), i%100, i%2000, tenant, ts)
		c, err := canon.Append(nil, []byte(rec))
		if err != nil {
			b.Fatalf("canonical %s: %v", rec, err)
		}
		hash := string(chain.AppendHexHash(nil, prev, c))
		fmt.Fprintf(&out, `{"seq":%d,"ts":%d,"tenantId":%q,"kind":"channel_event","record":%s,"prevHash":"%s","recordHash":"%s"}`+"\n",
			seq, ts, tenant, c, prev, hash)
		prev = hash
	}
	return out.Bytes()
}

// BenchmarkShipSplunk is audit-ship's default path: audit-batch --siem
// splunk framing in, gzip HEC events out to a receiver that reads each
// body and answers success, acks to a discarded stdout. Its B/op and
// allocs/op are audit-ship's per-run garbage (the receiver's own, a few
// KB per request, included); 20,000 records in batches of 500.
func BenchmarkShipSplunk(b *testing.B) {
	const n = 20_000
	var in bytes.Buffer
	if err := auditbatch.Run(context.Background(), []string{"--siem", "splunk", "--quiet"},
		bytes.NewReader(longChain(b, n)), &in, io.Discard); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		mu.Unlock()
		io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer srv.Close()
	b.Setenv("BENCH_HEC_TOKEN", "bench")
	args := []string{"--kind", "splunk", "--url", srv.URL, "--token", "env:BENCH_HEC_TOKEN", "--exporter", "splunk:bench", "--acks", "-", "--quiet"}
	b.SetBytes(int64(in.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		if err := Run(context.Background(), args, bytes.NewReader(in.Bytes()), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	recs := float64(n) * float64(b.N)
	b.ReportMetric(recs/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(recs/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
}
