package auditverify_test

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/metricstest"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// erase turns a record line into Declaragent's tombstone of it: the record
// replaced, the hashes kept.
func erase(line string) string {
	return regexp.MustCompile(`"record":\{.*\},"prevHash"`).ReplaceAllString(line,
		`"record":{"erasedAt":1764300000000,"kind":"erased","originalKind":"tool_call","reason":"gdpr","tenantId":"acme"},"prevHash"`)
}

// Issue 12 item 3c: in follow mode (the input stays open) a finding is
// logged and counted when it happens: a tombstone at seq 110 followed by
// 210 good rows was neither, until exit, so the tombstone alert could never
// fire. Also a finding at the quiet head (nothing after it yet).
func TestFindingsReportedWhileInputOpen(t *testing.T) {
	lines := records(t, 320)
	lines[109] = erase(lines[109])
	for _, tc := range []struct {
		name string
		in   []string
	}{
		{"tombstone then 210 good rows", lines},
		{"tombstone at the head of a quiet log", lines[:110]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stderr syncBuf
			done := make(chan error, 1)
			go func() {
				done <- auditverify.Run(ctx, []string{"--metrics-listen", "127.0.0.1:0"}, pr, io.Discard, &stderr)
			}()
			go pw.Write([]byte(strings.Join(tc.in, ""))) // and the input stays open
			deadline := time.Now().Add(5 * time.Second)
			for {
				logged := strings.Contains(stderr.String(), "notice tombstone: seq 110")
				counted := false
				if addr := metricstest.Addr(stderr.String()); addr != "" {
					f, err := metricstest.Scrape("http://" + addr + "/metrics")
					counted = err == nil && f.Get(metrics.NameVerifyBreaks, "reason=tombstone") == 1
				}
				if logged && counted {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("audit-verify exited (%v)\n%s", err, stderr.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("tombstone not logged (%v) and counted (%v) within 5 s while the input is open\n%s", logged, counted, stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			pw.Close()
			<-done
		})
	}
}
