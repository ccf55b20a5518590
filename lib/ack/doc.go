// Package ack is the ack protocol between audit-ship and audit-ack: the only
// way a cursor moves. Its contract:
//
// Who writes, who reads. audit-ship (lib/ship, through StreamWriter or
// FIFOWriter) writes one ack line per delivered batch, to a FIFO (--acks
// PATH, created 0600 by EnsureFIFO: its mode is the trust boundary) or
// stdout; audit-ack (stage/auditack) reads them, from that FIFO or stdin,
// checks them against the audit database and commits the exporter's cursor
// (lib/auditdb CommitAcks, in one transaction). Nothing else writes a cursor
// from an ack.
//
// The line. One JSON object per line, '\n'-terminated (Append, Parse):
//
//	{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"<64 hex>","count":3,"since":11,"sinceCount":32,"quarantined":[41]}}
//
// It says: every record of the exporter's selection from firstSeq to
// lastSeq, count of them, was delivered to the SIEM, or quarantined and
// named in "quarantined"; lastHash is the recordHash of seq lastSeq.
// "since"/"sinceCount" (both or neither) say what the writer has delivered
// in its run: every record it received from seq since to lastSeq, sinceCount
// in all. "chain" (optional, written after "exporter" only when set) names
// the hash chain of the records, by a chain id of 1 to 128 bytes of
// [A-Za-z0-9._:-] (framing.CheckChain); absent, the line is the single-chain
// line of every pipeline today, byte for byte. It is reserved for the Kafka
// fleet (issue 15), where one stream carries several chains (and the batch
// header names its chain the same way, framing.Header); audit-ack, which
// commits one database's single chain, refuses an ack that names one.
// Parsing is strict (every required field once, right type, sensible value;
// the error names the field); unknown keys are ignored. An ordinary ack is
// at most PIPE_BUF (4096) bytes, so one write(2) puts it in a FIFO whole;
// MaxLine bounds any line.
//
// Ordering. The writer releases acks strictly in seq order even with several
// requests in flight (Sequencer): after the first batch that was not
// delivered, no later ack is released, so a cursor never passes a record
// that was not delivered. Acks are cumulative: a lost or torn line is
// covered by the next one, and the reader skips (and counts) a line that
// does not parse.
//
// The gap rule (Check; the reader merges clean contiguous acks first, Spans,
// so an unfiltered pipeline makes no query). The reader does not trust
// contiguity, it checks it against the database when committing, with known
// = the cursor (or the last ack taken before): rows of the exporter's
// selection with known < seq < firstSeq must be none, and those in
// [max(firstSeq, known+1), lastSeq] at most count. An ack failing the first
// rule passes only when its since/sinceCount claim holds instead: no
// selected row with known < seq < since, and at most sinceCount selected
// rows in [since, lastSeq]. A refused ack is tamper evidence (exit 3); the
// acks before it are committed. lastHash must be the database's hash at
// lastSeq (else exit 3, nothing committed). An ack for another exporter is a
// configuration error (exit 2).
//
// Crashes. Writing an ack is handing it over; only the reader knows whether
// it committed it. A writer that crashes loses nothing: the records it
// delivered but did not ack are shipped again from the cursor (duplicates,
// never loss); half a line it left in the pipe is skipped. A reader killed
// after reading acks it had not committed loses them; its successor reads
// the writer's next acks, whose firstSeq is past the cursor, and takes them
// on their since/sinceCount claim. A writer never blocks on the FIFO
// (FIFOWriter): with no reader, or a full FIFO, it holds the acks, merging
// those it may (same exporter and chain, none quarantined), hands them over
// as soon as there is room, and reports, at its end, those it could not hand
// over in time (ErrNotHandedOver, exit 8).
//
// FIFO replacement. The reader (Reader) opens the FIFO read-write (it never
// sees end-of-file when a writer exits) and watches its path: when the path
// names another FIFO (removed and recreated, renamed over) it reads the new
// one and the old one on until its last writer closes it, so no ack written
// to either is lost. A writer opens the path afresh after a broken pipe, so
// it finds the new FIFO.
package ack
