/*
audit-sample writes deterministic, realistic audit events for demos, tests and
benchmarks.

Synopsis:

	audit-sample [--count N] [--size BYTES] [--seed S] [--start-ts MS]

# Output

N JSON objects on stdout, one per line, shaped like Declaragent's audit
records: kind (tool_call, channel_event, secret_access, policy_decision,
auth_check, rate_limited), ts, tenantId (_system, acme, globex, initech,
umbrella), actor, tool, decision, durationMs, requestId and a detail object
whose note holds awkward text (quotes, backslashes, tabs, non-ASCII, emoji,
HTML) padded to about --size bytes. Keys are not in canonical order, as a
producer writes them. The same --seed always gives the same events.

# Flags

Each flag can also be set as AUDIT_SAMPLE_<FLAG>.

	-count N       number of events (default 1000)
	-size BYTES    approximate size of each event (default 500, at least 200)
	-seed S        random seed (default 1)
	-start-ts MS   ts of the first event in ms since the epoch; 0 means now
	               (default 1764244800000, so output is reproducible)

# Exit codes

0 ok, 2 usage, 141 stdout closed (quiet). See the shared table in README.md.

# Example

	audit-sample --count 1000 | audit-append --db sample.db
*/
package main
