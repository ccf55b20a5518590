package auditverify_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/metricstest"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// records returns n chained record lines, as audit-read writes them.
func records(t *testing.T, n int) []string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, out, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n)}, nil, &events, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditread.Run(ctx, []string{"--db", db, "--quiet"}, nil, &out, &stderr); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(out.String(), "\n")
	return lines[:len(lines)-1] // after the last "\n"
}

// In report mode every break is counted by reason; the other reasons'
// series exist at 0.
func TestMetricsBreaksByReason(t *testing.T) {
	lines := records(t, 100)
	// Delete seq 50: one gap (and the link of 51 is then unchecked).
	in := strings.Join(append(append([]string{}, lines[:49]...), lines[50:]...), "")
	file := filepath.Join(t.TempDir(), "verify.prom")
	var stdout, stderr bytes.Buffer
	err := auditverify.Run(context.Background(), []string{"--mode", "report", "--metrics-file", file, "--metrics-exporter", "elastic:eu", "--quiet"},
		strings.NewReader(in), &stdout, &stderr)
	if exitcode.Of(err) != exitcode.Verify {
		t.Fatalf("Run = %v, want exit 3\n%s", err, stderr.String())
	}
	f, err := metricstest.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ls := []string{"exporter=elastic:eu", "vendor=elastic", "binary=audit-verify"}
	if v := f.Get(metrics.NameVerifyBreaks, append(ls, "reason=seq_gap")...); v != 1 {
		t.Errorf("seq_gap breaks = %v, want 1; series %v", v, f.Labels(metrics.NameVerifyBreaks))
	}
	for _, r := range []string{"hash_mismatch", "prev_link", "equivocation", "duplicate", "tombstone"} {
		if v, ok := f.Value(metrics.NameVerifyBreaks, append(ls, "reason="+r)...); !ok || v != 0 {
			t.Errorf("%s breaks = %v (present %v), want a series at 0", r, v, ok)
		}
	}
	if v := f.Get(metrics.NameRecordsIn, ls...); v != 99 {
		t.Errorf("records in = %v, want 99", v)
	}
	if v := f.Get(metrics.NameRecordsOut, ls...); v != 99 {
		t.Errorf("records out = %v, want 99 (report mode passes intact records)", v)
	}
	if v := f.Get(metrics.NameStageLastSeq, ls...); v != 100 {
		t.Errorf("last seq out = %v, want 100", v)
	}
	if v := f.Get(metrics.NameBytesOut, ls...); v != float64(stdout.Len()-99) {
		t.Errorf("bytes out = %v, want %d", v, stdout.Len()-99)
	}
}

// tamper changes the first hex digit of a line's prevHash.
func tamper(line string) string {
	i := strings.Index(line, `"prevHash":"`) + len(`"prevHash":"`)
	c := "0"
	if line[i] == '0' {
		c = "1"
	}
	return line[:i] + c + line[i+1:]
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A fail-closed audit-verify exits at the first break; --metrics-linger
// keeps /metrics up long enough for the break to be scraped.
func TestMetricsBreakScrapedBeforeExit(t *testing.T) {
	lines := records(t, 20)
	lines[9] = tamper(lines[9]) // seq 10's link
	var stderr syncBuf
	done := make(chan error, 1)
	go func() {
		done <- auditverify.Run(context.Background(), []string{"--metrics-listen", "127.0.0.1:0", "--metrics-linger", "1500ms", "--quiet"},
			strings.NewReader(strings.Join(lines, "")), io.Discard, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if addr := metricstest.Addr(stderr.String()); addr != "" {
			f, err := metricstest.Scrape("http://" + addr + "/metrics")
			if err == nil && f.Get(metrics.NameVerifyBreaks, "reason=hash_mismatch")+f.Get(metrics.NameVerifyBreaks, "reason=prev_link") > 0 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("audit-verify exited (%v) before its break was scraped\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no break scraped\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; exitcode.Of(err) != exitcode.Verify {
		t.Fatalf("Run = %v, want exit 3", err)
	}
}
