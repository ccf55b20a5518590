package stagemetrics_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
)

// syncBuf is a stderr that the test reads while a server goroutine may write.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func parseFlags(t *testing.T, args ...string) *stagemetrics.Flags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var f stagemetrics.Flags
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &f
}

// scrape returns the families served at url, parsed.
func scrape(t *testing.T, url string) map[string]*familyT {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	return parseText(t, resp.Body)
}

type familyT = struct {
	Type   string
	Series map[string]float64 // label set as text -> value
}

func parseText(t *testing.T, r io.Reader) map[string]*familyT {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	out := map[string]*familyT{}
	for name, mf := range mfs {
		f := &familyT{Type: mf.GetType().String(), Series: map[string]float64{}}
		for _, m := range mf.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
			f.Series[strings.Join(ls, ",")] = v
		}
		out[name] = f
	}
	return out
}

func TestServeAndTextfile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "audit-read.prom")
	f := parseFlags(t, "--metrics-listen", "127.0.0.1:0", "--metrics-file", file)
	var stderr syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	st, err := f.Start(ctx, "audit-read", f.Labels("splunk:prod", ""), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if want := "audit-read: metrics at http://" + st.Addr + "/metrics\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	// The textfile exists as soon as Start returns.
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("textfile after Start: %v", err)
	}
	st.RecordsOut().Add(7)
	got := scrape(t, "http://"+st.Addr+"/metrics")
	if v := got[metrics.NameRecordsOut].Series["exporter=splunk:prod,vendor=splunk"]; v != 7 {
		t.Errorf("served records out = %v, want 7 with exporter and vendor labels: %v", v, got[metrics.NameRecordsOut])
	}
	if got["process_resident_memory_bytes"] == nil {
		t.Error("no process collector on /metrics")
	}
	// A stop of the work (SIGTERM) does not stop the exposure: Close does.
	cancel()
	time.Sleep(50 * time.Millisecond)
	st.RecordsOut().Add(3)
	if v := scrape(t, "http://"+st.Addr+"/metrics")[metrics.NameRecordsOut].Series["exporter=splunk:prod,vendor=splunk"]; v != 10 {
		t.Errorf("after ctx ended, served records out = %v, want 10", v)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Close wrote the final counts, labelled with the binary.
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	tf := parseText(t, fh)
	if v := tf[metrics.NameRecordsOut].Series["binary=audit-read,exporter=splunk:prod,vendor=splunk"]; v != 10 {
		t.Errorf("textfile records out = %v, want 10: %v", v, tf[metrics.NameRecordsOut])
	}
	if tf["process_resident_memory_bytes"] != nil {
		t.Error("the textfile must not carry the process collector (node_exporter has its own)")
	}
	// And the server is gone.
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", st.Addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening after Close")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
}

func TestStartErrorsAreUsage(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for name, args := range map[string][]string{
		"address in use":  {"--metrics-listen", busy.Addr().String()},
		"bad address":     {"--metrics-listen", "no-port"},
		"no such dir":     {"--metrics-file", filepath.Join(t.TempDir(), "missing", "x.prom")},
		"negative linger": {"--metrics-listen", "127.0.0.1:0", "--metrics-linger", "-1s"},
	} {
		f := parseFlags(t, args...)
		st, err := f.Start(context.Background(), "audit-verify", metrics.Labels{}, io.Discard)
		if err == nil {
			st.Close()
			t.Errorf("%s: Start succeeded", name)
			continue
		}
		if exitcode.Of(err) != exitcode.Usage {
			t.Errorf("%s: exit code %d (%v), want %d", name, exitcode.Of(err), err, exitcode.Usage)
		}
	}
}

// Without any flag nothing is exposed, but the counters work and Close is
// a no-op.
func TestDisabled(t *testing.T) {
	f := parseFlags(t)
	if f.Enabled() {
		t.Fatal("Enabled with no flags")
	}
	var stderr bytes.Buffer
	st, err := f.Start(context.Background(), "audit-batch", metrics.Labels{}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	st.RecordsIn().Inc()
	if v := testutil.ToFloat64(st.RecordsIn()); v != 1 {
		t.Errorf("records in = %v", v)
	}
	if err := st.Close(); err != nil || stderr.Len() > 0 || st.Addr != "" {
		t.Errorf("Close = %v, stderr %q, addr %q", err, stderr.String(), st.Addr)
	}
}

func TestLabels(t *testing.T) {
	for _, c := range []struct {
		flag, exporter, vendor string
		want                   metrics.Labels
	}{
		{"", "splunk:prod", "", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"}},
		{"", "elastic:eu", "", metrics.Labels{Exporter: "elastic:eu", Vendor: "elastic"}},
		{"", "archive", "", metrics.Labels{Exporter: "archive"}},
		{"", "vault:x", "", metrics.Labels{Exporter: "vault:x"}},
		{"", "", "splunk", metrics.Labels{Vendor: "splunk"}},
		{"datadog:eu", "", "", metrics.Labels{Exporter: "datadog:eu", Vendor: "datadog"}},
		{"file:archive", "splunk:prod", "", metrics.Labels{Exporter: "file:archive", Vendor: "file"}},
		{"splunk:x", "", "file", metrics.Labels{Exporter: "splunk:x", Vendor: "file"}},
	} {
		f := stagemetrics.Flags{Exporter: c.flag}
		if got := f.Labels(c.exporter, c.vendor); got != c.want {
			t.Errorf("Labels(%q, %q) with --metrics-exporter %q = %+v, want %+v", c.exporter, c.vendor, c.flag, got, c.want)
		}
	}
}

// The stdout wrapper counts a write that blocks on a full pipe.
func TestStdoutCountsBackpressure(t *testing.T) {
	f := parseFlags(t)
	st, err := f.Start(context.Background(), "audit-read", metrics.Labels{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond) // the next stage is busy
		io.Copy(io.Discard, pr)
		close(done)
	}()
	w := st.Stdout(pw)
	blocked := func() float64 {
		mfs, err := st.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == metrics.NameBlockedSeconds {
				return mf.Metric[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", metrics.NameBlockedSeconds)
		return 0
	}
	wrote := make(chan struct{})
	go func() {
		if _, err := w.Write(make([]byte, 4<<20)); err != nil { // more than any pipe holds
			t.Error(err)
		}
		close(wrote)
	}()
	// While the write is blocked, no pause has been counted yet, but the
	// blocked gauge shows it.
	time.Sleep(200 * time.Millisecond)
	if v := testutil.ToFloat64(st.BackpressurePaused()); v != 0 {
		t.Errorf("paused = %v while the write is still blocked, want 0", v)
	}
	if v := blocked(); v < 0.15 || v > 0.3 {
		t.Errorf("%s = %v after 200ms blocked, want about 0.2", metrics.NameBlockedSeconds, v)
	}
	<-wrote
	pw.Close()
	<-done
	if v := blocked(); v != 0 {
		t.Errorf("%s = %v after the write returned, want 0", metrics.NameBlockedSeconds, v)
	}
	if v := testutil.ToFloat64(st.BackpressurePaused()); v != 1 {
		t.Errorf("%s = %v, want 1", metrics.NameBackpressurePaused, v)
	}
	if v := testutil.ToFloat64(st.BackpressureSeconds()); v < 0.1 {
		t.Errorf("%s = %v, want >= 0.1", metrics.NameBackpressureSeconds, v)
	}
	// Errors come through unchanged (a broken pipe stays a broken pipe).
	if _, err := w.Write([]byte("x\n")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("write after close = %v", err)
	}
}

// --metrics-linger keeps serving after the work is done.
func TestLinger(t *testing.T) {
	f := parseFlags(t, "--metrics-listen", "127.0.0.1:0", "--metrics-linger", "400ms")
	st, err := f.Start(context.Background(), "audit-verify", metrics.Labels{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	st.Stdout(pw)
	st.VerifyBreaks("prev_link").Inc()
	closed := make(chan struct{})
	start := time.Now()
	go func() { st.Close(); close(closed) }()
	// The next stage sees the end of its input at once, not after the linger.
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, pr); close(eof) }()
	select {
	case <-eof:
	case <-time.After(300 * time.Millisecond):
		t.Error("stdout still open while lingering")
	}
	time.Sleep(50 * time.Millisecond)
	got := scrape(t, "http://"+st.Addr+"/metrics")
	if v := got[metrics.NameVerifyBreaks].Series["reason=prev_link"]; v != 1 {
		t.Errorf("during linger: breaks = %v, want 1", v)
	}
	<-closed
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("Close returned after %v, want >= the 400ms linger", d)
	}
}

func TestFlow(t *testing.T) {
	st, err := parseFlags(t).Start(context.Background(), "audit-read", metrics.Labels{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := st.Flow()
	f.Read(100)
	f.Read(50)
	f.Wrote(100, 41)
	f.Wrote(50, 42)
	f.Wrote(10, 0) // unknown seq leaves the gauge
	want := `
# HELP auditpipe_bytes_in_total Bytes of record lines read.
# TYPE auditpipe_bytes_in_total counter
auditpipe_bytes_in_total 150
# HELP auditpipe_bytes_out_total Bytes of record lines written on or delivered.
# TYPE auditpipe_bytes_out_total counter
auditpipe_bytes_out_total 160
# HELP auditpipe_records_in_total Record lines read.
# TYPE auditpipe_records_in_total counter
auditpipe_records_in_total 2
# HELP auditpipe_records_out_total Record lines written on or delivered.
# TYPE auditpipe_records_out_total counter
auditpipe_records_out_total 3
# HELP auditpipe_stage_last_seq Seq of the last record this stage passed on (0 before the first).
# TYPE auditpipe_stage_last_seq gauge
auditpipe_stage_last_seq 42
`
	if err := testutil.GatherAndCompare(st.Registry, strings.NewReader(want), metrics.NameBytesIn, metrics.NameBytesOut,
		metrics.NameRecordsIn, metrics.NameRecordsOut, metrics.NameStageLastSeq); err != nil {
		t.Error(err)
	}
}

// A stop signal (the run's ctx done) ends the linger: a stopped service
// does not wait for a scrape, before or during the linger.
func TestLingerCutByStop(t *testing.T) {
	for _, during := range []bool{false, true} {
		f := parseFlags(t, "--metrics-listen", "127.0.0.1:0", "--metrics-linger", "1m")
		ctx, cancel := context.WithCancel(context.Background())
		st, err := f.Start(ctx, "audit-verify", metrics.Labels{}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if !during {
			cancel()
		} else {
			go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		}
		start := time.Now()
		st.Close()
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("stop during=%v: Close took %v with a 1m linger, want it cut short", during, d)
		}
		cancel()
	}
}
