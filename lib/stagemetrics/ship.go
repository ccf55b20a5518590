package stagemetrics

import (
	"slices"
	"strconv"
	"time"

	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/lib/ship"
)

// auditpipe_ names that only the shipper has.
const (
	NameRequests         = "auditpipe_requests_total"
	NameSplits           = "auditpipe_splits_total"
	NameBisects          = "auditpipe_bisects_total"
	NameShipBusySeconds  = "auditpipe_ship_busy_seconds_total"
	NameShipLastAckedSeq = "auditpipe_ship_last_acked_seq"
	// NameExportFailingSince is the Unix time of the first failed request
	// since the last delivery, 0 while deliveries go through: alert on
	// time() - x > 300 and x > 0.
	NameExportFailingSince = "auditpipe_export_failing_since_seconds"
	NameShipAcksHeld       = "auditpipe_ship_acks_held_records"
	// NameMarksDropped counts mark lines (batch.IsMark) a stage dropped:
	// audit-batch, audit-ship, audit-checkpoint seal.
	NameMarksDropped = "auditpipe_marks_dropped_total"
)

// RegisterShip exposes the shipper engine's counters (lib/ship's Metrics,
// plain atomics the engine keeps) in ms, read at scrape time: one source
// of truth, nothing counted twice. audit-ship's wiring is then
//
//	st, err := mf.Start(ctx, prog, mf.Labels(c.exporter, c.kind), stderr)
//	defer st.Close()
//	stagemetrics.RegisterShip(st.Set, m)    // m is the *ship.Metrics given to ship.Options
//
// It registers these names, so the stage must not also ask ms for them
// (the accessor would panic: "already registered as a func"):
//
//	declaragent_audit_export_failures_total{retryable}  both series always, from Failures()
//	declaragent_audit_export_acked_total                 AckedRecords (acks handed to audit-ack)
//	declaragent_audit_export_paused                      Paused (1 once self-paused)
//	auditpipe_export_failures_by_reason_total{reason}    Failures(), summed over retryable
//	auditpipe_retries_total{reason="all"}                Retries (lib/ship does not split retries by reason;
//	                                                     the reasons are in the failures by reason)
//	auditpipe_quarantined_total                          Quarantined
//	auditpipe_duplicates_total                           Duplicates
//	auditpipe_inflight_requests                          Inflight
//	auditpipe_records_out_total                          DeliveredRecords (duplicates included)
//	auditpipe_batches_total                              Batches(): completed or abandoned
//	auditpipe_requests_total                             Requests, retries included
//	auditpipe_splits_total                               Splits (413: batch halved)
//	auditpipe_bisects_total                              Bisects (400 without position: halved to find the poison record)
//	auditpipe_ship_busy_seconds_total                    Batches(): time spent delivering
//	auditpipe_ship_last_acked_seq                        LastAckedSeq: the last ack written (audit-ack commits it later)
//	auditpipe_export_failing_since_seconds               FailingSince: first failure since the last delivery, 0 if none
//	auditpipe_ship_acks_held_records                     AcksHeld: delivered, ack not handed over yet
//	auditpipe_marks_dropped_total                        MarksDropped
//	auditpipe_request_duration_seconds                   histogram of every request's duration (sets m.RequestDone)
//
// The committed cursor (declaragent_audit_export_last_seq) and the head
// (declaragent_audit_last_seq) are audit-ack's; the back-pressure counters
// come from the stage's Stdout wrapper (audit-ship writes acks, not
// records, so its own is rarely non-zero).
func RegisterShip(ms *metrics.Set, m *ship.Metrics) {
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
	ms.CounterFunc(NameRequests, "Export requests sent to the SIEM, retries included.", count(&m.Requests))
	ms.CounterFunc(NameSplits, "Batches halved after a 413 (request too large).", count(&m.Splits))
	ms.CounterFunc(NameBisects, "Batches halved after a 400 without a record position, to find the poison record.", count(&m.Bisects))
	ms.CounterFunc(NameShipBusySeconds, "Seconds spent delivering batches (summed over the batches in flight).",
		func() float64 { _, d := m.Batches(); return d.Seconds() })
	ms.GaugeFunc(NameShipLastAckedSeq, "lastSeq of the last ack audit-ship wrote (audit-ack commits it as the cursor).", count(&m.LastAckedSeq))
	ms.GaugeFunc(NameExportFailingSince, "Unix time of the first failed request to the SIEM since the last delivery; 0 while deliveries go through.",
		func() float64 {
			if ns := m.FailingSince.Load(); ns != 0 {
				return float64(ns) / 1e9
			}
			return 0
		})
	ms.GaugeFunc(NameShipAcksHeld, "Records delivered whose ack audit-ship holds: nobody reads the ack FIFO, or it is full.", count(&m.AcksHeld))
	ms.CounterFunc(NameMarksDropped, "Mark lines (audit-read's control lines for audit-verify) dropped: never shipped.", count(&m.MarksDropped))
}
