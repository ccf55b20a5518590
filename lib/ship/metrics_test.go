package ship_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/lib/ship"
)

// Register with a hand-filled ship.Metrics: every atomic comes out
// under its metric name, with the exporter and vendor labels, and both
// failure series exist at 0 before any failure. (The failures map can only
// be filled by the engine: tests/alerts runs a real one against hecfake.)
func TestRegisterHandFilled(t *testing.T) {
	var m ship.Metrics
	m.Requests.Store(12)
	m.Retries.Store(3)
	m.DeliveredRecords.Store(900)
	m.Duplicates.Store(5)
	m.Quarantined.Store(2)
	m.Splits.Store(1)
	m.Bisects.Store(4)
	m.AckedRecords.Store(880)
	m.LastAckedSeq.Store(1880)
	m.Inflight.Store(3)
	m.Paused.Store(1)

	ms := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
	m.Register(ms)

	const l = `{exporter="splunk:prod",vendor="splunk"}`
	want := `
# HELP auditpipe_bisects_total Batches halved after a 400 without a record position, to find the poison record.
# TYPE auditpipe_bisects_total counter
auditpipe_bisects_total` + l + ` 4
# HELP auditpipe_duplicates_total Records the SIEM reported it already had.
# TYPE auditpipe_duplicates_total counter
auditpipe_duplicates_total` + l + ` 5
# HELP auditpipe_inflight_requests Export requests in flight.
# TYPE auditpipe_inflight_requests gauge
auditpipe_inflight_requests` + l + ` 3
# HELP auditpipe_quarantined_total Records quarantined as poison (rejected by the SIEM on their own).
# TYPE auditpipe_quarantined_total counter
auditpipe_quarantined_total` + l + ` 2
# HELP auditpipe_records_out_total Record lines written on or delivered.
# TYPE auditpipe_records_out_total counter
auditpipe_records_out_total` + l + ` 900
# HELP auditpipe_requests_total Export requests sent to the SIEM, retries included.
# TYPE auditpipe_requests_total counter
auditpipe_requests_total` + l + ` 12
# HELP auditpipe_retries_total Export requests retried, by reason.
# TYPE auditpipe_retries_total counter
auditpipe_retries_total{exporter="splunk:prod",reason="all",vendor="splunk"} 3
# HELP auditpipe_ship_last_acked_seq lastSeq of the last ack audit-ship wrote (audit-ack commits it as the cursor).
# TYPE auditpipe_ship_last_acked_seq gauge
auditpipe_ship_last_acked_seq` + l + ` 1880
# HELP auditpipe_splits_total Batches halved after a 413 (request too large).
# TYPE auditpipe_splits_total counter
auditpipe_splits_total` + l + ` 1
# HELP declaragent_audit_export_acked_total Records the SIEM acknowledged.
# TYPE declaragent_audit_export_acked_total counter
declaragent_audit_export_acked_total` + l + ` 880
# HELP declaragent_audit_export_failures_total Failed export requests; retryable="false" is a permanent failure (bad token, schema reject).
# TYPE declaragent_audit_export_failures_total counter
declaragent_audit_export_failures_total{exporter="splunk:prod",retryable="false",vendor="splunk"} 0
declaragent_audit_export_failures_total{exporter="splunk:prod",retryable="true",vendor="splunk"} 0
# HELP declaragent_audit_export_paused 1 while the exporter has paused itself after consecutive non-retryable failures, else 0.
# TYPE declaragent_audit_export_paused gauge
declaragent_audit_export_paused` + l + ` 1
`
	names := []string{
		"auditpipe_bisects_total", "auditpipe_duplicates_total", "auditpipe_inflight_requests",
		"auditpipe_quarantined_total", "auditpipe_records_out_total", "auditpipe_requests_total",
		"auditpipe_retries_total", "auditpipe_ship_last_acked_seq", "auditpipe_splits_total",
		"declaragent_audit_export_acked_total", "declaragent_audit_export_failures_total",
		"declaragent_audit_export_paused", "auditpipe_export_failures_by_reason_total",
	}
	if err := testutil.GatherAndCompare(ms.Registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// Values are read at scrape time: a later change shows.
	m.Paused.Store(0)
	m.AckedRecords.Add(20)
	if err := testutil.GatherAndCompare(ms.Registry, strings.NewReader(`
# HELP declaragent_audit_export_acked_total Records the SIEM acknowledged.
# TYPE declaragent_audit_export_acked_total counter
declaragent_audit_export_acked_total`+l+` 900
# HELP declaragent_audit_export_paused 1 while the exporter has paused itself after consecutive non-retryable failures, else 0.
# TYPE declaragent_audit_export_paused gauge
declaragent_audit_export_paused`+l+` 0
`), "declaragent_audit_export_acked_total", "declaragent_audit_export_paused"); err != nil {
		t.Error(err)
	}
	// The batches counters exist (0 batches, 0 s busy).
	if n, err := testutil.GatherAndCount(ms.Registry, "auditpipe_batches_total", "auditpipe_ship_busy_seconds_total"); err != nil || n != 2 {
		t.Errorf("batch series = %d, %v; want 2", n, err)
	}
}

// The stage must not ask the Set for a name Register registered.
func TestRegisterOwnsItsNames(t *testing.T) {
	ms := metrics.New("audit-ship", metrics.Labels{})
	(&ship.Metrics{}).Register(ms)
	defer func() {
		if recover() == nil {
			t.Error("asking for ExportAcked after Register did not panic")
		}
	}()
	ms.ExportAcked()
}

// Register feeds auditpipe_request_duration_seconds from the engine's
// RequestDone hook.
func TestRegisterRequestDuration(t *testing.T) {
	var m ship.Metrics
	ms := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
	m.Register(ms)
	if m.RequestDone == nil {
		t.Fatal("Register left RequestDone unset")
	}
	m.RequestDone(30 * time.Millisecond)
	m.RequestDone(2 * time.Second)
	mfs, err := ms.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "auditpipe_request_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 2 || h.GetSampleSum() < 2.029 || h.GetSampleSum() > 2.031 {
			t.Fatalf("count %d sum %v, want 2 and 2.03", h.GetSampleCount(), h.GetSampleSum())
		}
		for _, b := range h.GetBucket() {
			want := uint64(0)
			if b.GetUpperBound() >= 0.05 {
				want = 1
			}
			if b.GetUpperBound() >= 2.5 {
				want = 2
			}
			if b.GetCumulativeCount() != want {
				t.Fatalf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
		return
	}
	t.Fatal("auditpipe_request_duration_seconds not exposed")
}
