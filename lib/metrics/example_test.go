package metrics_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/auditpipe/auditpipe/lib/metrics"
)

// audit-batch: the Batcher keeps the interval itself, so the gauge reads it
// at scrape time; stdout is wrapped to count back-pressure.
func ExampleSet_GaugeFunc() {
	var interval atomic.Int64 // stands in for (*auditbatch.Batcher).Interval
	interval.Store(int64(250 * time.Millisecond))

	ms := metrics.New("audit-batch", metrics.Labels{})
	ms.GaugeFunc(metrics.NameBatchIntervalMs, "", func() float64 {
		return float64(time.Duration(interval.Load())) / float64(time.Millisecond)
	})
	stdout := metrics.NewBlockingWriter(os.Stdout, 0, ms.BackpressurePaused(), ms.BackpressureSeconds())
	_ = stdout // give it to ndjson.NewWriter

	interval.Store(int64(800 * time.Millisecond))
	b, _ := testutil.GatherAndFormat(ms.Registry, expfmt.TypeTextPlain, metrics.NameBatchIntervalMs)
	fmt.Print(string(b))
	// Output:
	// # HELP declaragent_audit_batch_interval_ms Current adaptive batch interval in milliseconds; stuck at the maximum means the loop is in emergency widen mode.
	// # TYPE declaragent_audit_batch_interval_ms gauge
	// declaragent_audit_batch_interval_ms 800
}

// audit-ship: lib/ship keeps plain atomic counters; expose them, not copies.
func ExampleSet_CounterVecFunc() {
	var acked atomic.Int64                                                  // ship.Metrics.AckedRecords
	failures := map[bool]map[string]int64{true: {"http_503": 2}, false: {}} // ship.Metrics.Failures()

	ms := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
	ms.CounterFunc(metrics.NameExportAcked, "", func() float64 { return float64(acked.Load()) })
	ms.CounterVecFunc(metrics.NameExportFailures, "", []string{metrics.LabelRetryable},
		func(emit func(float64, ...string)) {
			for _, retryable := range []bool{false, true} { // both, always: see ExportFailures
				var n int64
				for _, c := range failures[retryable] {
					n += c
				}
				emit(float64(n), strconv.FormatBool(retryable))
			}
		})
	ms.CounterVecFunc(metrics.NameExportFailuresByReason, "", []string{metrics.LabelReason},
		func(emit func(float64, ...string)) {
			for _, byReason := range failures {
				for reason, n := range byReason {
					emit(float64(n), reason)
				}
			}
		})
	acked.Add(40)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := ms.Serve(ctx, "127.0.0.1:0"); err != nil { // --metrics-listen
		fmt.Println(err)
	}
	b, _ := testutil.GatherAndFormat(ms.Registry, expfmt.TypeTextPlain, metrics.NameExportAcked, metrics.NameExportFailures)
	fmt.Print(string(b))
	// Output:
	// # HELP declaragent_audit_export_acked_total Records the SIEM acknowledged.
	// # TYPE declaragent_audit_export_acked_total counter
	// declaragent_audit_export_acked_total{exporter="splunk:prod",vendor="splunk"} 40
	// # HELP declaragent_audit_export_failures_total Failed export requests; retryable="false" is a permanent failure (bad token, schema reject).
	// # TYPE declaragent_audit_export_failures_total counter
	// declaragent_audit_export_failures_total{exporter="splunk:prod",retryable="false",vendor="splunk"} 0
	// declaragent_audit_export_failures_total{exporter="splunk:prod",retryable="true",vendor="splunk"} 2
}
