package metrics_test

import (
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/auditpipe/auditpipe/lib/metrics"
)

// family describes a metric family as the tests expect it: written out
// literally from docs/contract.md section 4 and the package doc, not from the
// package's constants, so that renaming a constant fails a test.
type family struct {
	name   string
	typ    dto.MetricType
	labels []string // label names of every series, sorted
}

var contractFamilies = []family{
	{"declaragent_audit_backpressure_paused_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"declaragent_audit_export_failures_total", dto.MetricType_COUNTER, []string{"exporter", "retryable", "vendor"}},
	{"declaragent_audit_batch_interval_ms", dto.MetricType_GAUGE, []string{"exporter", "vendor"}},
	{"declaragent_audit_export_last_seq", dto.MetricType_GAUGE, []string{"exporter", "vendor"}},
	{"declaragent_audit_last_seq", dto.MetricType_GAUGE, []string{"exporter", "vendor"}},
	{"declaragent_audit_export_acked_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"declaragent_audit_export_paused", dto.MetricType_GAUGE, []string{"exporter", "vendor"}},
}

var ownFamilies = []family{
	{"auditpipe_backpressure_paused_seconds_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"auditpipe_export_failures_by_reason_total", dto.MetricType_COUNTER, []string{"exporter", "reason", "vendor"}},
	{"auditpipe_records_in_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"auditpipe_records_out_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"auditpipe_bytes_in_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"auditpipe_bytes_out_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"auditpipe_batches_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"auditpipe_retries_total", dto.MetricType_COUNTER, []string{"exporter", "reason", "vendor"}},
	{"auditpipe_quarantined_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"auditpipe_inflight_requests", dto.MetricType_GAUGE, []string{"exporter", "vendor"}},
	{"auditpipe_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"exporter", "vendor"}},
	{"auditpipe_duplicates_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	{"auditpipe_verify_breaks_total", dto.MetricType_COUNTER, []string{"exporter", "reason", "vendor"}},
	{"auditpipe_export_lag_records", dto.MetricType_GAUGE, []string{"exporter", "vendor"}},
}

// touchAll creates and sets every metric of s, as the binaries together would.
func touchAll(s *metrics.Set) {
	s.BackpressurePaused().Inc()
	s.BackpressureSeconds().Add(0.25)
	s.ExportFailures(true).Add(3)
	s.ExportFailures(false).Inc()
	s.ExportFailuresByReason("http_503").Add(3)
	s.BatchIntervalMs().Set(250)
	s.ExportLastSeq().Set(40)
	s.LastSeq().Set(42)
	s.ExportAcked().Add(40)
	s.ExportPaused().Set(0)
	s.RecordsIn().Add(42)
	s.RecordsOut().Add(40)
	s.BytesIn().Add(4200)
	s.BytesOut().Add(4000)
	s.Batches().Add(2)
	s.Retries("http_503").Add(3)
	s.Quarantined().Inc()
	s.InflightRequests().Set(2)
	s.RequestDuration().Observe(0.2)
	s.Duplicates().Inc()
	s.VerifyBreaks("hash_mismatch").Inc()
}

func gather(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labelNames(m *dto.Metric) []string {
	var ns []string
	for _, lp := range m.GetLabel() {
		ns = append(ns, lp.GetName())
	}
	slices.Sort(ns)
	return ns
}

func labelValue(m *dto.Metric, name string) (string, bool) {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue(), true
		}
	}
	return "", false
}

func checkFamilies(t *testing.T, got map[string]*dto.MetricFamily, want []family) {
	t.Helper()
	for _, w := range want {
		mf, ok := got[w.name]
		if !ok {
			t.Errorf("%s: missing", w.name)
			continue
		}
		if mf.GetType() != w.typ {
			t.Errorf("%s: type %v, want %v", w.name, mf.GetType(), w.typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s: no help", w.name)
		}
		if len(mf.GetMetric()) == 0 {
			t.Errorf("%s: no series", w.name)
		}
		for _, m := range mf.GetMetric() {
			if ns := labelNames(m); !slices.Equal(ns, w.labels) {
				t.Errorf("%s: labels %q, want %q", w.name, ns, w.labels)
			}
			if v, _ := labelValue(m, "exporter"); v != "splunk:prod" {
				t.Errorf("%s: exporter=%q", w.name, v)
			}
			if v, _ := labelValue(m, "vendor"); v != "splunk" {
				t.Errorf("%s: vendor=%q", w.name, v)
			}
		}
	}
}

func TestContractMetrics(t *testing.T) {
	s := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
	touchAll(s)
	got := gather(t, s.Registry)
	checkFamilies(t, got, contractFamilies)

	// Both retryable series, and nothing else.
	var rv []string
	for _, m := range got["declaragent_audit_export_failures_total"].GetMetric() {
		v, _ := labelValue(m, "retryable")
		rv = append(rv, v)
	}
	slices.Sort(rv)
	if !slices.Equal(rv, []string{"false", "true"}) {
		t.Errorf("retryable values %q, want [false true]", rv)
	}

	// Values, help and labels in the exposition format, exactly.
	want := `
# HELP declaragent_audit_export_failures_total Failed export requests; retryable="false" is a permanent failure (bad token, schema reject).
# TYPE declaragent_audit_export_failures_total counter
declaragent_audit_export_failures_total{exporter="splunk:prod",retryable="false",vendor="splunk"} 1
declaragent_audit_export_failures_total{exporter="splunk:prod",retryable="true",vendor="splunk"} 3
# HELP declaragent_audit_batch_interval_ms Current adaptive batch interval in milliseconds; stuck at the maximum means the loop is in emergency widen mode.
# TYPE declaragent_audit_batch_interval_ms gauge
declaragent_audit_batch_interval_ms{exporter="splunk:prod",vendor="splunk"} 250
# HELP auditpipe_export_lag_records Records between the head of the log and the exporter's committed cursor (declaragent_audit_last_seq - declaragent_audit_export_last_seq, at least 0).
# TYPE auditpipe_export_lag_records gauge
auditpipe_export_lag_records{exporter="splunk:prod",vendor="splunk"} 2
`
	if err := testutil.GatherAndCompare(s.Registry, strings.NewReader(want),
		"declaragent_audit_export_failures_total", "declaragent_audit_batch_interval_ms", "auditpipe_export_lag_records"); err != nil {
		t.Error(err)
	}
}

func TestOwnMetrics(t *testing.T) {
	s := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
	touchAll(s)
	got := gather(t, s.Registry)
	checkFamilies(t, got, ownFamilies)

	h := got["auditpipe_request_duration_seconds"].GetMetric()[0].GetHistogram()
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	if bounds[0] != 0.005 || bounds[len(bounds)-1] != 60 {
		t.Errorf("request duration buckets %v, want 0.005 .. 60", bounds)
	}
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 0.2 {
		t.Errorf("histogram count %d sum %v, want 1, 0.2", h.GetSampleCount(), h.GetSampleSum())
	}

	// Every family of the Set is one the tests know: a new metric needs a
	// row in the doc's table and here.
	known := map[string]bool{}
	for _, f := range slices.Concat(contractFamilies, ownFamilies) {
		known[f.name] = true
	}
	for name := range got {
		if !known[name] && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected family %s", name)
		}
	}
}

// A binary that knows no exporter (audit-verify on stdin) has no exporter
// or vendor label at all, not an empty one.
func TestNoLabelsWhenUnknown(t *testing.T) {
	s := metrics.New("audit-verify", metrics.Labels{})
	s.VerifyBreaks("prev_link").Inc()
	s.BackpressurePaused().Inc()
	got := gather(t, s.Registry)
	if ns := labelNames(got["declaragent_audit_backpressure_paused_total"].GetMetric()[0]); len(ns) != 0 {
		t.Errorf("backpressure labels %q, want none", ns)
	}
	if ns := labelNames(got["auditpipe_verify_breaks_total"].GetMetric()[0]); !slices.Equal(ns, []string{"reason"}) {
		t.Errorf("verify breaks labels %q, want [reason]", ns)
	}
	// Only what the binary asked for exists.
	if _, ok := got["declaragent_audit_export_acked_total"]; ok {
		t.Error("declaragent_audit_export_acked_total exists though audit-verify never asked for it")
	}
}

func TestRuntimeCollectors(t *testing.T) {
	got := gather(t, metrics.New("audit-read", metrics.Labels{}).Registry)
	want := []string{"go_goroutines", "go_gc_duration_seconds"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds")
	}
	for _, n := range want {
		if _, ok := got[n]; !ok {
			t.Errorf("%s missing", n)
		}
	}
}

func TestAccessorsReturnTheSameMetric(t *testing.T) {
	s := metrics.New("audit-read", metrics.Labels{})
	s.RecordsIn().Inc()
	s.RecordsIn().Add(2)
	s.Retries("timeout").Inc()
	s.Retries("timeout").Inc()
	s.Retries("http_503").Inc()
	if v := testutil.ToFloat64(s.RecordsIn()); v != 3 {
		t.Errorf("records in = %v, want 3", v)
	}
	if v := testutil.ToFloat64(s.Retries("timeout")); v != 2 {
		t.Errorf("retries{timeout} = %v, want 2", v)
	}
	if n := testutil.CollectAndCount(s.Registry, "auditpipe_retries_total"); n != 2 {
		t.Errorf("%d retries series, want 2", n)
	}
	// Invalid UTF-8 in a label value is repaired, not a panic.
	s.Retries("bad\xff").Inc()
	if v := testutil.ToFloat64(s.Retries("bad\uFFFD")); v != 1 {
		t.Errorf("retries{bad\\uFFFD} = %v, want 1", v)
	}
}

// The retryable="false" series exists, at 0, before the first permanent
// failure, so that increase() sees that failure.
func TestExportFailuresBothSeries(t *testing.T) {
	s := metrics.New("audit-ship", metrics.Labels{})
	s.ExportFailures(true).Inc()
	want := `
# HELP declaragent_audit_export_failures_total Failed export requests; retryable="false" is a permanent failure (bad token, schema reject).
# TYPE declaragent_audit_export_failures_total counter
declaragent_audit_export_failures_total{retryable="false"} 0
declaragent_audit_export_failures_total{retryable="true"} 1
`
	if err := testutil.GatherAndCompare(s.Registry, strings.NewReader(want), "declaragent_audit_export_failures_total"); err != nil {
		t.Error(err)
	}
}

func TestExportLag(t *testing.T) {
	lag := func(s *metrics.Set) (float64, bool) {
		t.Helper()
		mf, ok := gather(t, s.Registry)["auditpipe_export_lag_records"]
		if !ok {
			return 0, false
		}
		return mf.GetMetric()[0].GetGauge().GetValue(), true
	}

	s := metrics.New("audit-ack", metrics.Labels{Exporter: "splunk:prod"})
	s.ExportLastSeq().Set(100)
	if _, ok := lag(s); ok {
		t.Fatal("lag exported with only the cursor known")
	}
	head := s.LastSeq() // created, not yet set
	if _, ok := lag(s); ok {
		t.Fatal("lag exported before the head was set")
	}
	head.Set(10_250)
	if v, ok := lag(s); !ok || v != 10_150 {
		t.Errorf("lag = %v, %v; want 10150, true", v, ok)
	}
	s.ExportLastSeq().Set(10_300) // cursor committed after the head was sampled
	if v, _ := lag(s); v != 0 {
		t.Errorf("lag with cursor ahead of the sampled head = %v, want 0", v)
	}

	// The head as a GaugeFunc counts as known.
	var h atomic.Int64
	h.Store(500)
	s2 := metrics.New("audit-ack", metrics.Labels{})
	s2.GaugeFunc("declaragent_audit_last_seq", "", func() float64 { return float64(h.Load()) })
	s2.ExportLastSeq().Set(480)
	if v, ok := lag(s2); !ok || v != 20 {
		t.Errorf("lag = %v, %v; want 20, true", v, ok)
	}
}

func TestFuncs(t *testing.T) {
	s := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
	var acked, inflight atomic.Int64
	s.CounterFunc("declaragent_audit_export_acked_total", "", func() float64 { return float64(acked.Load()) })
	s.GaugeFunc("auditpipe_inflight_requests", "", func() float64 { return float64(inflight.Load()) })
	s.CounterFunc("auditpipe_splits_total", "Batches halved after a 413.", func() float64 { return 7 })
	failures := map[bool]map[string]int64{true: {"http_503": 2, "timeout": 1}, false: {}}
	s.CounterVecFunc("declaragent_audit_export_failures_total", "", []string{"retryable"},
		func(emit func(float64, ...string)) {
			for _, r := range []bool{false, true} {
				var n int64
				for _, c := range failures[r] {
					n += c
				}
				if r {
					emit(float64(n), "true")
				} else {
					emit(float64(n), "false")
				}
			}
		})
	acked.Store(40)
	inflight.Store(3)

	got := gather(t, s.Registry)
	checkFamilies(t, got, []family{
		{"declaragent_audit_export_acked_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
		{"declaragent_audit_export_failures_total", dto.MetricType_COUNTER, []string{"exporter", "retryable", "vendor"}},
		{"auditpipe_inflight_requests", dto.MetricType_GAUGE, []string{"exporter", "vendor"}},
		{"auditpipe_splits_total", dto.MetricType_COUNTER, []string{"exporter", "vendor"}},
	})
	if v := got["declaragent_audit_export_acked_total"].GetMetric()[0].GetCounter().GetValue(); v != 40 {
		t.Errorf("acked = %v, want 40 (read at scrape time)", v)
	}
	if v := got["auditpipe_inflight_requests"].GetMetric()[0].GetGauge().GetValue(); v != 3 {
		t.Errorf("inflight = %v, want 3", v)
	}
	byRetryable := map[string]float64{}
	for _, m := range got["declaragent_audit_export_failures_total"].GetMetric() {
		v, _ := labelValue(m, "retryable")
		byRetryable[v] = m.GetCounter().GetValue()
	}
	if byRetryable["true"] != 3 || byRetryable["false"] != 0 || len(byRetryable) != 2 {
		t.Errorf("failures = %v, want true:3 false:0", byRetryable)
	}
}

func TestMisusePanics(t *testing.T) {
	f := func() float64 { return 0 }
	emit := func(func(float64, ...string)) {}
	for _, tc := range []struct {
		name string
		do   func(s *metrics.Set)
	}{
		{"func twice", func(s *metrics.Set) {
			s.CounterFunc("auditpipe_x_total", "x", f)
			s.CounterFunc("auditpipe_x_total", "x", f)
		}},
		{"accessor after func", func(s *metrics.Set) {
			s.CounterFunc("declaragent_audit_export_acked_total", "", f)
			s.ExportAcked()
		}},
		{"func after accessor", func(s *metrics.Set) {
			s.ExportAcked()
			s.CounterFunc("declaragent_audit_export_acked_total", "", f)
		}},
		{"contract gauge as counter", func(s *metrics.Set) { s.CounterFunc("declaragent_audit_export_paused", "", f) }},
		{"contract labels changed", func(s *metrics.Set) {
			s.CounterVecFunc("declaragent_audit_export_failures_total", "", []string{"retryable", "reason"}, emit)
		}},
		{"foreign prefix", func(s *metrics.Set) { s.GaugeFunc("declaragent_audit_new", "x", f) }},
		{"invalid name", func(s *metrics.Set) { s.GaugeFunc("auditpipe_a-b", "x", f) }},
		{"no help", func(s *metrics.Set) { s.GaugeFunc("auditpipe_y", "", f) }},
		{"lag is derived", func(s *metrics.Set) { s.GaugeFunc("auditpipe_export_lag_records", "", f) }},
		{"counter without _total", func(s *metrics.Set) { s.CounterFunc("auditpipe_splits", "x", f) }},
		{"gauge with _total", func(s *metrics.Set) { s.GaugeFunc("auditpipe_splits_total", "x", f) }},
		{"reserved label", func(s *metrics.Set) {
			s.CounterVecFunc("auditpipe_z_total", "z", []string{"exporter"}, emit)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.do(metrics.New("audit-ship", metrics.Labels{Exporter: "e"}))
		})
	}
}

// allowedLint are the lint problems of names the contract fixes: promlint
// and promtool check metrics report them, and they cannot be fixed.
var allowedLint = map[string]string{
	"declaragent_audit_batch_interval_ms": "metric names should not contain abbreviated units",
}

func TestLint(t *testing.T) {
	s := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
	touchAll(s)
	problems, err := testutil.GatherAndLint(s.Registry)
	if err != nil {
		t.Fatal(err)
	}
	sawAllowed := false
	for _, p := range problems {
		if allowedLint[p.Metric] == p.Text {
			sawAllowed = true
			continue
		}
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if !sawAllowed {
		t.Error("the linter no longer flags declaragent_audit_batch_interval_ms: drop it from allowedLint")
	}
}
