// Package metrics is the one place where auditpipe binaries expose
// Prometheus metrics: the names operators alert on (docs/contract.md section 4,
// prefix declaragent_audit_), auditpipe's own (prefix auditpipe_), and the
// process and Go runtime collectors.
//
// # Why a library, not a hand-written exposition format
//
// The text format looks trivial and is not. The parts that go wrong by hand
// are exactly the ones an alert depends on:
//
//   - Escaping. Label values must escape backslash, double quote and newline,
//     HELP text escapes backslash and newline but not quotes, and a value must
//     be valid UTF-8. Exporter names come from configuration ("splunk:prod",
//     or anything an operator types); one unescaped quote makes the whole
//     scrape fail to parse and every alert on the target go quiet.
//   - Format versions. Scrapers negotiate between text 0.0.4, OpenMetrics
//     1.0 and protobuf (native histograms), and newer Prometheus versions add
//     UTF-8 names and escaping schemes to the negotiation. promhttp does the
//     content negotiation and compression; expfmt writes the textfile in
//     the exact dialect node_exporter parses.
//   - Numbers and types. +Inf/NaN spelling, histogram _bucket/_sum/_count
//     series with cumulative buckets and the le="+Inf" bucket, one TYPE and
//     HELP per family, no duplicate series: the registry checks these at
//     registration and gather time, where a hand-written writer would let a
//     mistake through to the SIEM team's dashboards.
//   - The process and Go collectors (CPU, RSS, open fds, goroutines, GC)
//     come for free and are what one looks at first when a stage is slow.
//
// client_golang is the reference implementation that Prometheus itself and
// node_exporter use, so what we write is by construction what they read.
//
// # Use
//
// Each binary makes one [Set] (no package-level state) and asks it for the
// metrics it owns; each accessor creates its metric on the first call and
// returns the same one afterwards, so a binary exposes only what it sets:
//
//	ms := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:prod", Vendor: "splunk"})
//	ms.ExportAcked().Add(float64(n))
//	addr, err := ms.Serve(ctx, "127.0.0.1:9464") // --metrics-listen
//
// Counters that a package already keeps as atomics (lib/ship's Metrics,
// audit-batch's Batcher.Interval) are exposed with [Set.CounterFunc],
// [Set.GaugeFunc] and [Set.CounterVecFunc], which read them at scrape time:
// one source of truth, nothing counted twice. See the examples.
//
// Every metric of a Set carries the constant labels exporter and vendor
// when the binary knows them (Labels fields left empty are left out):
// exporter is the cursor name (--exporter, --from-cursor: "splunk:prod"),
// vendor is the sink kind ("splunk", "elastic", "datadog", "file"). The
// contract metrics carry those labels and, for the failures counter,
// retryable; nothing else.
//
// # The names
//
// Every metric name an auditpipe binary may expose is in one table,
// names.go (Defs): its type, variable labels, the code that sets it and its
// help. A Set registers no other name; lib/metrics' tests check its
// contract names against docs/contract.md section 4, and tests/ops checks
// the alert rules and dashboards against it. The package that counts owns
// its collectors: lib/ship's Metrics.Register, lib/stagemetrics' Stdout and
// Flow, and the stages' own.
//
// auditpipe_export_lag_records (head minus cursor) exists only in a process
// that has both declaragent_audit_last_seq and
// declaragent_audit_export_last_seq, and only once both have been set:
// audit-ack, which commits the cursor and has the database open to read
// the head. Computing the gap in PromQL across two processes needs
// "ignoring(instance, job)" and breaks when either is scraped late; the
// alert "gap > 10k" is best written on auditpipe_export_lag_records.
//
// # Exposure
//
// Long-running stages serve /metrics over HTTP ([Set.Serve], flag
// --metrics-listen). Short runs (cron, drain-once) write a node_exporter
// textfile instead ([Set.WriteTextfile], [Set.TextfileLoop]); see
// WriteTextfile for what differs in that mode.
package metrics
