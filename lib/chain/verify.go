package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"errors"
	"github.com/auditpipe/auditpipe/lib/canon"
	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// Reason is the code of a finding. The codes are a public contract: they
// appear in reports and operators grep for them.
type Reason string

const (
	ReasonHashMismatch   Reason = "hash_mismatch"   // recordHash is not the hash of prevHash and the record
	ReasonPrevLink       Reason = "prev_link"       // prevHash is not the previous record's recordHash
	ReasonSeqGap         Reason = "seq_gap"         // seqs missing between two records
	ReasonSeqRegress     Reason = "seq_regress"     // no longer raised: a regress starts a replay (kept for reports and alerts)
	ReasonDuplicate      Reason = "duplicate"       // a replayed run proven identical to records verified before (warning: at-least-once)
	ReasonEquivocation   Reason = "equivocation"    // same seq, different record: two histories
	ReasonReplayUnproven Reason = "replay_unproven" // a replay that stopped before it could be proven identical (warning; none of it passed)
	ReasonFiltered       Reason = "filtered"        // a hole audit-read's filter made, proven by audit-read (notice)
	ReasonBadMark        Reason = "bad_mark"        // a mark line that is malformed or out of place on stdin
	ReasonMarkIgnored    Reason = "mark_ignored"    // a mark line in a FILE argument: not trusted, not applied (warning)
	ReasonBadJSON        Reason = "bad_json"        // the line is not JSON, or not valid UTF-8
	ReasonBadField       Reason = "bad_field"       // a field is missing, has the wrong type, or a bad hash
	ReasonTruncated      Reason = "truncated"       // the last line ended without a newline
	ReasonLineTooLong    Reason = "line_too_long"   // the line is longer than --max-line
	ReasonTombstone      Reason = "tombstone"       // an erased row (notice, not tampering)
	ReasonUnanchored     Reason = "unanchored"      // the first record's link could not be checked (notice)
)

// LineReason is the reason of the finding for a line lib/ndjson could not
// deliver (LineError.Kind): line_too_long, truncated, else bad_json (a NUL
// or invalid UTF-8).
func LineReason(kind error) Reason {
	switch {
	case errors.Is(kind, ndjson.ErrTooLong):
		return ReasonLineTooLong
	case errors.Is(kind, ndjson.ErrTruncated):
		return ReasonTruncated
	}
	return ReasonBadJSON
}

// Severity ranks findings. Only SeverityError fails verification.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityNotice  Severity = "notice"
)

// SeverityOf gives the severity of each reason.
func SeverityOf(r Reason) Severity {
	switch r {
	case ReasonChainHeld:
		return SeverityError
	case ReasonDuplicate, ReasonReplayUnproven, ReasonMarkIgnored:
		return SeverityWarning
	case ReasonTombstone, ReasonUnanchored, ReasonFiltered:
		return SeverityNotice
	}
	return SeverityError
}

// Finding is one break, or a run of consecutive breaks of the same kind, as
// a range of seqs and input lines. Seqs are 0 where unknown (a line that
// could not be parsed).
type Finding struct {
	// Chain names the chain in a stream of many (issue 15; "" for one).
	Chain     string   `json:"chain,omitempty"`
	Reason    Reason   `json:"reason"`
	Severity  Severity `json:"severity"`
	FirstSeq  int64    `json:"firstSeq"`
	LastSeq   int64    `json:"lastSeq"`
	FirstLine int64    `json:"firstLine"`
	LastLine  int64    `json:"lastLine"`
	Count     int64    `json:"count"`
	Detail    string   `json:"detail"`
}

func (f Finding) String() string {
	seq := ""
	switch {
	case f.FirstSeq == 0 && f.LastSeq == 0:
	case f.FirstSeq == f.LastSeq:
		seq = fmt.Sprintf(" seq %d", f.FirstSeq)
	default:
		seq = fmt.Sprintf(" seq %d..%d", f.FirstSeq, f.LastSeq)
	}
	line := fmt.Sprintf(" line %d", f.FirstLine)
	if f.LastLine != f.FirstLine {
		line = fmt.Sprintf(" lines %d..%d", f.FirstLine, f.LastLine)
	}
	if f.FirstLine == 0 {
		line = ""
	}
	n := ""
	if f.Count > 1 {
		n = fmt.Sprintf(" (%d records)", f.Count)
	}
	if f.Chain != "" {
		seq = " chain " + f.Chain + seq
	}
	return fmt.Sprintf("%s %s:%s%s%s: %s", f.Severity, f.Reason, seq, line, n, f.Detail)
}

// Anchor is a trusted position: the record with Seq had recordHash Hash, so
// the next record must have seq Seq+1 and prevHash Hash.
type Anchor struct {
	Seq  int64
	Hash string
}

// Options configure a Verifier.
type Options struct {
	// Anchor, if set, is where the chain must resume. Without it the first
	// record must be the genesis (seq 1, prevHash "") or is reported as
	// unanchored (a notice).
	Anchor *Anchor
	// Window is how many recent seq->hash pairs are kept to tell a duplicate
	// from an equivocation record by record (default 4096). Memory is
	// O(Window). A replay longer than the window is still proven, as a run,
	// when it reaches the head (see checkReplay).
	Window int
	// PassDuplicates passes on a replayed record the window proves
	// identical to one verified before (--duplicates pass). Records proven
	// only as a run are dropped whatever this says: they were not proven
	// when they went by.
	PassDuplicates bool
	// Immediate reports every finding by itself, as it happens, without
	// coalescing runs (audit-read's check of the rows its filter drops).
	Immediate bool
}

// Stats summarise what a Verifier has seen.
type Stats struct {
	Records    int64 // record lines parsed
	Verified   int64 // records whose hash verified (fast + slow)
	FastPath   int64 // verified by hashing the bytes as they stand
	SlowPath   int64 // verified after canonicalising
	Tombstones int64
	Duplicates int64 // replayed records proven identical to ones verified before (dropped unless passed)
	Unproven   int64 // replayed records not proven: the replay stopped before the head (dropped)
	Holes      int64 // holes a filter made, proven by audit-read (skip marks)
	Filtered   int64 // records in those holes
	Errors     int64 // findings of severity error (records, not ranges)
	// InputErrors are records that could not be checked for a reason that is
	// not evidence of tampering (a line longer than --max-line).
	InputErrors int64
	FirstSeq    int64
	LastSeq     int64
	HeadHash    string           // recordHash of the last record in chain order
	Tenants     map[string]int64 // records per tenantId
}

// Verifier checks a stream of record lines, one at a time, and keeps O(1)
// state plus a fixed window. It reports every break, coalescing consecutive
// breaks of the same kind into one Finding with a range.
type Verifier struct {
	opt    Options
	parser LineParser
	h      hash.Hash
	sum    [sha256.Size]byte
	hexSum [2 * sha256.Size]byte // sum in lowercase hex, to compare with a recordHash as it stands
	// slowFirst: the previous record verified only once canonicalised.
	slowFirst bool
	canon     []byte

	started  bool
	resync   bool // the previous line was unusable: do not judge the next link
	lastSeq  int64
	lastHash []byte

	win    []winEntry
	winPos int

	rp     replay
	expect *expectation

	open     *Finding
	touched  bool // the current line added to the open finding
	findings []Finding
	stats    Stats
	tenants  map[string]*int64
}

// replay is the state of a replay: records at seqs at or below the head,
// which must chain among themselves and, on reaching the head, end in the
// head's recordHash (collision resistance then proves the whole run
// identical to what was verified before).
type replay struct {
	active    bool
	start     int64 // first replayed seq
	firstLine int64
	seq       int64  // last replayed seq
	hash      []byte // its recordHash
	count     int64  // records in the run
	proven    int64  // of them proven record by record by the window
	unFirst   int64  // the range not proven by the window (0: none)
	unLast    int64
	diverged  bool // an error was reported for this run already
}

// expectation is a hash the stream must carry at a seq: the cursor's
// shipped hash when the cursor moved past the reader's anchor.
type expectation struct {
	seq  int64
	hash string
	what string
}

type winEntry struct {
	seq  int64
	hash [32]byte
}

// NewVerifier returns a Verifier.
func NewVerifier(opt Options) *Verifier {
	if opt.Window <= 0 {
		opt.Window = 4096
	}
	v := &Verifier{opt: opt, h: sha256.New(), win: make([]winEntry, opt.Window)}
	v.tenants = make(map[string]*int64)
	if opt.Anchor != nil {
		v.started = true
		v.lastSeq = opt.Anchor.Seq
		v.lastHash = []byte(opt.Anchor.Hash)
	}
	return v
}

// LastSeq is the seq of the last record checked (cheap: for per-line use).
func (v *Verifier) LastSeq() int64 { return v.stats.LastSeq }

// Stats returns the counters so far. It copies the per-tenant counts:
// call it for summaries, not per line.
func (v *Verifier) Stats() Stats {
	st := v.stats
	st.Tenants = make(map[string]int64, len(v.tenants))
	for t, n := range v.tenants {
		st.Tenants[t] = *n
	}
	if st.Records > 0 {
		st.HeadHash = string(v.lastHash)
	}
	return st
}

// Check verifies one record line (line number num). It returns whether the
// line may be passed on downstream and the findings that completed with this
// line. A line passes when the record's own hash verifies (or it is a
// tombstone), even if its link is broken: in report mode the intact records
// after a gap still ship. In fail-closed mode the caller stops, without
// passing the line, as soon as Failed reports true.
//
// Nothing is held back: a run of breaks of one kind on consecutive seqs is
// coalesced into one Finding, and that Finding is returned by the Check of
// the first line that does not continue it (or by Flush or Finish).
func (v *Verifier) Check(num int64, line []byte) (pass bool, done []Finding) {
	v.begin()
	// A line in audit-read's layout whose record hashes to its recordHash,
	// as it stands or canonicalised, needs no other validation (see
	// parseShape). Anything else, including a record that does not verify,
	// is parsed strictly, so its findings name the exact problem.
	if r, ok := v.parser.parseShape(line); ok {
		if ok, _ := v.hashOK(&r); ok {
			r.hashed = true
			v.stats.Records++
			pass = v.checkRecord(num, &r)
			return pass, v.end()
		}
	}
	r, err := v.parser.Parse(line)
	if err != nil {
		pe := err.(*ParseError)
		v.add(Finding{Reason: pe.Reason, FirstLine: num, Detail: pe.Error()})
		v.resync = true
		return false, v.end()
	}
	v.stats.Records++
	pass = v.checkRecord(num, &r)
	return pass, v.end()
}

// begin starts a call that may add findings; end closes the open range
// unless this call continued it, and returns the findings completed.
func (v *Verifier) begin() {
	v.findings = v.findings[:0]
	v.touched = false
}

func (v *Verifier) end() []Finding {
	if !v.touched {
		v.flush()
	}
	return v.findings
}

// LineProblem records a line the reader could not deliver whole (too long,
// truncated, invalid UTF-8, NUL): reason is the matching code and detail the
// reader's message. The next record's link is not judged (the bad line may
// have been the record it links to).
func (v *Verifier) LineProblem(num int64, reason Reason, detail string) []Finding {
	v.begin()
	v.add(Finding{Reason: reason, FirstLine: num, Detail: detail})
	v.resync = true
	return v.end()
}

// Note records a finding about a line that is not a record (a mark line
// refused as untrusted) without touching the chain state: the next record
// is judged against the last one as if the line were not there.
func (v *Verifier) Note(num int64, reason Reason, detail string) []Finding {
	v.begin()
	v.add(Finding{Reason: reason, FirstLine: num, Detail: detail})
	return v.end()
}

// Flush closes the open range, if any, and returns it: for a caller whose
// input has paused, so that nothing found waits for the next line.
func (v *Verifier) Flush() []Finding {
	v.begin()
	v.flush()
	return v.findings
}

// Finish closes any open range and any replay in progress and returns the
// findings they complete.
func (v *Verifier) Finish() []Finding {
	v.begin()
	v.endReplay("the input ended")
	v.flush()
	return v.findings
}

// Failed reports whether any error-severity finding has been seen that is
// evidence against the chain (tampering or corruption).
func (v *Verifier) Failed() bool { return v.stats.Errors > 0 }

// InputFailed reports whether a record could not be checked for a reason
// that is not evidence of tampering (a line longer than --max-line).
func (v *Verifier) InputFailed() bool { return v.stats.InputErrors > 0 }

// Head is the last seq and recordHash of the chain as verified so far (the
// anchor before any record; 0 and "" before anything).
func (v *Verifier) Head() (seq int64, hash string) {
	if !v.started {
		return 0, ""
	}
	return v.lastSeq, string(v.lastHash)
}

// Started reports whether the chain position is known: a record was
// checked, or an anchor set.
func (v *Verifier) Started() bool { return v.started }

// Expect makes the stream prove a hash at a seq beyond the anchor: the
// record at seq must have recordHash hash, else an equivocation finding
// naming what (for example "cursor splunk:prod's shipped hash").
func (v *Verifier) Expect(seq int64, hash, what string) {
	v.expect = &expectation{seq: seq, hash: hash, what: what}
}

func (v *Verifier) checkRecord(num int64, r *Record) bool {
	seq := r.Seq
	if v.rp.active {
		return v.checkReplay(num, r)
	}
	if !v.started {
		v.started = true
		switch {
		case seq == 1 && len(r.PrevHash) == 0:
			// genesis
		case seq == 1:
			v.add(Finding{Reason: ReasonPrevLink, FirstSeq: seq, FirstLine: num,
				Detail: "the genesis record (seq 1) must have an empty prevHash, has " + string(r.PrevHash)})
		default:
			v.add(Finding{Reason: ReasonUnanchored, FirstSeq: seq, FirstLine: num,
				Detail: fmt.Sprintf("the stream starts at seq %d without an anchor: its link to seq %d is not checked; pass --anchor or --from-cursor to prove it", seq, seq-1)})
		}
	} else {
		switch {
		case seq <= v.lastSeq:
			v.rp = replay{active: true, start: seq, firstLine: num}
			return v.checkReplay(num, r)
		case v.resync:
			// an unusable line came before: it stands for the missing link
		case seq > v.lastSeq+1:
			v.add(Finding{Reason: ReasonSeqGap, FirstSeq: v.lastSeq + 1, LastSeq: seq - 1, FirstLine: num,
				Detail: fmt.Sprintf("seq %d..%d missing (%d records) before seq %d", v.lastSeq+1, seq-1, seq-1-v.lastSeq, seq)})
		case !bytes.Equal(r.PrevHash, v.lastHash):
			what := fmt.Sprintf("seq %d's recordHash", v.lastSeq)
			if v.opt.Anchor != nil && v.lastSeq == v.opt.Anchor.Seq {
				what = fmt.Sprintf("the anchor's hash (seq %d)", v.lastSeq)
			}
			v.add(Finding{Reason: ReasonPrevLink, FirstSeq: seq, FirstLine: num,
				Detail: fmt.Sprintf("prevHash %s is not %s %s", short(r.PrevHash), what, short(v.lastHash))})
		}
	}
	v.resync = false

	ok, tomb := v.hashOK(r)
	pass := true
	switch {
	case ok:
		v.stats.Verified++
	case tomb:
		v.stats.Tombstones++
		v.add(Finding{Reason: ReasonTombstone, FirstSeq: seq, FirstLine: num,
			Detail: "erased row: its content was replaced, so its hash cannot be checked"})
	default:
		v.add(Finding{Reason: ReasonHashMismatch, FirstSeq: seq, FirstLine: num,
			Detail: fmt.Sprintf("recordHash %s does not match the record (computed %s)", short(r.RecordHash), short([]byte(hex.EncodeToString(v.sum[:]))))})
		pass = false
	}
	if e := v.expect; e != nil && seq >= e.seq {
		if seq == e.seq && string(r.RecordHash) != e.hash {
			v.add(Finding{Reason: ReasonEquivocation, FirstSeq: seq, FirstLine: num,
				Detail: fmt.Sprintf("%s at seq %d is %s, the stream's record has %s: two histories", e.what, seq, short([]byte(e.hash)), short(r.RecordHash))})
			pass = false
		}
		v.expect = nil
	}
	// Chain state follows the claimed hash, so one altered record yields
	// one finding rather than a cascade.
	v.advance(seq, r.RecordHash, ok)

	if v.stats.FirstSeq == 0 {
		v.stats.FirstSeq = seq
	}
	v.stats.LastSeq = seq
	// Counted through a pointer: m[string(b)] as a lookup does not
	// allocate, an m[string(b)]++ would, once per record.
	if n := v.tenants[string(r.TenantID)]; n != nil {
		*n++
	} else {
		one := int64(1)
		v.tenants[string(r.TenantID)] = &one
	}
	return pass
}

// advance moves the head to seq with recordHash h (64 hex), and remembers
// the pair in the window. verified says the record's hash was just checked
// and held: v.sum is then h decoded.
func (v *Verifier) advance(seq int64, h []byte, verified bool) {
	v.started = true
	v.lastSeq = seq
	v.lastHash = append(v.lastHash[:0], h...)
	e := &v.win[v.winPos]
	e.seq = seq
	if verified {
		e.hash = v.sum
	} else {
		hex.Decode(e.hash[:], h)
	}
	v.winPos = (v.winPos + 1) % len(v.win)
}

// checkReplay handles a record while a replay is active: one at a seq at or
// below the head (at-least-once delivery wrote some records twice). The
// replayed run must be one chain (each record's own hash holds and links to
// the replayed record before it), and when it reaches the head seq its
// recordHash must be the head's: by collision resistance the whole run is
// then the records verified before, however long it is, in O(1) memory.
// The window proves recent records one by one on the way (and finds a
// different record early). Nothing unproven is passed on.
func (v *Verifier) checkReplay(num int64, r *Record) bool {
	rp := &v.rp
	seq := r.Seq
	if rp.count > 0 && (seq != rp.seq+1 || seq > v.lastSeq) {
		// The run was cut: by another regress (a batch written three
		// times), a jump, or records past the head without reaching it.
		v.endReplay(fmt.Sprintf("seq %d came next", seq))
		if seq > v.lastSeq || !v.started {
			return v.checkRecord(num, r)
		}
		*rp = replay{active: true, start: seq, firstLine: num}
	}
	pass := false
	if rp.count > 0 && !bytes.Equal(r.PrevHash, rp.hash) && !rp.diverged {
		rp.diverged = true
		v.add(Finding{Reason: ReasonEquivocation, FirstSeq: seq, FirstLine: num,
			Detail: fmt.Sprintf("replayed seq %d does not link to the replayed seq %d before it: the replay is not the history verified before", seq, seq-1)})
	}
	ok, tomb := v.hashOK(r)
	if !ok && !tomb {
		rp.diverged = true
		v.add(Finding{Reason: ReasonHashMismatch, FirstSeq: seq, FirstLine: num,
			Detail: fmt.Sprintf("replayed record: recordHash %s does not match the record (computed %s)", short(r.RecordHash), short([]byte(hex.EncodeToString(v.sum[:]))))})
	}
	var h [32]byte
	hex.Decode(h[:], r.RecordHash)
	inWin := false
	for i := range v.win {
		e := &v.win[i]
		if e.seq != seq {
			continue
		}
		inWin = true
		if e.hash == h {
			rp.proven++
			pass = v.opt.PassDuplicates && (ok || tomb) && !rp.diverged
		} else if !rp.diverged {
			rp.diverged = true
			v.add(Finding{Reason: ReasonEquivocation, FirstSeq: seq, FirstLine: num,
				Detail: fmt.Sprintf("seen before with hash %s, now %s: two different histories", short([]byte(hex.EncodeToString(e.hash[:]))), short(r.RecordHash))})
		}
		break
	}
	if !inWin {
		if rp.unFirst == 0 {
			rp.unFirst = seq
		}
		rp.unLast = seq
	}
	rp.count++
	rp.seq = seq
	rp.hash = append(rp.hash[:0], r.RecordHash...)
	if seq == v.lastSeq {
		switch {
		case rp.diverged:
		case bytes.Equal(r.RecordHash, v.lastHash):
			v.stats.Duplicates += rp.count
			v.add(Finding{Reason: ReasonDuplicate, FirstSeq: rp.start, LastSeq: seq, FirstLine: rp.firstLine, LastLine: num, Count: rp.count,
				Detail: fmt.Sprintf("replayed, and proven identical to the records verified before (seq %d's recordHash is the one verified); not passed on again", seq)})
		default:
			v.add(Finding{Reason: ReasonEquivocation, FirstSeq: rp.start, LastSeq: seq, FirstLine: rp.firstLine, LastLine: num, Count: 1,
				Detail: fmt.Sprintf("the replay of seq %d..%d ends in recordHash %s, but seq %d verified as %s: two different histories", rp.start, seq, short(r.RecordHash), seq, short(v.lastHash))})
		}
		*rp = replay{}
	}
	return pass
}

// endReplay closes a replay that stopped before reaching the head: the
// records the window proved are duplicates, the rest are unproven (a
// warning: none of them was passed on, and no record verified before is
// contradicted).
func (v *Verifier) endReplay(why string) {
	rp := &v.rp
	if !rp.active {
		return
	}
	if !rp.diverged {
		v.stats.Duplicates += rp.proven
		if rp.unFirst != 0 {
			n := rp.count - rp.proven
			v.stats.Unproven += n
			v.add(Finding{Reason: ReasonReplayUnproven, FirstSeq: rp.unFirst, LastSeq: rp.unLast, FirstLine: rp.firstLine, Count: n,
				Detail: fmt.Sprintf("replayed records (at or below seq %d, verified before) not proven identical: the replay stopped at seq %d before reaching seq %d (%s); none of them was passed on", v.lastSeq, rp.seq, v.lastSeq, why)})
		} else if rp.proven > 0 {
			v.add(Finding{Reason: ReasonDuplicate, FirstSeq: rp.start, LastSeq: rp.seq, FirstLine: rp.firstLine, Count: rp.proven,
				Detail: "replayed, and proven identical record by record to the records verified before; not passed on again"})
		}
	}
	*rp = replay{}
}

// hashOK checks the record hash: on the bytes as they stand (the fast
// path; a match proves they are the canonical form), and canonicalised (the
// slow path, for records re-serialised by a SIEM). The path that worked for
// the previous record is tried first: a SIEM export is re-serialised
// throughout, and hashing its raw bytes first would be wasted every time.
//
// A failed check changes no state, so the same record may be checked again.
func (v *Verifier) hashOK(r *Record) (ok, tombstone bool) {
	if r.hashed { // Check verified it already (and counted the path)
		return true, false
	}
	if !v.slowFirst {
		if v.hashMatches(r.PrevHash, r.Raw, r.RecordHash) {
			v.stats.FastPath++
			return true, false
		}
		if v.canonMatches(r) {
			v.stats.SlowPath++
			v.slowFirst = true
			return true, false
		}
	} else {
		if v.canonMatches(r) {
			if bytes.Equal(v.canon, r.Raw) { // canonical after all: back to the fast path
				v.stats.FastPath++
				v.slowFirst = false
			} else {
				v.stats.SlowPath++
			}
			return true, false
		}
		if !bytes.Equal(v.canon, r.Raw) && v.hashMatches(r.PrevHash, r.Raw, r.RecordHash) {
			v.stats.FastPath++
			v.slowFirst = false
			return true, false
		}
	}
	return false, string(r.RecordKind) == "erased"
}

// hashMatches reports whether SHA-256(prevHash + "\n" + b) is want, a
// recordHash as the line has it (64 lowercase hex, the parser checked):
// the sum is encoded to hex and compared with it, which is cheaper than
// decoding want, and equal hex is equal bytes since the encoding is one to
// one.
func (v *Verifier) hashMatches(prevHash, b, want []byte) bool {
	v.h.Reset()
	v.h.Write(prevHash)
	v.h.Write(newline)
	v.h.Write(b)
	v.h.Sum(v.sum[:0])
	hex.Encode(v.hexSum[:], v.sum[:])
	return string(v.hexSum[:]) == string(want)
}

// canonMatches canonicalises the record into v.canon and checks its hash.
// v.canon is left empty when the record does not canonicalise.
func (v *Verifier) canonMatches(r *Record) bool {
	c, err := canon.Append(v.canon[:0], r.Raw)
	if err != nil {
		v.canon = v.canon[:0]
		return false
	}
	v.canon = c
	return v.hashMatches(r.PrevHash, c, r.RecordHash)
}

// add records a finding, extending the open range when it continues it.
// A finding may come with its own LastSeq, LastLine and Count (a run found
// at once); they default to FirstSeq, FirstLine and 1.
func (v *Verifier) add(f Finding) {
	v.touched = true
	f.Severity = SeverityOf(f.Reason)
	if f.LastSeq == 0 {
		f.LastSeq = f.FirstSeq
	}
	if f.LastLine == 0 {
		f.LastLine = f.FirstLine
	}
	if f.Count == 0 {
		f.Count = 1
		if f.Reason == ReasonSeqGap {
			f.Count = f.LastSeq - f.FirstSeq + 1 // records missing
		}
	}
	switch {
	case f.Reason == ReasonLineTooLong:
		v.stats.InputErrors += f.Count
	case f.Severity == SeverityError:
		v.stats.Errors += f.Count
	}
	if o := v.open; !v.opt.Immediate && o != nil && o.Reason == f.Reason && f.Reason != ReasonSeqGap && f.Reason != ReasonUnanchored &&
		f.Reason != ReasonDuplicate && f.Reason != ReasonReplayUnproven && f.Reason != ReasonFiltered &&
		((f.FirstSeq != 0 && f.FirstSeq == o.LastSeq+1) || (f.FirstSeq == 0 && o.FirstSeq == 0 && f.FirstLine == o.LastLine+1)) {
		o.LastSeq = f.LastSeq
		o.LastLine = f.LastLine
		o.Count += f.Count
		return
	}
	v.flush()
	v.open = &f
	if v.opt.Immediate {
		v.flush()
	}
}

func (v *Verifier) flush() {
	if v.open != nil {
		v.findings = append(v.findings, *v.open)
		v.open = nil
	}
}

func short(h []byte) string {
	if len(h) == 0 {
		return `""`
	}
	return elide.Hash(h)
}

var newline = []byte{'\n'}
