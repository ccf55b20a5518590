// Package alerts drives each alert condition of the product page's table
// ("Metrics you should alert on", in Declaragent's audit-export documentation)
// with the real code, and checks that the metric the alert reads moves
// the way the rule in examples/prometheus/alerts.yml expects:
//
//	declaragent_audit_backpressure_paused_total                rate > 0 (the SIEM is slow)
//	declaragent_audit_export_failures_total{retryable="false"}  any increase (bad token), and export_paused = 1
//	declaragent_audit_batch_interval_ms                        stuck at the maximum under steady load
//	auditpipe_export_lag_records                               > 10k (head minus committed cursor)
//
// The rules' logic on those series is tested by promtool (tests/ops), and
// a real Prometheus scraping a real pipeline evaluates them (tests/ops).
package alerts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/internal/metricstest"
	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/auditdb"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/ship"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/splunk"
	"github.com/auditpipe/auditpipe/stage/auditack"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditbatch"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
)

// hashAt is the record_hash at seq in db: what a real ack carries, and
// what audit-ack checks before it moves the cursor.
func hashAt(t *testing.T, path string, seq int64) string {
	t.Helper()
	db, err := auditdb.OpenReader(context.Background(), path, auditdb.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, ok, err := db.RecordHashAt(context.Background(), seq)
	if err != nil || !ok {
		t.Fatalf("seq %d: %v %v", seq, ok, err)
	}
	return h
}

// newDB makes an audit database of n sample records of about size bytes.
func newDB(t *testing.T, n, size int) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n), "--size", strconv.Itoa(size)}, nil, &events, &stderr); err != nil {
		t.Fatalf("audit-sample: %v\n%s", err, stderr.String())
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatalf("audit-append: %v\n%s", err, stderr.String())
	}
	return db
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitAddr waits for a stage's "metrics at" line.
func waitAddr(t *testing.T, stderr *syncBuf) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if a := metricstest.Addr(stderr.String()); a != "" {
			return "http://" + a + "/metrics"
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics address on stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func scrape(t *testing.T, url string) metricstest.Families {
	t.Helper()
	f, err := metricstest.Scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Back-pressure: audit-read --follow writes into a pipe whose reader (the
// next stage, ultimately the SIEM) is slow. Its blocked writes are
// counted, the counter keeps rising while the reader stays slow (rate > 0:
// the alert's condition), and reading lags the head of the log.
func TestAlertBackpressureRate(t *testing.T) {
	db := newDB(t, 20000, 500) // about 10 MB: far more than the pipe and buffers hold
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	var stderr syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- auditread.Run(ctx, []string{"--db", db, "--follow", "--metrics-listen", "127.0.0.1:0", "--from-cursor", "splunk:prod", "--quiet"},
			nil, pw, &stderr)
		pw.Close()
	}()
	url := waitAddr(t, &stderr)
	// The slow consumer: nothing for half a second, then 64 KiB every 50 ms
	// (about 1.3 MB/s): each 256 KiB flush waits about 200 ms.
	stopSlow := make(chan struct{})
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		time.Sleep(500 * time.Millisecond)
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stopSlow:
				io.Copy(io.Discard, pr) // drain: let the stage stop
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := io.ReadFull(pr, buf); err != nil {
				return
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	f1 := scrape(t, url)
	time.Sleep(1500 * time.Millisecond)
	f2 := scrape(t, url)
	p1, p2 := f1.Get(metrics.NameBackpressurePaused), f2.Get(metrics.NameBackpressurePaused)
	s2 := f2.Get(metrics.NameBackpressureSeconds)
	head, read := f2.Get(metrics.NameLastSeq), f2.Get(metrics.NameStageLastSeq)
	t.Logf("paused %v -> %v (%.1fs blocked); head %v, read up to %v", p1, p2, s2, head, read)
	if p1 < 1 || p2 <= p1 {
		t.Errorf("%s went %v -> %v while the consumer was slow: want > 0 and rising (rate > 0)", metrics.NameBackpressurePaused, p1, p2)
	}
	if s2 < 0.5 {
		t.Errorf("%s = %v, want well above 0", metrics.NameBackpressureSeconds, s2)
	}
	if _, ok := f2.Value(metrics.NameBlockedSeconds, "exporter=splunk:prod"); !ok {
		t.Errorf("no %s", metrics.NameBlockedSeconds)
	}
	if head != 20000 || read >= head {
		t.Errorf("head %v, read up to %v: want head 20000 and reading held back behind it", head, read)
	}
	if got := f2.Labels(metrics.NameBackpressurePaused); len(got) != 1 || got[0] != "exporter=splunk:prod,vendor=splunk" {
		t.Errorf("labels %v", got)
	}
	close(stopSlow)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("audit-read: %v", err)
	}
	<-slowDone
}

const hecToken = "alerts-test-token"

// records makes n records with seqs from first.
func records(first int64, n int) []sink.Record {
	recs := make([]sink.Record, n)
	for i := range recs {
		seq := first + int64(i)
		line := []byte(fmt.Sprintf(`{"seq":%d,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{"n":%d},"prevHash":"","recordHash":"%064x"}`, seq, seq, seq))
		recs[i] = sink.Record{Seq: seq, TS: 1764244800123, TenantID: "acme", Kind: "tool_call", Hash: fmt.Sprintf("%064x", seq), Line: line, Raw: line}
	}
	return recs
}

type ackLog struct {
	mu   sync.Mutex
	acks []ack.Ack
}

func (a *ackLog) Ack(_ context.Context, ack ack.Ack) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acks = append(a.acks, ack)
	return nil
}
func (a *ackLog) Close(context.Context) error { return nil }

// runShip runs the real delivery engine with the real Splunk sink against
// hec, with token, on nb batches of 10 records, and returns the registry
// RegisterShip filled and the acks.
func runShip(t *testing.T, hec *hecfake.Server, token string, nb int) (*metrics.Set, *ship.Metrics, *ackLog, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := secret.NewSource(context.Background(), "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := splunk.New(splunk.Config{URL: hec.URL, Token: src})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := &ship.Metrics{}
	ms := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
	m.Register(ms)
	acks := &ackLog{}
	sh := ship.New(s, ship.Options{
		Exporter: "splunk:prod", Inflight: 2, PauseAfter: 3, Acks: acks, Metrics: m,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }, // no waiting in tests
	})
	in := make(chan *ship.Batch, nb)
	for i := 0; i < nb; i++ {
		in <- &ship.Batch{ID: int64(i + 1), Records: records(int64(i*10+1), 10)}
	}
	close(in)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = sh.Run(ctx, in)
	return ms, m, acks, err
}

func gather(t *testing.T, ms *metrics.Set) metricstest.Families {
	t.Helper()
	mfs, err := ms.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := metricstest.Families{}
	for _, mf := range mfs {
		f[mf.GetName()] = mf
	}
	return f
}

// A rejected token (HEC 403 code 4) is a permanent failure: the
// retryable="false" series steps up from 0, and after PauseAfter of them
// the shipper pauses itself (declaragent_audit_export_paused 1) without
// acking anything.
func TestAlertPermanentFailure(t *testing.T) {
	hec := hecfake.New(hecfake.Options{Tokens: []string{hecToken}})
	defer hec.Close()
	ms, _, acks, err := runShip(t, hec, "a-rotated-out-token", 4)
	if err == nil || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("Run = %v, want a self-pause", err)
	}
	f := gather(t, ms)
	ls := []string{"exporter=splunk:prod", "vendor=splunk"}
	if v := f.Get(metrics.NameExportFailures, append(ls, "retryable=false")...); v < 3 {
		t.Errorf(`failures{retryable="false"} = %v, want >= 3 (PauseAfter)`, v)
	}
	if v, ok := f.Value(metrics.NameExportFailures, append(ls, "retryable=true")...); !ok || v != 0 {
		t.Errorf(`failures{retryable="true"} = %v (present %v), want a series at 0`, v, ok)
	}
	if v := f.Get(metrics.NameExportFailuresByReason, append(ls, "reason=config")...); v < 3 {
		t.Errorf(`failures by reason{reason="config"} = %v, want >= 3`, v)
	}
	if v := f.Get(metrics.NameExportPaused, ls...); v != 1 {
		t.Errorf("export_paused = %v, want 1", v)
	}
	if v := f.Get(metrics.NameExportAcked, ls...); v != 0 || len(acks.acks) != 0 {
		t.Errorf("acked %v records, %d acks: a rejected token delivers nothing", v, len(acks.acks))
	}
	if hec.Counts().Event == 0 {
		t.Error("the fake HEC saw no request")
	}
}

// The healthy counterpart: a busy HEC (503 code 9, then fine) counts
// retryable failures only, delivers everything, and does not pause.
func TestAlertRetryableIsNotPermanent(t *testing.T) {
	var n int
	var mu sync.Mutex
	hec := hecfake.New(hecfake.Options{Tokens: []string{hecToken}, Fault: func(r *hecfake.Request) hecfake.Fault {
		mu.Lock()
		defer mu.Unlock()
		if r.Path == "/services/collector/event" {
			if n++; n <= 2 {
				return hecfake.Fault{Status: 503, Code: 9, Text: "Server is busy"}
			}
		}
		return hecfake.Fault{}
	}})
	defer hec.Close()
	ms, m, acks, err := runShip(t, hec, hecToken, 3)
	if err != nil {
		t.Fatal(err)
	}
	f := gather(t, ms)
	if v := f.Get(metrics.NameExportFailures, "retryable=false"); v != 0 {
		t.Errorf(`failures{retryable="false"} = %v, want 0`, v)
	}
	if v := f.Get(metrics.NameExportFailures, "retryable=true"); v != 2 {
		t.Errorf(`failures{retryable="true"} = %v, want 2`, v)
	}
	if v := f.Get(metrics.NameExportPaused); v != 0 {
		t.Errorf("export_paused = %v, want 0", v)
	}
	if v := f.Get(metrics.NameExportAcked); v != 30 || len(acks.acks) != 3 {
		t.Errorf("acked %v records in %d acks, want 30 in 3", v, len(acks.acks))
	}
	if v := f.Get(metrics.NameRetries, "reason=all"); v != float64(m.Retries.Load()) || v != 2 {
		t.Errorf("retries = %v, want 2", v)
	}
	if v := f.Get(metrics.NameShipLastAckedSeq); v != 30 {
		t.Errorf("last acked seq = %v, want 30", v)
	}
}

// Steady load faster than batches fill widens the interval to its maximum
// and keeps it there (the "stuck at max" condition); when the input goes
// quiet it collapses again.
func TestAlertBatchIntervalStuckAtMax(t *testing.T) {
	pr, pw := io.Pipe()
	var stderr syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- auditbatch.RunWith(ctx, []string{"--max-count", "10", "--min-interval", "100ms", "--max-interval", "800ms",
			"--metrics-listen", "127.0.0.1:0", "--metrics-exporter", "splunk:prod", "--quiet"}, pr, io.Discard, &stderr, auditbatch.Options{})
	}()
	url := waitAddr(t, &stderr)
	// As fast as audit-batch takes them: a batch of 10 fills at once, far
	// inside the interval, and the input is never quiet for the 100 ms
	// that would collapse it (a pacing sleep here made the test flaky on a
	// loaded machine: a writer descheduled for the quiet time is quiet
	// input).
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		seq := 0
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			var b strings.Builder
			for range 5 {
				seq++
				fmt.Fprintf(&b, `{"seq":%d,"record":{}}`+"\n", seq)
			}
			if _, err := io.WriteString(pw, b.String()); err != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // 100 -> 200 -> 400 -> 800 takes three full batches
	var samples []float64
	for range 8 {
		f := scrape(t, url)
		max := f.Get(metrics.NameBatchMaxIntervalMs, "exporter=splunk:prod")
		if max != 800 {
			t.Fatalf("max interval gauge = %v, want 800", max)
		}
		samples = append(samples, f.Get(metrics.NameBatchIntervalMs, "exporter=splunk:prod"))
		time.Sleep(100 * time.Millisecond)
	}
	for _, v := range samples {
		if v != 800 {
			t.Errorf("interval samples under steady load %v: want all at the maximum, 800", samples)
			break
		}
	}
	close(stopLoad)
	<-loadDone
	// Quiet: the queue drained, the interval collapses to the minimum.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := scrape(t, url).Get(metrics.NameBatchIntervalMs)
		if v == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("interval %v after the input went quiet, want it back at 100", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
	full := scrape(t, url).Get(metrics.NameBatchesClosed, "reason=full")
	if full < 10 {
		t.Errorf("%v full batches, want many", full)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The exporter's cursor drifts behind the head by more than 10k records:
// audit-ack reports the lag.
func TestAlertLag(t *testing.T) {
	db := newDB(t, 12000, 200)
	var stderr syncBuf
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- auditack.Run(ctx, []string{"--db", db, "--exporter", "splunk:prod", "--metrics-listen", "127.0.0.1:0", "--commit-interval", "0", "--quiet"},
			pr, io.Discard, &stderr)
	}()
	url := waitAddr(t, &stderr)
	fmt.Fprintf(pw, `{"ack":{"exporter":"splunk:prod","firstSeq":1,"lastSeq":1000,"lastHash":%q,"count":1000,"quarantined":[]}}`+"\n", hashAt(t, db, 1000))
	deadline := time.Now().Add(10 * time.Second)
	var f metricstest.Families
	for {
		f = scrape(t, url)
		// The lag is computed from both gauges as a scrape collects them,
		// concurrently with the cursor gauge itself: one scrape may still
		// show the lag of the moment before the commit.
		if f.Get(metrics.NameExportLastSeq) == 1000 && f.Get(metrics.NameExportLag, "exporter=splunk:prod", "vendor=splunk") == 11000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor %v (want 1000), lag %v (want 11000, > the 10k threshold):\n%s", f.Get(metrics.NameExportLastSeq),
				f.Get(metrics.NameExportLag, "exporter=splunk:prod", "vendor=splunk"), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ls := []string{"exporter=splunk:prod", "vendor=splunk"}
	if v := f.Get(metrics.NameLastSeq, ls...); v != 12000 {
		t.Errorf("head = %v, want 12000", v)
	}
	if v := f.Get(metrics.NameExportLag, ls...); v != 11000 {
		t.Errorf("lag = %v, want 11000 (> the 10k threshold)", v)
	}
	// Catching up clears it.
	fmt.Fprintf(pw, `{"ack":{"exporter":"splunk:prod","firstSeq":1001,"lastSeq":12000,"lastHash":%q,"count":11000,"quarantined":[]}}`+"\n", hashAt(t, db, 12000))
	for {
		if v := scrape(t, url).Get(metrics.NameExportLag); v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lag did not go back to 0 after the cursor caught up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pw.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
