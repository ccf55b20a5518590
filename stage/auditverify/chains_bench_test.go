package auditverify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// benchStream is `total` records in `chains` chains, interleaved in runs
// of `run` records behind chain marks (as audit-consume writes them),
// records of about 500 bytes.
func benchStream(chains, total, run int) string {
	per := total / chains
	lines := make([][]string, chains)
	ids := make([]string, chains)
	pad := strings.Repeat("x", 380)
	for c := range chains {
		prev := ""
		for i := 1; i <= per; i++ {
			rec := fmt.Sprintf(`{"actor":"agent:h%d","kind":"tool_call","n":%d,"note":"%s","tenantId":"acme","ts":%d}`, c, i, pad, 1764244800000+int64(i))
			s := sha256.Sum256([]byte(prev + "\n" + rec))
			h := hex.EncodeToString(s[:])
			lines[c] = append(lines[c], fmt.Sprintf(`{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":%s,"prevHash":%q,"recordHash":%q}`, i, 1764244800000+int64(i), rec, prev, h))
			if i == 1 {
				ids[c] = h
			}
			prev = h
		}
	}
	var b strings.Builder
	for i := 0; i < per; i += run {
		for c := range chains {
			b.Write(chain.AppendChainMark(nil, ids[c], nil))
			b.WriteByte('\n')
			for j := i; j < i+run && j < per; j++ {
				b.WriteString(lines[c][j])
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// BenchmarkManyChains: audit-verify on 100 interleaved chains beside one
// chain, the same 100000 records (runs of 10 records per chain mark, as a
// consumer's fetches give them), in the same invocation; reports both
// rates and their ratio (100 chains / 1 chain).
//
//	go test ./stage/auditverify -run XXX -bench ManyChains -benchtime 3x
func BenchmarkManyChains(b *testing.B) {
	const total = 100000
	one := benchStream(1, total, 10)
	many := benchStream(100, total, 10)
	run := func(in string) time.Duration {
		t0 := time.Now()
		if err := auditverify.Run(context.Background(), []string{"--quiet"}, strings.NewReader(in), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var d1, d100 time.Duration
	b.ResetTimer()
	for range b.N {
		d1 += run(one)
		d100 += run(many)
	}
	r1 := float64(total*b.N) / d1.Seconds()
	r100 := float64(total*b.N) / d100.Seconds()
	b.ReportMetric(r1, "rec/s-1chain")
	b.ReportMetric(r100, "rec/s-100chains")
	b.ReportMetric(r100/r1, "ratio")
}
