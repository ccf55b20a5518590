// Package vlogs starts and stops a real VictoriaLogs server (v1.52.1) for
// tests and the demo, and queries it. VictoriaLogs speaks the intake side of
// all three SIEM protocols auditpipe ships to, so the sinks can be tested
// end to end against a real log store on 127.0.0.1.
//
//	s, err := vlogs.Start(ctx, vlogs.Options{})   // or vlogs.Require(t) in a test
//	defer s.Stop()
//	// POST to s.URL()+"/services/collector/event", "/insert/elasticsearch/_bulk", "/api/v2/logs"
//	n, err := s.WaitCount(ctx, `fields.run:="x"`, 3, 10*time.Second)
//	rows, err := s.Query(ctx, `fields.run:="x" | sort by (_time)`)
//
// The binary is installed by scripts/install-victorialogs.sh into
// .tools/bin (see Options.Binary for how it is found). Require skips a test
// without it, or fails it when CI=true.
//
// # What VictoriaLogs v1.52.1 does with what the sinks send
//
// Observed against the real server and pinned by the tests in this package,
// so an upgrade that changes any of it fails them. Field values always come
// back as strings; a query row is a flat object of string fields.
//
// Common to all three protocols:
//   - _msg is byte-exact. A string holding a whole record line (quotes,
//     backslashes, JSON text, non-ASCII, astral characters, U+2028/U+2029,
//     control characters, leading and trailing blanks) comes back identical,
//     so a record line sent as the message can be re-verified from a query.
//   - Nested objects are flattened to dotted field names ("record.kind");
//     arrays are stored as their compact JSON text (`[1,{"b":2}]`); numbers
//     keep their source text ("1.50" stays "1.50", 12345678901234567890 is
//     not rounded); booleans become "true"/"false"; null and {} fields vanish.
//   - A row with no message gets _msg = "missing _msg field; see
//     https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field".
//   - An entry over 2 MiB (its estimated size, field names included) is
//     dropped with only a server-side warning; the request still succeeds.
//     Raising -insert.maxLineSizeBytes (Start uses 64 MiB; the default 256 KiB
//     silently skips longer bulk lines, per the source) does not lift this.
//   - Content-Encoding: gzip bodies are accepted.
//   - Content-Type: application/x-www-form-urlencoded (curl's default) makes
//     it read the body as a form: the data vanishes and it still answers
//     success. application/json, application/x-ndjson, text/plain or no
//     Content-Type all work.
//   - No authentication is checked (HEC token, Datadog key, ES API key).
//   - Rows become searchable about 1 s after ingest; WaitCount forces a
//     flush (GET /internal/force_flush) so tests need not wait.
//   - Rows older than -retentionPeriod (default 7d) or newer than now +
//     -futureRetention (default 2d) are rejected at ingest; Start widens both
//     to 100y so any test timestamp is kept.
//
// Splunk HEC, POST /services/collector/event (also /event/1.0):
//   - Answers 200 {"text":"Success","code":0}. Events may be concatenated
//     with or without newlines.
//   - A string "event" becomes _msg, byte-exact. An object "event" is
//     flattened into event.* fields (event.seq, event.record.kind, ...) and
//     _msg is missing, unless it has a "log", "line" or "message" key
//     (event.log / event.line / event.message become _msg).
//   - "fields" entries become fields.<name>; an array value is stored as its
//     JSON text (fields.tags = `["x","y"]`).
//   - "host", "source", "sourcetype" become plain fields and are the stream
//     (_stream = {host="h1",source="auditpipe",sourcetype="auditpipe:record"};
//     absent ones are left out, {} if none). "index" is a plain field "index".
//   - "time" is consumed (no "time" field is left) and sets _time. Its unit is
//     guessed from the magnitude and the decimal text is parsed exactly, with
//     no float rounding: 1764244800.123 and "1764244800.123" (a string works
//     too) give 2025-11-27T12:00:00.123Z, 1764244800 whole seconds, and
//     1764244800123 is read as milliseconds (real Splunk wants seconds, so the
//     sink sends seconds with three decimals). Microseconds are kept
//     (.123456). Without "time", _time is the ingest time. _time is printed
//     in RFC 3339 with trailing zeros trimmed (…:00.12Z for .120).
//   - A malformed event after the first: the events before it are stored,
//     it and all later ones are dropped, and the answer is still 200 code 0.
//     A malformed first event gives HTTP 400.
//   - No indexer acks, no /services/collector/raw; GET
//     /services/collector/health answers 200 with an empty body.
//
// Elasticsearch bulk, POST /insert/elasticsearch/_bulk:
//   - Answers 200 {"took":N,"errors":false,"items":[{"create":{"status":201}},…]}
//     with one item per document, no _index, _id or error. _index and _id
//     are ignored: two creates with the same _id both store a row (no 409).
//   - Documents keep nested objects only as flattened dotted fields.
//   - _time comes from a "_time" field and _msg from a "_msg" field unless
//     the query string names others: ?_time_field=@timestamp&_msg_field=message
//     (or headers VL-Time-Field, VL-Msg-Field). Without them "@timestamp" and
//     "message" stay ordinary fields and _time is the ingest time.
//     @timestamp accepts RFC 3339 with milliseconds, exact.
//
// Datadog, POST /api/v2/logs (a JSON array):
//   - Answers 202 {}.
//   - A string "message" becomes _msg byte-exact; unlike Datadog it is not
//     parsed as JSON into attributes.
//   - "timestamp" (integer milliseconds) sets _time. A log without one
//     inherits the previous log's timestamp within the same request (the
//     first one gets the request time), so the sink sets it on every log.
//   - "ddtags" "env:test,solo,k:v:w" becomes fields env=test,
//     solo=no_label_value, k=v:w; ddsource, service, hostname, status are
//     plain fields; _stream is {}.
//   - Any other attribute must be a string: a number or object fails the
//     request with 400, and the logs before the bad one are kept.
package vlogs
