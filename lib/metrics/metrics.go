package metrics

import (
	"fmt"
	"log"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// Label names.
const (
	LabelExporter  = "exporter"
	LabelVendor    = "vendor"
	LabelRetryable = "retryable"
	LabelReason    = "reason"
	// LabelBinary is added to every series of a textfile (see WriteTextfile);
	// it is not used on HTTP, where the scrape target names the process.
	LabelBinary = "binary"
)

// RequestDurationBuckets are the upper bounds, in seconds, of
// auditpipe_request_duration_seconds: 5 ms (a local file sink) to 60 s (a
// SIEM at the end of its timeout).
var RequestDurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "histogram"}[k]
}

// Labels are the constant labels of a Set's metrics. Empty fields are left
// out: a stage that has no exporter (audit-verify reading stdin) has no
// exporter label.
type Labels struct {
	Exporter string // cursor name, e.g. "splunk:prod"
	Vendor   string // sink kind, e.g. "splunk"
}

// A Set is one process's metrics. Make it with New.
type Set struct {
	// Registry holds every metric of the Set plus the process and Go
	// collectors. Serve exposes it; tests gather it.
	Registry *prometheus.Registry
	// ErrorLog, if not nil, receives errors that have no caller to return
	// to: HTTP server and scrape errors, TextfileLoop's intermediate writes.
	// Set it before Serve or TextfileLoop.
	ErrorLog *log.Logger

	binary string
	consts prometheus.Labels

	mu   sync.Mutex
	made map[string]any                    // name -> the metric, vec or func collector
	seqs map[string]func() (float64, bool) // the seq gauges, for the lag
}

// New returns the Set of the binary named binary (used to label textfile
// series), with the process and Go collectors registered.
func New(binary string, labels Labels) *Set {
	s := &Set{
		Registry: prometheus.NewRegistry(),
		binary:   binary,
		consts:   prometheus.Labels{},
		made:     map[string]any{},
		seqs:     map[string]func() (float64, bool){},
	}
	// A label value must be valid UTF-8 or registration panics; the
	// exporter name comes from a flag, so repair it rather than crash.
	if labels.Exporter != "" {
		s.consts[LabelExporter] = strings.ToValidUTF8(labels.Exporter, "\uFFFD")
	}
	if labels.Vendor != "" {
		s.consts[LabelVendor] = strings.ToValidUTF8(labels.Vendor, "\uFFFD")
	}
	s.Registry.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	return s
}

// BackpressurePaused is declaragent_audit_backpressure_paused_total. Feed it
// through a BlockingWriter.
func (s *Set) BackpressurePaused() prometheus.Counter { return s.counter(NameBackpressurePaused) }

// BackpressureSeconds is auditpipe_backpressure_paused_seconds_total, the
// time spent in the pauses BackpressurePaused counts.
func (s *Set) BackpressureSeconds() prometheus.Counter { return s.counter(NameBackpressureSeconds) }

// ExportFailures is declaragent_audit_export_failures_total{retryable}.
// Both series exist, at 0, from the first call, so that an alert on
// increase(...{retryable="false"}[5m]) > 0 fires on the very first
// permanent failure instead of seeing a series appear at 1.
func (s *Set) ExportFailures(retryable bool) prometheus.Counter {
	v := s.counterVec(NameExportFailures, "true", "false")
	if retryable {
		return v.WithLabelValues("true")
	}
	return v.WithLabelValues("false")
}

// ExportFailuresByReason is auditpipe_export_failures_by_reason_total{reason}.
// reason must come from a small fixed set (it is a label).
func (s *Set) ExportFailuresByReason(reason string) prometheus.Counter {
	return s.counterVec(NameExportFailuresByReason).WithLabelValues(labelValue(reason))
}

// BatchIntervalMs is declaragent_audit_batch_interval_ms. audit-batch, whose
// Batcher keeps the interval itself, should rather use GaugeFunc.
func (s *Set) BatchIntervalMs() prometheus.Gauge { return s.gauge(NameBatchIntervalMs) }

// ExportLastSeq is declaragent_audit_export_last_seq: the committed cursor.
func (s *Set) ExportLastSeq() prometheus.Gauge { return s.gauge(NameExportLastSeq) }

// LastSeq is declaragent_audit_last_seq: the head of the log.
func (s *Set) LastSeq() prometheus.Gauge { return s.gauge(NameLastSeq) }

// ExportAcked is declaragent_audit_export_acked_total.
func (s *Set) ExportAcked() prometheus.Counter { return s.counter(NameExportAcked) }

// ExportPaused is declaragent_audit_export_paused.
func (s *Set) ExportPaused() prometheus.Gauge { return s.gauge(NameExportPaused) }

// RecordsIn is auditpipe_records_in_total.
func (s *Set) RecordsIn() prometheus.Counter { return s.counter(NameRecordsIn) }

// RecordsOut is auditpipe_records_out_total.
func (s *Set) RecordsOut() prometheus.Counter { return s.counter(NameRecordsOut) }

// BytesIn is auditpipe_bytes_in_total.
func (s *Set) BytesIn() prometheus.Counter { return s.counter(NameBytesIn) }

// BytesOut is auditpipe_bytes_out_total.
func (s *Set) BytesOut() prometheus.Counter { return s.counter(NameBytesOut) }

// Batches is auditpipe_batches_total.
func (s *Set) Batches() prometheus.Counter { return s.counter(NameBatches) }

// Retries is auditpipe_retries_total{reason}. reason must come from a
// small fixed set.
func (s *Set) Retries(reason string) prometheus.Counter {
	return s.counterVec(NameRetries).WithLabelValues(labelValue(reason))
}

// Quarantined is auditpipe_quarantined_total.
func (s *Set) Quarantined() prometheus.Counter { return s.counter(NameQuarantined) }

// InflightRequests is auditpipe_inflight_requests.
func (s *Set) InflightRequests() prometheus.Gauge { return s.gauge(NameInflightRequests) }

// RequestDuration is auditpipe_request_duration_seconds, buckets
// RequestDurationBuckets.
func (s *Set) RequestDuration() prometheus.Histogram {
	return get(s, NameRequestDuration, kindHistogram, func(d def, opts prometheus.Opts) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: opts.Name, Help: opts.Help, ConstLabels: opts.ConstLabels,
			Buckets: RequestDurationBuckets,
		})
	})
}

// Duplicates is auditpipe_duplicates_total.
func (s *Set) Duplicates() prometheus.Counter { return s.counter(NameDuplicates) }

// VerifyBreaks is auditpipe_verify_breaks_total{reason}, reason one of
// lib/chain's reason codes.
func (s *Set) VerifyBreaks(reason string) prometheus.Counter {
	return s.counterVec(NameVerifyBreaks).WithLabelValues(labelValue(reason))
}

// CounterFunc registers a counter whose value f returns at each scrape
// (f must be safe to call concurrently and must never decrease). name is
// a contract or auditpipe_ counter name; help may be empty for a name this
// package knows. It panics, as prometheus.MustRegister does, on a
// programming error: an unknown or invalid name, a name already
// registered, or a type or labels that differ from the known metric's.
func (s *Set) CounterFunc(name, help string, f func() float64) {
	s.register(name, help, kindCounter, nil, func(opts prometheus.Opts) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts(opts), f)
	})
}

// GaugeFunc is CounterFunc for a gauge. A GaugeFunc for
// declaragent_audit_last_seq or declaragent_audit_export_last_seq counts as
// known from the start for auditpipe_export_lag_records.
func (s *Set) GaugeFunc(name, help string, f func() float64) {
	s.register(name, help, kindGauge, nil, func(opts prometheus.Opts) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts), f)
	})
	if name == NameLastSeq || name == NameExportLastSeq {
		s.mu.Lock()
		s.seqs[name] = func() (float64, bool) { return f(), true }
		s.maybeLag()
		s.mu.Unlock()
	}
}

// CounterVecFunc registers a counter family with variable labels whose
// series f reports at each scrape by calling emit once per series, with
// one value per name in labelNames. For example lib/ship's failure map:
//
//	ms.CounterVecFunc(metrics.NameExportFailures, "", []string{metrics.LabelRetryable},
//		func(emit func(float64, ...string)) {
//			for retryable, byReason := range m.Failures() { ... emit(sum, strconv.FormatBool(retryable)) }
//		})
//
// f must emit each label combination at most once. It panics like
// CounterFunc.
func (s *Set) CounterVecFunc(name, help string, labelNames []string, f func(emit func(value float64, labelValues ...string))) {
	s.register(name, help, kindCounter, labelNames, func(opts prometheus.Opts) prometheus.Collector {
		return &vecFunc{
			desc: prometheus.NewDesc(name, opts.Help, labelNames, opts.ConstLabels),
			f:    f,
		}
	})
}

// vecFunc is the collector behind CounterVecFunc.
type vecFunc struct {
	desc *prometheus.Desc
	f    func(emit func(value float64, labelValues ...string))
}

func (c *vecFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *vecFunc) Collect(ch chan<- prometheus.Metric) {
	c.f(func(v float64, lv ...string) {
		vals := make([]string, len(lv))
		for i := range lv {
			vals[i] = labelValue(lv[i])
		}
		m, err := prometheus.NewConstMetric(c.desc, prometheus.CounterValue, v, vals...)
		if err != nil {
			m = prometheus.NewInvalidMetric(c.desc, err)
		}
		ch <- m
	})
}

// register checks name against the known metrics and registers the
// collector mk makes.
func (s *Set) register(name, help string, k kind, labelNames []string, mk func(prometheus.Opts) prometheus.Collector) {
	d, known := defs[name]
	switch {
	case name == NameExportLag:
		panic(fmt.Sprintf("metrics: %s is computed by the Set from the two seq gauges", name))
	case !known:
		panic(fmt.Sprintf("metrics: %q is not in the table of metric names (lib/metrics/names.go): add it there, with its type, labels, owner and help", name))
	case d.kind != k || !slices.Equal(d.labels, labelNames):
		panic(fmt.Sprintf("metrics: %s is a %s with labels %q, not a %s with labels %q", name, d.kind, d.labels, k, labelNames))
	case help == "" && d.help == "":
		panic(fmt.Sprintf("metrics: %s: no help text (its owner gives it)", name))
	case help == "":
		help = d.help
	}
	for _, l := range labelNames {
		if !model.LegacyValidation.IsValidLabelName(l) || l == LabelBinary || l == LabelExporter || l == LabelVendor {
			panic(fmt.Sprintf("metrics: %s: label name %q is invalid or reserved", name, l))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.made[name]; dup {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	c := mk(prometheus.Opts{Name: name, Help: help, ConstLabels: s.consts})
	s.Registry.MustRegister(c)
	s.made[name] = c
}

// get returns the metric name, making and registering it on the first call.
func get[T prometheus.Collector](s *Set, name string, k kind, mk func(def, prometheus.Opts) T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.made[name]; ok {
		t, ok := m.(T)
		if !ok {
			panic(fmt.Sprintf("metrics: %s is already registered as a func", name))
		}
		return t
	}
	d := defs[name]
	if d.kind != k {
		panic(fmt.Sprintf("metrics: %s is a %s", name, d.kind))
	}
	m := mk(d, prometheus.Opts{Name: name, Help: d.help, ConstLabels: s.consts})
	s.Registry.MustRegister(m)
	s.made[name] = m
	return m
}

func (s *Set) counter(name string) prometheus.Counter {
	return get(s, name, kindCounter, func(_ def, o prometheus.Opts) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts(o))
	})
}

// counterVec returns the vec name; init are label values whose series
// start at 0 when the vec is made.
func (s *Set) counterVec(name string, init ...string) *prometheus.CounterVec {
	return get(s, name, kindCounter, func(d def, o prometheus.Opts) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts(o), d.labels)
		for _, lv := range init {
			v.WithLabelValues(lv)
		}
		return v
	})
}

func (s *Set) gauge(name string) prometheus.Gauge {
	g := get(s, name, kindGauge, func(_ def, o prometheus.Opts) *seqGauge {
		return &seqGauge{Gauge: prometheus.NewGauge(prometheus.GaugeOpts(o))}
	})
	if name == NameLastSeq || name == NameExportLastSeq {
		s.mu.Lock()
		if s.seqs[name] == nil {
			s.seqs[name] = g.value
			s.maybeLag()
		}
		s.mu.Unlock()
	}
	return g
}

// maybeLag registers the lag collector once both seq gauges exist. s.mu is
// held.
func (s *Set) maybeLag() {
	if _, done := s.made[NameExportLag]; done || s.seqs[NameLastSeq] == nil || s.seqs[NameExportLastSeq] == nil {
		return
	}
	c := &lagCollector{
		desc:   prometheus.NewDesc(NameExportLag, defs[NameExportLag].help, nil, s.consts),
		head:   s.seqs[NameLastSeq],
		cursor: s.seqs[NameExportLastSeq],
	}
	s.Registry.MustRegister(c)
	s.made[NameExportLag] = c
}

// lagCollector reports head - cursor, and nothing until both are known:
// an absent series is honest, a lag computed from a gauge still at its
// initial 0 is not.
type lagCollector struct {
	desc         *prometheus.Desc
	head, cursor func() (float64, bool)
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	h, ok1 := c.head()
	cur, ok2 := c.cursor()
	if !ok1 || !ok2 {
		return
	}
	// The head is sampled at a different moment than the cursor is
	// committed, so the cursor may briefly be ahead: that is no lag.
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, max(h-cur, 0))
}

// seqGauge is a gauge that remembers whether it has been set.
type seqGauge struct {
	prometheus.Gauge
	set atomic.Bool
}

func (g *seqGauge) Set(v float64)     { g.Gauge.Set(v); g.set.Store(true) }
func (g *seqGauge) Inc()              { g.Gauge.Inc(); g.set.Store(true) }
func (g *seqGauge) Dec()              { g.Gauge.Dec(); g.set.Store(true) }
func (g *seqGauge) Add(v float64)     { g.Gauge.Add(v); g.set.Store(true) }
func (g *seqGauge) Sub(v float64)     { g.Gauge.Sub(v); g.set.Store(true) }
func (g *seqGauge) SetToCurrentTime() { g.Gauge.SetToCurrentTime(); g.set.Store(true) }

func (g *seqGauge) value() (float64, bool) {
	if !g.set.Load() {
		return 0, false
	}
	var m dto.Metric
	if g.Write(&m) != nil {
		return 0, false
	}
	return m.GetGauge().GetValue(), true
}

// labelValue repairs a label value that is not valid UTF-8, which the
// client library would otherwise reject (WithLabelValues panics).
func labelValue(v string) string { return strings.ToValidUTF8(v, "\uFFFD") }
