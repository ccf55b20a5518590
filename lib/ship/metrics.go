package ship

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditpipe/auditpipe/lib/metrics"
)

// Metrics are the shipper's counters: plain atomics the engine bumps on
// its hot path, exposed by Register under lib/metrics' names.
type Metrics struct {
	Requests         atomic.Int64 // requests sent, including retries
	Retries          atomic.Int64
	DeliveredRecords atomic.Int64
	Duplicates       atomic.Int64 // records the SIEM already had
	Quarantined      atomic.Int64
	Splits           atomic.Int64 // 413: batch halved
	Bisects          atomic.Int64 // 400 without position: batch halved to find the poison record
	AckedRecords     atomic.Int64 // records whose ack was handed to audit-ack (written to the FIFO or stdout)
	LastAckedSeq     atomic.Int64 // lastSeq of the last ack handed over
	AcksHeld         atomic.Int64 // records delivered whose ack the FIFO sink holds (no reader, or the FIFO is full)
	AcksDropped      atomic.Int64 // records delivered whose ack was not handed over and never will be by this run (the write failed, or an earlier batch failed)
	// FailingSince is the UnixNano of the first failed request after the
	// last delivery, 0 while deliveries succeed.
	FailingSince   atomic.Int64
	FailedRequests atomic.Int64 // failed requests since FailingSince
	MarksDropped   atomic.Int64 // mark lines in the input, dropped (never shipped)
	Inflight       atomic.Int64
	Paused         atomic.Int64 // 1 once self-paused

	// RequestDone, if set, is called with the duration of every request
	// (each attempt, retries included), from the goroutine that sent it.
	// Set it before Run; it must be safe for concurrent use.
	RequestDone func(time.Duration)

	mu       sync.Mutex
	failures map[failureKey]int64
	batches  int64
	busy     time.Duration
}

type failureKey struct {
	retryable bool
	reason    string
}

func (m *Metrics) failure(retryable bool, reason string) {
	m.mu.Lock()
	if m.failures == nil {
		m.failures = make(map[failureKey]int64)
	}
	m.failures[failureKey{retryable, reason}]++
	m.mu.Unlock()
}

func (m *Metrics) observeBatch(d time.Duration) {
	m.mu.Lock()
	m.batches++
	m.busy += d
	m.mu.Unlock()
}

// Failures returns the failure counts by retryability and reason.
func (m *Metrics) Failures() map[bool]map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[bool]map[string]int64{true: {}, false: {}}
	for k, n := range m.failures {
		out[k.retryable][k.reason] += n
	}
	return out
}

// Batches returns the number of batches completed or abandoned and the
// total time spent delivering them.
func (m *Metrics) Batches() (int64, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.batches, m.busy
}

// Register exposes the engine's counters in ms under the names of
// lib/metrics' table (whose Owner column names this function), read at
// scrape time: one source of truth, nothing counted twice. It also feeds
// auditpipe_request_duration_seconds from every request (it sets
// m.RequestDone). audit-ship's wiring is then
//
//	st, err := mf.Start(ctx, prog, mf.Labels(c.exporter, c.kind), stderr)
//	defer st.Close()
//	m.Register(st.Set) // m is the *ship.Metrics given to ship.Options
//
// The stage must not also ask ms for these names (the accessor would
// panic: "already registered as a func"). Both series of
// declaragent_audit_export_failures_total exist from the start; retries
// are one series, reason="all" (the reasons are in the failures by
// reason).
func (m *Metrics) Register(ms *metrics.Set) {
	h := ms.RequestDuration()
	m.RequestDone = func(d time.Duration) { h.Observe(d.Seconds()) }
	count := func(v interface{ Load() int64 }) func() float64 {
		return func() float64 { return float64(v.Load()) }
	}
	ms.CounterVecFunc(metrics.NameExportFailures, "", []string{metrics.LabelRetryable},
		func(emit func(float64, ...string)) {
			f := m.Failures()
			// Both series, always: an alert on increase(...{retryable="false"}[5m])
			// must see the first permanent failure as a step from 0.
			for _, retryable := range []bool{false, true} {
				var n int64
				for _, c := range f[retryable] {
					n += c
				}
				emit(float64(n), strconv.FormatBool(retryable))
			}
		})
	ms.CounterVecFunc(metrics.NameExportFailuresByReason, "", []string{metrics.LabelReason},
		func(emit func(float64, ...string)) {
			by := map[string]int64{}
			for _, byReason := range m.Failures() {
				for reason, n := range byReason {
					by[reason] += n
				}
			}
			reasons := make([]string, 0, len(by))
			for r := range by {
				reasons = append(reasons, r)
			}
			slices.Sort(reasons)
			for _, r := range reasons {
				emit(float64(by[r]), r)
			}
		})
	ms.CounterFunc(metrics.NameExportAcked, "", count(&m.AckedRecords))
	ms.GaugeFunc(metrics.NameExportPaused, "", count(&m.Paused))
	ms.CounterVecFunc(metrics.NameRetries, "", []string{metrics.LabelReason},
		func(emit func(float64, ...string)) { emit(float64(m.Retries.Load()), "all") })
	ms.CounterFunc(metrics.NameQuarantined, "", count(&m.Quarantined))
	ms.CounterFunc(metrics.NameDuplicates, "", count(&m.Duplicates))
	ms.GaugeFunc(metrics.NameInflightRequests, "", count(&m.Inflight))
	ms.CounterFunc(metrics.NameRecordsOut, "", count(&m.DeliveredRecords))
	ms.CounterFunc(metrics.NameBatches, "", func() float64 { n, _ := m.Batches(); return float64(n) })
	ms.CounterFunc(metrics.NameRequests, "", count(&m.Requests))
	ms.CounterFunc(metrics.NameSplits, "", count(&m.Splits))
	ms.CounterFunc(metrics.NameBisects, "", count(&m.Bisects))
	ms.CounterFunc(metrics.NameShipBusySeconds, "",
		func() float64 { _, d := m.Batches(); return d.Seconds() })
	ms.GaugeFunc(metrics.NameShipLastAckedSeq, "", count(&m.LastAckedSeq))
	ms.GaugeFunc(metrics.NameExportFailingSince, "",
		func() float64 {
			if ns := m.FailingSince.Load(); ns != 0 {
				return float64(ns) / 1e9
			}
			return 0
		})
	ms.GaugeFunc(metrics.NameShipAcksHeld, "", count(&m.AcksHeld))
	ms.CounterFunc(metrics.NameMarksDropped, "Mark lines (audit-read's control lines for audit-verify) dropped: never shipped.", count(&m.MarksDropped))
}
