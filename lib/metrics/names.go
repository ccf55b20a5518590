package metrics

import "slices"

// The contract metric names (docs/contract.md section 4). Operators alert on
// them: never rename them or change their labels.
const (
	NameBackpressurePaused = "declaragent_audit_backpressure_paused_total"
	NameExportFailures     = "declaragent_audit_export_failures_total"
	NameBatchIntervalMs    = "declaragent_audit_batch_interval_ms"
	NameExportLastSeq      = "declaragent_audit_export_last_seq"
	NameLastSeq            = "declaragent_audit_last_seq"
	NameExportAcked        = "declaragent_audit_export_acked_total"
	NameExportPaused       = "declaragent_audit_export_paused"
)

// auditpipe's own metric names.
const (
	NameBackpressureSeconds    = "auditpipe_backpressure_paused_seconds_total"
	NameBlockedSeconds         = "auditpipe_backpressure_blocked_seconds"
	NameExportFailuresByReason = "auditpipe_export_failures_by_reason_total"
	NameRecordsIn              = "auditpipe_records_in_total"
	NameRecordsOut             = "auditpipe_records_out_total"
	NameBytesIn                = "auditpipe_bytes_in_total"
	NameBytesOut               = "auditpipe_bytes_out_total"
	NameStageLastSeq           = "auditpipe_stage_last_seq"
	NameBatches                = "auditpipe_batches_total"
	NameRetries                = "auditpipe_retries_total"
	NameQuarantined            = "auditpipe_quarantined_total"
	NameInflightRequests       = "auditpipe_inflight_requests"
	NameRequestDuration        = "auditpipe_request_duration_seconds"
	NameDuplicates             = "auditpipe_duplicates_total"
	NameVerifyBreaks           = "auditpipe_verify_breaks_total"
	NameExportLag              = "auditpipe_export_lag_records"
	NameRequests               = "auditpipe_requests_total"
	NameSplits                 = "auditpipe_splits_total"
	NameBisects                = "auditpipe_bisects_total"
	NameShipBusySeconds        = "auditpipe_ship_busy_seconds_total"
	NameShipLastAckedSeq       = "auditpipe_ship_last_acked_seq"
	// NameExportFailingSince is the Unix time of the first failed request
	// since the last delivery, 0 while deliveries go through: alert on
	// time() - x > 300 and x > 0.
	NameExportFailingSince = "auditpipe_export_failing_since_seconds"
	NameShipAcksHeld       = "auditpipe_ship_acks_held_records"
	NameMarksDropped       = "auditpipe_marks_dropped_total"
	NameBatchMaxIntervalMs = "auditpipe_batch_max_interval_ms"
	NameBatchesClosed      = "auditpipe_batches_closed_total"
	NameCheckpointsWritten = "auditpipe_checkpoints_written_total"
	NameSealedSize         = "auditpipe_checkpoint_sealed_size"
	NameUnwitnessedSeconds = "auditpipe_checkpoint_unwitnessed_seconds"
	NameWitnessedSize      = "auditpipe_checkpoint_witnessed_size"
	NameWitnessRefusals    = "auditpipe_witness_refusals_total"

	// audit-consume (the Kafka fleet's central side, issue 15).
	NameConsumeAcks       = "auditpipe_consume_acks_total"
	NameConsumeCommits    = "auditpipe_consume_commits_total"
	NameConsumeInflight   = "auditpipe_consume_inflight_records"
	NameConsumeHeldChains = "auditpipe_consume_held_chains"
)

// def is one known metric: its type, variable labels, the code that counts
// it (Owner), and its help text ("": each owner gives its own, as for
// auditpipe_marks_dropped_total, whose help says what the stage does with
// a mark).
type def struct {
	name   string
	kind   kind
	labels []string
	owner  string
	help   string
}

// table is THE list of metric names: a Set registers no other (CounterFunc
// and friends panic on a name not here), tests/ops checks rules and panels
// against it, and lib/metrics' tests check its contract names against
// docs/contract.md section 4. The contract metrics carry the constant
// labels exporter and vendor and, for the failures counter, retryable;
// nothing else. Owner is who sets the metric: the package that counts it,
// and the stage it runs in.
var table = []def{
	// Contract metrics (docs/contract.md section 4).
	{NameBackpressurePaused, kindCounter, nil, "every stage: lib/stagemetrics Stage.Stdout (BlockingWriter on stdout)",
		"Writes to stdout that blocked longer than the threshold (default 100ms): the next stage, ultimately the SIEM, is slow and the pipeline is throttling its input."},
	{NameExportFailures, kindCounter, []string{LabelRetryable}, "audit-ship: lib/ship Metrics.Register",
		"Failed export requests; retryable=\"false\" is a permanent failure (bad token, schema reject)."},
	{NameBatchIntervalMs, kindGauge, nil, "audit-batch",
		"Current adaptive batch interval in milliseconds; stuck at the maximum means the loop is in emergency widen mode."},
	{NameExportLastSeq, kindGauge, nil, "audit-ack (the committed cursor)",
		"Last seq committed to the exporter's cursor (audit_export_cursor.last_seq)."},
	{NameLastSeq, kindGauge, nil, "audit-ack (MAX(seq), polled); audit-read --follow; audit-verify --db",
		"Head of the audit log: the highest seq in audit_records."},
	{NameExportAcked, kindCounter, nil, "audit-ship: lib/ship Metrics.Register (acks handed to audit-ack)",
		"Records the SIEM acknowledged."},
	{NameExportPaused, kindGauge, nil, "audit-ship: lib/ship Metrics.Register",
		"1 while the exporter has paused itself after consecutive non-retryable failures, else 0."},

	// auditpipe's own.
	{NameBackpressureSeconds, kindCounter, nil, "every stage: lib/stagemetrics Stage.Stdout",
		"Seconds spent in writes to stdout that blocked longer than the back-pressure threshold."},
	{NameBlockedSeconds, kindGauge, nil, "every stage: lib/stagemetrics Stage.Stdout",
		"How long the write to stdout in progress has been blocked, in seconds " +
			"(0 if none has been blocked longer than the back-pressure threshold): a stalled pipeline, " +
			"which adds no pauses to " + NameBackpressurePaused + " until the write returns."},
	{NameExportFailuresByReason, kindCounter, []string{LabelReason}, "audit-ship: lib/ship Metrics.Register",
		"Failed export requests by reason (the detail behind declaragent_audit_export_failures_total)."},
	{NameRecordsIn, kindCounter, nil, "filter stages: lib/stagemetrics Flow; audit-ack", "Record lines read."},
	{NameRecordsOut, kindCounter, nil, "filter stages: lib/stagemetrics Flow; audit-batch; audit-ship (delivered, duplicates included); audit-consume",
		"Record lines written on or delivered."},
	{NameBytesIn, kindCounter, nil, "filter stages: lib/stagemetrics Flow", "Bytes of record lines read."},
	{NameBytesOut, kindCounter, nil, "filter stages: lib/stagemetrics Flow; audit-batch", "Bytes of record lines written on or delivered."},
	{NameStageLastSeq, kindGauge, nil, "filter stages: lib/stagemetrics Flow",
		"Seq of the last record this stage passed on (0 before the first)."},
	{NameBatches, kindCounter, nil, "audit-batch (framed); audit-ship (completed or abandoned)",
		"Batches framed (audit-batch) or delivered (audit-ship)."},
	{NameRetries, kindCounter, []string{LabelReason}, "audit-ship: lib/ship Metrics.Register (reason=\"all\": the reasons are in the failures by reason)",
		"Export requests retried, by reason."},
	{NameQuarantined, kindCounter, nil, "audit-ship: lib/ship Metrics.Register",
		"Records quarantined as poison (rejected by the SIEM on their own)."},
	{NameInflightRequests, kindGauge, nil, "audit-ship: lib/ship Metrics.Register", "Export requests in flight."},
	{NameRequestDuration, kindHistogram, nil, "audit-ship: lib/ship Metrics.Register (every attempt)", "Duration of export requests to the SIEM."},
	{NameDuplicates, kindCounter, nil, "audit-ship: lib/ship Metrics.Register", "Records the SIEM reported it already had."},
	{NameVerifyBreaks, kindCounter, []string{LabelReason}, "audit-verify",
		"Chain verification findings, by reason code (hash_mismatch, prev_link, seq_gap, ...)."},
	{NameExportLag, kindGauge, nil, "the Set itself, in a process with both seq gauges set (audit-ack)",
		"Records between the head of the log and the exporter's committed cursor (declaragent_audit_last_seq - declaragent_audit_export_last_seq, at least 0)."},
	{NameRequests, kindCounter, nil, "audit-ship: lib/ship Metrics.Register", "Export requests sent to the SIEM, retries included."},
	{NameSplits, kindCounter, nil, "audit-ship: lib/ship Metrics.Register", "Batches halved after a 413 (request too large)."},
	{NameBisects, kindCounter, nil, "audit-ship: lib/ship Metrics.Register",
		"Batches halved after a 400 without a record position, to find the poison record."},
	{NameShipBusySeconds, kindCounter, nil, "audit-ship: lib/ship Metrics.Register",
		"Seconds spent delivering batches (summed over the batches in flight)."},
	{NameShipLastAckedSeq, kindGauge, nil, "audit-ship: lib/ship Metrics.Register",
		"lastSeq of the last ack audit-ship wrote (audit-ack commits it as the cursor)."},
	{NameExportFailingSince, kindGauge, nil, "audit-ship: lib/ship Metrics.Register",
		"Unix time of the first failed request to the SIEM since the last delivery; 0 while deliveries go through."},
	{NameShipAcksHeld, kindGauge, nil, "audit-ship: lib/ship Metrics.Register",
		"Records delivered whose ack audit-ship holds: nobody reads the ack FIFO, or it is full."},
	{NameMarksDropped, kindCounter, nil, "audit-batch; audit-ship: lib/ship Metrics.Register", ""},
	{NameBatchMaxIntervalMs, kindGauge, nil, "audit-batch", ""},
	{NameBatchesClosed, kindCounter, []string{LabelReason}, "audit-batch", ""},
	{NameCheckpointsWritten, kindCounter, nil, "audit-checkpoint seal", ""},
	{NameSealedSize, kindGauge, nil, "audit-checkpoint seal", ""},
	{NameUnwitnessedSeconds, kindGauge, nil, "audit-checkpoint seal --witness", ""},
	{NameWitnessedSize, kindGauge, nil, "audit-checkpoint seal --witness", ""},
	{NameWitnessRefusals, kindCounter, nil, "audit-checkpoint seal --witness", ""},
	{NameConsumeAcks, kindCounter, nil, "audit-consume",
		"Ack lines taken from the --acks FIFO (each names its chain): what the SIEM confirmed."},
	{NameConsumeCommits, kindCounter, nil, "audit-consume",
		"Offset commits that succeeded (each after the anchors of the chains it covers were stored)."},
	{NameConsumeInflight, kindGauge, nil, "audit-consume",
		"Records written and not yet acked (held chains' records left out); at --max-in-flight fetching stops."},
	{NameConsumeHeldChains, kindGauge, nil, "audit-consume",
		"Chains held by audit-verify (a hold line: tampered, or first seen mid-way without an anchor); their partitions' offsets are pinned."},
}

// defs is table by name.
var defs = func() map[string]def {
	m := make(map[string]def, len(table))
	for _, d := range table {
		if _, dup := m[d.name]; dup {
			panic("metrics: " + d.name + " twice in the table")
		}
		m[d.name] = d
	}
	return m
}()

// Def describes one metric of the table of names.
type Def struct {
	Name   string
	Type   string   // "counter", "gauge" or "histogram"
	Labels []string // variable labels (exporter and vendor are constant labels, not listed)
	Owner  string   // the stage, and package, that sets it
	Help   string   // "": each owner gives its own
}

// Defs returns the table of every metric name an auditpipe binary may
// expose, contract names first.
func Defs() []Def {
	out := make([]Def, len(table))
	for i, d := range table {
		out[i] = Def{Name: d.name, Type: d.kind.String(), Labels: slices.Clone(d.labels), Owner: d.owner, Help: d.help}
	}
	return out
}

// Known reports whether name is in the table of names.
func Known(name string) bool { _, ok := defs[name]; return ok }
