package auditread_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/metricstest"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
)

// newDB makes an audit database of n sample records.
func newDB(t *testing.T, n int) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n)}, nil, &events, &stderr); err != nil {
		t.Fatalf("audit-sample: %v\n%s", err, stderr.String())
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatalf("audit-append: %v\n%s", err, stderr.String())
	}
	return db
}

// A drain writes its counts to the textfile at exit, labelled with the
// cursor's exporter and the vendor its name implies.
func TestMetricsFileDrain(t *testing.T) {
	db := newDB(t, 300)
	file := filepath.Join(t.TempDir(), "read.prom")
	var stdout, stderr bytes.Buffer
	err := auditread.Run(context.Background(), []string{"--db", db, "--from-cursor", "splunk:prod", "--metrics-file", file, "--quiet"},
		nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	fams, err := metricstest.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ls := []string{"exporter=splunk:prod", "vendor=splunk", "binary=audit-read"}
	// Records only: the anchor mark line before them is not a record.
	first, _, _ := bytes.Cut(stdout.Bytes(), []byte("\n"))
	if !bytes.HasPrefix(first, []byte(`{"mark":{"type":"anchor","source":"cursor","exporter":"splunk:prod","seq":0,"hash":"","chain":"`)) {
		t.Errorf("first line %s, want the cursor's anchor mark", first)
	}
	lineBytes := float64(stdout.Len() - len(first) - 1 - 300) // without the newlines
	for name, want := range map[string]float64{
		metrics.NameRecordsIn:           300,
		metrics.NameRecordsOut:          300,
		metrics.NameBytesIn:             lineBytes,
		metrics.NameBytesOut:            lineBytes,
		metrics.NameStageLastSeq:        300,
		metrics.NameBackpressurePaused:  0,
		metrics.NameBackpressureSeconds: 0,
	} {
		if v, ok := fams.Value(name, ls...); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v; series %v", name, v, ok, want, fams.Labels(name))
		}
	}
	// The head is audit-read's to report only while following.
	if _, ok := fams[metrics.NameLastSeq]; ok {
		t.Errorf("%s present in a drain", metrics.NameLastSeq)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// --follow serves the head of the log and how far it has read.
func TestMetricsFollow(t *testing.T) {
	db := newDB(t, 200)
	var stderr syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- auditread.Run(ctx, []string{"--db", db, "--follow", "--poll", "10ms", "--metrics-listen", "127.0.0.1:0", "--metrics-exporter", "file:t"},
			nil, io.Discard, &stderr)
	}()
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for {
		if addr == "" {
			addr = metricstest.Addr(stderr.String())
		}
		if addr != "" {
			f, err := metricstest.Scrape("http://" + addr + "/metrics")
			if err == nil && f.Get(metrics.NameLastSeq, "exporter=file:t", "vendor=file") == 200 &&
				f.Get(metrics.NameStageLastSeq) == 200 && f.Get(metrics.NameRecordsOut) == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no head/last seq of 200 served; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
