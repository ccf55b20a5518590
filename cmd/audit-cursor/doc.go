/*
audit-cursor lists, shows, creates, moves back and deletes the exporters'
cursors in an audit database.

Synopsis:

	audit-cursor list   --db PATH [--json]
	audit-cursor show   --db PATH [--json] NAME
	audit-cursor create --db PATH [--json] NAME
	audit-cursor move   --db PATH --to-seq N [--hash HEX] [--skip-records] [--json] NAME
	audit-cursor delete --db PATH [--json] NAME

NAME and the flags may come in any order; "--" ends the flags (for a name
that starts with a dash).

# Cursors

A cursor is the last record delivered to one exporter (a SIEM, named
<kind>:<instance> by convention, e.g. splunk:prod). It is one row in each of
two tables (docs/contract.md section 1, docs/design.md "Cursor storage"):

	audit_export_cursor(exporter_name, last_seq, updated_at)             Declaragent's
	auditpipe_cursor_hash(exporter_name, last_seq, last_hash, updated_at) auditpipe's

audit-ack writes both in one transaction after each delivery, and
audit-read --from-cursor NAME starts after last_seq, audit-verify
--from-cursor NAME proves the first record links to last_hash.

# Commands

list prints every cursor: its name, last_seq, the lag to the head of the log
(records written after last_seq), when it last moved (updated_at, UTC) and
last_hash, the record_hash of the last record shipped. last_hash is "-" when
nothing was shipped, or when the cursor was moved by another tool (Declaragent
itself), which does not write auditpipe_cursor_hash.

show prints one cursor.

create creates the cursor NAME at seq 0, nothing shipped yet: the first run
of its pipeline ships the whole log. audit-read and audit-verify
(--from-cursor) and audit-ack (--exporter) refuse a name that has no cursor
while the database has others, since that is most often a typo that would
re-ship everything; creating the cursor first is how a new exporter is
added on purpose (the other way is --new-cursor on the first run of each of
the three). An existing NAME is refused (exit 2).

move sets the cursor NAME to --to-seq N: the next run of its pipeline ships
N+1 onwards again (use it after a SIEM lost data, or to re-ship into a new
index). Both tables are written in one transaction, as audit-ack would have
left them had N been the last record shipped: last_seq = N and last_hash =
the record_hash of the row at N ("" for N = 0, the beginning of the log).
Declaragent writes audit_export_cursor with an upsert that never lowers
last_seq, so a move back is an explicit UPDATE of that row; Declaragent's
tools read the moved value as their own.

move checks the row before it moves anything:

  - N must be a row of the log (0 to the head; a removed row is refused);
  - with --hash HEX, the row's record_hash must be HEX: the operator's check
    that this database holds the record they mean (for instance the last
    record the SIEM has, from audit-fetch). Otherwise exit 3;
  - the row must match its own record_hash (sha256 of its prev_hash and
    record_json); an erased row (a Declaragent tombstone) is accepted.
    Otherwise exit 3: anchoring the next verification on a row that fails
    its own hash would hide tampering;
  - a move forward (N above last_seq) skips records, which are then never
    shipped to this exporter. It is refused unless --skip-records is given,
    and then logged on stderr with the seqs skipped.

Stop the exporter's pipeline (its audit-ack) before a move: a running
audit-ack commits its next ack on top of the moved cursor (its upsert moves
a lower cursor forward again), undoing the move.

delete removes the cursor from both tables. The exporter's next run would
start at the beginning of the log: while other cursors exist,
audit-read --from-cursor NAME (and audit-verify, audit-ack) then refuse the
name unless given --new-cursor.

Every change is logged on stderr, one line, whatever the output format:

	audit-cursor: audit.db: moved splunk:prod back from seq 25 to seq 10: its next run ships seq 11..25 (15 records) again
	audit-cursor: audit.db: moved splunk:prod FORWARD from seq 10 to seq 30 (--skip-records): records seq 11..30 (20 records) are never shipped to splunk:prod
	audit-cursor: audit.db: created cursor elastic:prod at seq 0: its first run ships seq 1..60 (60 records)
	audit-cursor: audit.db: deleted cursor splunk:prod (it was at seq 30); ...

A NAME that does not exist is refused (exit 2) with the names there are and
the closest one ("did you mean").

# Output

Text for people by default. With --json, one JSON object on stdout:

	list:   {"db":"audit.db","head":60,"cursors":[CURSOR,...]}
	show:   CURSOR with "head"
	create: {"exporter":NAME,"created":CURSOR}
	move:   {"exporter":NAME,"from":CURSOR,"to":CURSOR,"skippedRecords":N}
	delete: {"exporter":NAME,"deleted":CURSOR}

where CURSOR is

	{"exporter":"splunk:prod","lastSeq":25,"lastHash":"<64 hex, or empty>",
	 "updatedAt":"2026-12-03T09:33:44.578Z","updatedAtMs":1796290424578,"lag":35}

# Flags

Each flag can also be set as AUDIT_CURSOR_<FLAG>, or in a file named by -config,
except -skip-records: skipping records is decided on the command line only.

	-db PATH           the audit database (required; list and show open it read-only)
	-json              machine-readable output on stdout
	-busy-timeout D    wait for a locked database (default 10s)
	-to-seq N          move: the seq to move to, the last record counted as shipped (0: the beginning)
	-hash HEX          move: the record_hash expected at -to-seq; refuse the move otherwise
	-skip-records      move: allow a move forward; the records skipped are never shipped (logged)

# Exit codes

	0    done
	1    runtime failure (writing stdout)
	2    usage: unknown command or cursor (with a did-you-mean), create of an existing cursor, a move forward without -skip-records, a seq past the head or not in the log
	3    move: the row at -to-seq is not -hash, or does not match its own hash; nothing moved
	5    database missing, not an audit database, or locked too long

# Example

	audit-cursor list --db /var/lib/declaragent/audit.db
	systemctl stop auditpipe-ship@prod auditpipe-ack@prod
	audit-cursor move --db /var/lib/declaragent/audit.db splunk:prod --to-seq 41999
	systemctl start auditpipe-ship@prod auditpipe-ack@prod
*/
package main
