/*
audit-checkpoint signs checkpoints of the audit log and checks the log
against them: tamper evidence beyond the hash chain.

Synopsis:

	audit-checkpoint keygen --name NAME --signer FILE --verifier FILE
	audit-checkpoint seal --signer KEY --out FILE [--state FILE] [--every N] [--interval D] [--witness VKEY=URL...] [--emit-checkpoints] < records > records
	audit-checkpoint verify --verifier FILE... --checkpoints FILE --state FILE [--init] [--max-unsealed D] [--witness-key FILE... --quorum K] [--report FILE] [RECORDS ...]
	audit-checkpoint prove --verifier FILE... --checkpoints FILE --seq N [--size S] [--witness-key FILE... --quorum K] [--out FILE] [RECORDS ...]
	audit-checkpoint check-proof --verifier FILE... [--witness-key FILE... --quorum K] [PROOF]
	audit-checkpoint rotate --signer KEY --new-signer KEY --new-verifier FILE --out FILE
	audit-checkpoint check-store --verifier FILE... --checkpoints FILE [--reference FILE] [--every N] [--witness-key FILE...] [RECORDS ...]

# Why

The hash chain shows that each record follows the one before. It cannot
show rows cut off the end, a rewrite from some row on with every later hash
recomputed, or a whole chain replaced: anyone with write access to the
database can produce a chain that verifies. A checkpoint fixes the log at a
size with a signature by a key that the log's writer does not hold; any
later log must contain it. The records form an RFC 6962 Merkle tree (leaf
i is the recordHash of seq i+1) and a checkpoint is a C2SP tlog-checkpoint
signed as an Ed25519 note (the Go checksum database's formats):

	example.com/audit/prod
	1000
	xiZ8+zaIeLJSkGOu81nkhNxFztekDjqR8jD+c6GmMsM=

	— example.com/audit/prod lUHje0ohvI8Wc+BB19xqslKiEpbs...

(origin, size, root in base64, a blank line, the signature). See
lib/checkpoint and docs/threat-model.md for what this shows and what it
cannot.

# keygen

Generates a key pair named NAME (use the log's origin): the signer key
(mode 0600) and the verifier key (mode 0644, also printed on stdout).
Existing files are never overwritten.

The signer key belongs with the shipper, the process that runs seal and
sends records to the SIEM, under another user than the process that writes
the log (Declaragent): a writer that can sign can sign its own rewrites.
The verifier key is public: give it to every auditor.

# Signer keys: references, external signers, rotation

seal's --signer (and rotate's --signer and --new-signer) takes a key file
(mode 0600 or stricter) or a secret reference as every other secret:
file:PATH (the same permission check), env:NAME, exec:COMMAND (the command
prints the key text, e.g. exec:vault kv get -field=key secret/ckpt). A key
that does not load is exit 2, and the message never shows the value.

To keep the key out of auditpipe (a KMS, an HSM, an ssh-agent), seal
--external-signer COMMAND --external-signer-key ckpt.pub: COMMAND (split
into words without a shell) runs once per checkpoint with
AUDITPIPE_SIGNER_PROTOCOL=1, AUDITPIPE_SIGNER_KEY_NAME and
AUDITPIPE_SIGNER_KEY_ID in its environment, reads the message to sign (the
checkpoint's note text) on stdin, prints the base64 of the 64-byte Ed25519
signature and exits 0 within 30 s. Each signature is checked against
ckpt.pub before it is used; a failure stops sealing (exit 1) with the
command's stderr.

rotate announces a new key in the checkpoint file: a line
{"rotation":"<note>"} whose note ("auditpipe key rotation v1", the origin,
the new verifier key) is signed by the old and the new key. verify and
prove, trusting the old key, follow it (and chains of rotations, in any
order) and trust the new key; auditors need no new --verifier. A rotation
is not a revocation (docs/threat-model.md, Key operations). verify prints
"note key rotation followed: line L: NAME+HASH"; a rotation no trusted key
signed is "unknown_key".

# seal

A filter: reads record lines (docs/contract.md section 2) on stdin, verifies
their chain as audit-verify does (fail-closed), writes them to stdout byte
for byte, and appends a signed checkpoint of the tree to --out:

  - whenever the tree's size is a multiple of --every (default 10000; 0: never
    by count), so that separate runs sign the same sizes and can be compared;
  - every --interval (default 1m; 0: never by time) if records arrived;
  - at the end of input, after a chain break (covering the records before it),
    and at once on the first SIGINT or SIGTERM, even while waiting for input.

The checkpoint file is NDJSON, one {"checkpoint":"<signed note>"} per line,
appended in one write and fsynced. Without --emit-checkpoints it is not
written to stdout: the record stream stays a pure chain, byte for byte.

--emit-checkpoints also writes each checkpoint line (and each cosigned
note) on stdout, in band, exactly as appended to --out, for audit-batch and
audit-ship to carry to the SIEM as an event of its own (see "Shipping the
checkpoints"): a checkpoint of size N right after record N (never later);
one signed by the timer or a signal after the record that was last then; a
cosigned note after the record that was last when the witness answered.
A run that starts inside the sealed part (a restart from the shipper's
cursor, seq F) first re-emits the checkpoint of size F-1 (and the newest
cosigned note below it), then every checkpoint of --out again after its
record: the lines the cursor may not cover (see "Shipping the
checkpoints"). Duplicates in the SIEM are harmless.

Mark lines (a line starting {"mark":, audit-read's control lines for
audit-verify) are dropped: never sealed into the tree, never passed on,
never an error, counted in the summary ("N mark lines dropped"). verify and
prove skip them too, so audit-read's output can be given to them as it is.

Like every stage, seal exits 141 at once, quietly, when its stdout's reader
goes away (also while its input is quiet), after sealing what the tree holds.

The tree covers the log from seq 1. With --state, seal keeps the tree's
frontier between runs (at most 63 hashes, plus the size, root, the last
recordHash and the last checkpoint), written atomically (temporary file,
fsync, rename; mode 0600) before each checkpoint is appended. A run then
accepts a stream that starts anywhere from seq 1 to the state's size + 1:

  - records the state already covers are passed through, their chain is
    checked, and the record at the state's size must have the recordHash
    that was sealed; if not, the log changed since it was sealed: seal
    stops, signs nothing, and exits 3;
  - a stream that starts past the state's size + 1 is refused (exit 4) with
    the seqs that were never sealed and the command that seals them.

Without --state each run builds the tree from seq 1 and needs the whole log.
If --state names a missing file while --out already holds checkpoints, seal
refuses to start (exit 2): a sealer that lost its state would sign whatever
the log holds now. Should a run stop between writing the state and appending
the checkpoint, the next run appends the state's checkpoint to --out.

Where it runs: in the shipping pipeline after audit-verify, so that what is
signed is what is shipped; or as a pipeline of its own from the database.
A shipping pipeline that starts from a cursor does not start at seq 1, so
seal the log once on its own first, to create the state:

	audit-read --db audit.db | audit-checkpoint seal --signer ckpt.key --out checkpoints.ndjson --state seal.state >/dev/null

Checkpoints are only as good as the copies kept where the log's writer
cannot reach them: see Shipping the checkpoints.

A shipping pipeline restarted from its cursor starts at cursor+1, which may
be past the state's size after a crash (SIGKILL, power loss: a signal is
fine, as seal signs on the first signal). Seal the gap first, as the error
message says:

	audit-read --db audit.db --from-seq 120001 --to-seq 120400 | audit-checkpoint seal --signer ckpt.key --out checkpoints.ndjson --state seal.state >/dev/null

# verify

Reads the log's record lines from seq 1 (stdin, or files: plain, gzip or
zstd), checks their chain (lib/chain), and checks them against every
checkpoint in --checkpoints and against the trusted state of the last
clean run (lib/checkpoint.Checker): at every signed size the log must have
the signed root, and between consecutive signed sizes the consistency proof
made from the log must verify. Memory: the checkpoints, not the log.

Each finding goes to stderr as "error REASON: seq A..B, size S, checkpoint
line L: detail"; when two signed notes conflict (equivocation,
inconsistent, rollback) both follow, indented. Chain findings are prefixed
"chain:" and read as in audit-verify. The reasons:

	truncated_tail   the log is shorter than a signed size (seqs missing named)
	rewrite          the log's root differs from the signed one from some size on:
	                 rows in (last matching size, first mismatching size] were rewritten
	replaced_chain   no signed root matches the log, not even the smallest
	inconsistent     two signed checkpoints are not one history (the trusted state
	                 counts): a rewrite signed later, or a key that signed a fork
	equivocation     two signed checkpoints of one size with different roots
	rollback         the newest checkpoint presented is older than the trusted state
	bad_signature    a trusted key's signature does not verify: the note was altered
	unknown_key      no trusted key signed a checkpoint (fail closed)
	malformed        a checkpoint, checkpoint-file line or state not in form
	origin_mismatch  a validly signed checkpoint of another log
	unsealed_tail    records after the newest checkpoint are older than --max-unsealed
	bad_cosignature  with --witness-key: a configured witness's cosignature does not verify
	unwitnessed      with --witness-key: signed sizes past the newest checkpoint with the
	                 quorum of cosignatures (a view the witnesses never saw, or witnesses
	                 down longer than --max-unwitnessed)
	stream_break     the records were not seqs 1, 2, 3, ...: checkpoints past the
	                 break are not checked

Exit 3 if there is any finding or chain error. Only a clean run advances the
trusted state (--state, written atomically, mode 0600) to the newest
checkpoint the log matches; a failed run leaves it as it was. A log that is
not empty with no checkpoint at all to check it against is a failure too.

The trusted state is what makes a rollback of the checkpoint file, or a
truncation to an old checkpoint, visible. The first run has none: pass
--init to trust the checkpoints on first use, once. Without --init a
missing state file is an error (exit 2); with --init an existing one is an
error too, so that a script cannot reset trust silently every time.

--origin defaults to the state's origin, else to the verifier keys' name.
Several --verifier files (or several keys in one file) are all trusted, as
during a key rotation.

--report FILE writes a JSON report: ok, origin, logSize, checkpoints,
sizes, matched, unchecked, consistencyProofs(OK), covered, findings (with
the notes concerned, verbatim), the chain's records, verified, tombstones,
errors and findings, and the trusted state before and after.

# Witnesses

seal --witness VKEY=URL (repeatable) or --witness-file FILE (one VKEY=URL a
line, '#' comments) asks C2SP tlog-witness witnesses to cosign each new
checkpoint (add-checkpoint with the witness's old size and a consistency
proof; Ed25519 cosignature/v1). VKEY is the witness's vkey
(name+keyid+base64 of 0x04 and the key); URL its submission prefix. It runs
in the background: records flow while a witness is down or slow. Each
cosigned note is appended to --out as one more line (same body, more
signatures). A witness that is down is retried with backoff (1 s to 5 min)
with the newest checkpoint, and "warning witness_unreachable: ..." says so;
the state file keeps the leaf hashes a lagging witness needs (at most 1Mi),
so the next run catches it up (one further behind is "warning
witness_behind", not asked again by the run, not an exit 3). A refusal (the witness holds another tree:
422 or 409, a rollback of the witness, a corrupt cosignature, 403/404) is
"error witness_refused: ...", never retried, and the run exits 3 after
passing every record on. Metrics: auditpipe_checkpoint_unwitnessed_seconds,
auditpipe_checkpoint_witnessed_size, auditpipe_witness_refusals_total
(alerts AuditCheckpointUnwitnessed and AuditWitnessRefused in
examples/prometheus/alerts.yml). --witness-flush D (default 10s) bounds
the last try at the end of a run.

verify --witness-key FILE (repeatable; VKEY or VKEY=URL lines, so a
--witness-file serves) --quorum K (default: all the witnesses given)
--max-unwitnessed D: a checkpoint counts as witnessed only with the log's
signature and K cosignatures; the trusted state advances only to a
witnessed checkpoint. Findings: bad_cosignature (a configured witness's
cosignature does not verify) and unwitnessed (signed sizes past the newest
witnessed one, unless the first record after it is younger than
--max-unwitnessed: a split view made with the stolen log key lands here).
Checkpoints without the quorum below a witnessed one are a note
("note unwitnessed_gap: ..."), not a failure: witnesses were down for a
while and nothing is lost. prove --witness-key --quorum K proves against the
newest checkpoint with the quorum (exit 3 "unwitnessed" if there is none);
check-proof --witness-key --quorum K refuses a bundle whose checkpoint lacks
it (exit 3 "unwitnessed: its checkpoint (size N) carries C of the K witness
cosignatures required") or carries a bad cosignature.

# prove and check-proof

prove reads the log from seq 1 (stdin or files) and writes an inclusion
proof bundle for the record with --seq, one JSON line, against the newest
checkpoint a trusted key signed (or the one of --size):

	{"format":"auditpipe-inclusion-proof-v1","seq":42,"recordHash":"…","prevHash":"…",
	 "record":{…canonical…},"proof":["<base64>",…],"checkpoint":"<signed note>"}

It fails (exit 3) if the log does not match the checkpoint. An erased row
(a tombstone) is proven by its recordHash alone (no "record" member). The
bundle does not carry the record line's seq/ts/tenantId/kind fields: the
chain does not hash them, so the bundle could not prove them.

check-proof verifies a bundle offline with the verifier key alone: the
signature, the proof against the signed root, and the record against its
recordHash. It prints one JSON line on stdout,

	{"seq":42,"recordHash":"…","record":true,"origin":"example.com/audit/prod","size":300,"root":"…"}

and exits 0, or exits 3 if anything does not verify (a byte changed
anywhere in the bundle, an unknown key, another origin than --origin or
the key's name).

# check-store

Checks a store's copy of the log (a SIEM's, fetched back with audit-fetch,
record lines in seq order) against the checkpoints the store holds
(--checkpoints, {"checkpoint":…} lines; rotation lines are followed), and
names what the store lost as ranges of seq, each on stderr as "error
REASON: seq A..B, size S: detail", exit 3:

	store_missing_records     seqs the store lacks (a gap, or a tail cut before the
	                          largest signed size, or before the largest --reference
	                          size: a tail deleted with its checkpoints), with the
	                          checkpoint that signed them
	store_missing_checkpoint  a checkpoint of --reference (the shipper's --out), or a
	                          multiple of --every, that the store lacks
	store_altered             a record whose content does not hash to its recordHash, a
	                          broken chain link, or a root at a signed size that is not
	                          the signed one (said once: larger sizes differ too)
	unwitnessed               with --witness-key: records past the newest checkpoint the
	                          store holds with the quorum of cosignatures

The store's checkpoints come from seal --emit-checkpoints through
audit-ship, fetched back by audit-fetch --checkpoints FILE (see "Shipping
the checkpoints"):

	audit-fetch --kind splunk --url http://vlogs:9428 --checkpoints siem-cp.ndjson \
	  | audit-checkpoint check-store --verifier ckpt.pub --witness-key witnesses.txt \
	      --checkpoints siem-cp.ndjson --reference /var/lib/auditpipe/checkpoints.ndjson --every 10000

For each kind of loss the exact finding (real VictoriaLogs, records and
checkpoint events deleted with its delete API; TestCheckStoreVictoriaLogs):

	error store_missing_records: seq 12..14, size 20: the store lacks seqs 12..14 (3 records),
	  signed by the checkpoint of size 20 the store holds: deleted in the store, or never delivered
	error store_missing_checkpoint: size 30: the store lacks the checkpoint of size 30
	  (reference checkpoint #4): deleted in the store, or never delivered
	error store_missing_checkpoint: seq 21..30, size 30: the store lacks the checkpoint of size 30
	  (seal signs every 10 records): seqs 21..30 have no checkpoint of their own there
	error unwitnessed: seq 1..60: the store's seqs 1..60 are not covered by a checkpoint it holds
	  with 1 witness cosignatures (the newest such is of size 0)

A missing size is named once, whether --reference holds its note with or
without cosignatures. With the records on stdin, check-store reads
--checkpoints only once the first byte of stdin (or its end) has arrived:
audit-fetch writes the file whole (renamed into place) before its first
record line, so the pipe above never reads it half written or stale.

# Shipping the checkpoints

A checkpoint file on the same disk as the log proves little against someone
who can rewrite both. Ship it with the records:

	audit-read --db audit.db --from-cursor splunk:prod | audit-verify --db audit.db --from-cursor splunk:prod \
	  | audit-checkpoint seal --signer ckpt.key --out checkpoints.ndjson --state seal.state \
	      --witness-file witnesses.txt --emit-checkpoints \
	  | audit-batch --siem splunk | audit-ship --kind splunk ... --acks /run/auditpipe/acks.fifo

Each checkpoint line rides in the batch it falls in (counted in the
header's count) and is sent as a checkpoint event (docs/siems/*.md):
Splunk sourcetype <the records' sourcetype>:checkpoint (declaragent:audit:checkpoint)
with fields type=checkpoint, checkpointSize, origin; an Elasticsearch
document {"type":"checkpoint","checkpointSize":N,"origin":…,"message":<line>}
under _id checkpoint-<SHA-256 of the note>; a Datadog log with the
records' ddsource/hostname/service and type checkpoint. The event's
message is the checkpoint line verbatim: the evidence. The file and kafka
sinks refuse checkpoint lines (Poison: quarantined, or the shipper pauses,
exit 6): run seal without --emit-checkpoints before them.

At least once: a batch's ack covers its records only, and acks are
released in batch order for batches delivered whole; so a cursor at seq R
means every checkpoint line before the end of record R's batch is in the
SIEM. The lines that can be lost in a stop come after record R; a plain
checkpoint there has a size >= R (it follows its own record), a cosigned
one is superseded by the newest cosigned note. On the restart from R+1,
seal re-emits every checkpoint of size >= R and the newest cosigned note
below R, so the SIEM ends up with every checkpoint and the newest
witnessed view (TestCheckpointsAfterRestartVictoriaLogs).

Or copy the file, as it grows, to a witness the log's writer cannot
write to: object storage with a retention lock, or another host. For
example, from cron on the shipper's host:

	# every 5 minutes: a copy on another host; --append only ever adds bytes past the
	# copy's end, so lines already copied are never rewritten from this side
	0-59/5 * * * * rsync --append /var/lib/auditpipe/checkpoints.ndjson witness@archive:/srv/witness/prod/

	# or the newest checkpoint as an event in Splunk (HEC), sourcetype auditpipe:checkpoint
	0-59/5 * * * * tail -n 1 /var/lib/auditpipe/checkpoints.ndjson | jq -c '{sourcetype:"auditpipe:checkpoint",event:.}' \
	  | curl -sf -H "Authorization: Splunk $(cat /run/secrets/hec)" --data-binary @- https://hec.example.com:8088/services/collector/event

	# or an object per day under S3 Object Lock (compliance mode)
	55 23 * * * aws s3 cp /var/lib/auditpipe/checkpoints.ndjson s3://audit-witness/prod/checkpoints-$(date +\%F).ndjson

To verify, fetch the witness copy back and pass it as --checkpoints (or
the local file and the copy concatenated: identical lines are harmless,
and a disagreement between them is exactly what verify reports).

# Flags and environment

Each command's flags can also be set as AUDIT_CHECKPOINT_<COMMAND>_<FLAG>
(upper case, dashes as underscores; e.g. AUDIT_CHECKPOINT_SEAL_SIGNER,
AUDIT_CHECKPOINT_VERIFY_STATE: seal's state and verify's state are
different files), or in a file named by -config. "audit-checkpoint COMMAND
-h" lists them.

	keygen:      -name -signer -verifier
	seal:        -signer -external-signer -external-signer-key -origin -every -interval -out -state -max-line -window -quiet
	             -witness (repeatable) -witness-file (repeatable) -witness-flush
	             -metrics-listen -metrics-file -metrics-exporter -metrics-linger
	verify:      -verifier (repeatable) -checkpoints -state -init -origin -max-unsealed -report -max-line -window -quiet
	             -witness-key (repeatable) -quorum -max-unwitnessed
	prove:       -verifier (repeatable) -checkpoints -seq -size -origin -out -max-line -witness-key (repeatable) -quorum
	check-proof: -verifier (repeatable) -origin -witness-key (repeatable) -quorum
	rotate:      -signer -new-signer -new-verifier -out -origin
	check-store: -verifier (repeatable) -checkpoints -reference -every -origin -max-line -witness-key (repeatable) -quorum

-max-line caps a record line (default 64 MiB, as in every stage).

seal takes the metrics flags every pipeline stage takes (lib/stagemetrics:
--metrics-listen ADDR, --metrics-file PATH, --metrics-exporter NAME, the
exporter label, which seal has no other flag for, --metrics-linger D). It
exposes back-pressure (declaragent_audit_backpressure_paused_total,
auditpipe_backpressure_paused_seconds_total,
auditpipe_backpressure_blocked_seconds), records and bytes in and out,
auditpipe_stage_last_seq, auditpipe_checkpoints_written_total (checkpoints
signed and appended to -out) and auditpipe_checkpoint_sealed_size (the tree
size of the newest checkpoint: records up to that seq are sealed).

# Exit codes

	0    ok; also a clean stop on the first SIGINT/SIGTERM (seal signs first)
	1    runtime failure (I/O, a checkpoint or state that could not be written, a damaged seal state)
	2    usage: bad flags, a key file that will not load (or that others may read), no
	     state without --init, --init with a state, a seal state lost beside checkpoints
	3    verification failed: a finding, a chain break, a log that changed since it was
	     sealed, a proof that does not verify; seal: a witness refused a checkpoint
	4    malformed input, or a stream that does not continue the sealed tree
	141  stdout closed by the next stage (quiet)

# Example

	audit-checkpoint keygen --name example.com/audit/prod --signer /etc/auditpipe/ckpt.key --verifier ckpt.pub
	audit-read --db audit.db --from-cursor splunk:prod --follow \
	  | audit-verify --db audit.db --from-cursor splunk:prod \
	  | audit-checkpoint seal --signer /etc/auditpipe/ckpt.key --out /var/lib/auditpipe/checkpoints.ndjson \
	      --state /var/lib/auditpipe/seal.state --every 10000 --interval 1m \
	  | audit-batch --siem splunk | audit-ship --kind splunk ...
	# an auditor, hourly, with the witness copy and a state kept out of the log writer's reach:
	audit-read --db audit.db | audit-checkpoint verify --verifier ckpt.pub \
	  --checkpoints witness/checkpoints.ndjson --state trusted.state --max-unsealed 15m --report verify.json
*/
package main
