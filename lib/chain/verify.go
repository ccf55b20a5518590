package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
)

// Reason is the code of a finding. The codes are a public contract: they
// appear in reports and operators grep for them.
type Reason string

const (
	ReasonHashMismatch Reason = "hash_mismatch" // recordHash is not the hash of prevHash and the record
	ReasonPrevLink     Reason = "prev_link"     // prevHash is not the previous record's recordHash
	ReasonSeqGap       Reason = "seq_gap"       // seqs missing between two records
	ReasonSeqRegress   Reason = "seq_regress"   // seq went backwards to a seq not seen recently
	ReasonDuplicate    Reason = "duplicate"     // same seq and hash seen again (warning: at-least-once replay)
	ReasonEquivocation Reason = "equivocation"  // same seq, different hash: two histories
	ReasonBadJSON      Reason = "bad_json"      // the line is not JSON, or not valid UTF-8
	ReasonBadField     Reason = "bad_field"     // a field is missing, has the wrong type, or a bad hash
	ReasonTruncated    Reason = "truncated"     // the last line ended without a newline
	ReasonLineTooLong  Reason = "line_too_long" // the line is longer than --max-line
	ReasonTombstone    Reason = "tombstone"     // an erased row (notice, not tampering)
	ReasonUnanchored   Reason = "unanchored"    // the first record's link could not be checked (notice)
)

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
	case ReasonDuplicate:
		return SeverityWarning
	case ReasonTombstone, ReasonUnanchored:
		return SeverityNotice
	}
	return SeverityError
}

// Finding is one break, or a run of consecutive breaks of the same kind, as
// a range of seqs and input lines. Seqs are 0 where unknown (a line that
// could not be parsed).
type Finding struct {
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
	// from an equivocation (default 4096). Memory is O(Window).
	Window int
}

// Stats summarise what a Verifier has seen.
type Stats struct {
	Records    int64 // record lines parsed
	Verified   int64 // records whose hash verified (fast + slow)
	FastPath   int64 // verified by hashing the bytes as they stand
	SlowPath   int64 // verified after canonicalising
	Tombstones int64
	Duplicates int64
	Errors     int64 // findings of severity error (records, not ranges)
	FirstSeq   int64
	LastSeq    int64
	HeadHash   string           // recordHash of the last record in chain order
	Tenants    map[string]int64 // records per tenantId
}

// Verifier checks a stream of record lines, one at a time, and keeps O(1)
// state plus a fixed window. It reports every break, coalescing consecutive
// breaks of the same kind into one Finding with a range.
type Verifier struct {
	opt    Options
	parser LineParser
	h      hash.Hash
	sum    [sha256.Size]byte
	want   [sha256.Size]byte // recordHash of the record being checked, decoded
	// slowFirst: the previous record verified only once canonicalised.
	slowFirst bool
	canon     []byte

	started  bool
	resync   bool // the previous line was unusable: do not judge the next link
	lastSeq  int64
	lastHash []byte

	win    []winEntry
	winPos int

	open     *Finding
	findings []Finding
	stats    Stats
	tenants  map[string]*int64
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
// line (coalesced ranges that just closed). A line passes when the record's
// own hash verifies (or it is a tombstone), even if its link is broken: in
// report mode the intact records after a gap still ship. In fail-closed mode
// the caller stops, without passing the line, as soon as Failed reports true.
func (v *Verifier) Check(num int64, line []byte) (pass bool, done []Finding) {
	v.findings = v.findings[:0]
	// A line in audit-read's layout whose record hashes to its recordHash,
	// as it stands or canonicalised, needs no other validation (see
	// parseShape). Anything else, including a record that does not verify,
	// is parsed strictly, so its findings name the exact problem.
	if r, ok := v.parser.parseShape(line); ok {
		if ok, _ := v.hashOK(&r); ok {
			r.hashed = true
			v.stats.Records++
			return v.checkRecord(num, &r), v.findings
		}
	}
	r, err := v.parser.Parse(line)
	if err != nil {
		pe := err.(*ParseError)
		v.add(Finding{Reason: pe.Reason, FirstLine: num, Detail: pe.Error()})
		v.resync = true
		return false, v.findings
	}
	v.stats.Records++
	pass = v.checkRecord(num, &r)
	return pass, v.findings
}

// LineProblem records a line the reader could not deliver whole (too long,
// truncated, invalid UTF-8, NUL): reason is the matching code and detail the
// reader's message.
func (v *Verifier) LineProblem(num int64, reason Reason, detail string) []Finding {
	v.findings = v.findings[:0]
	v.add(Finding{Reason: reason, FirstLine: num, Detail: detail})
	v.resync = true
	return v.findings
}

// Finish closes any open range and returns the findings it completes.
func (v *Verifier) Finish() []Finding {
	v.findings = v.findings[:0]
	v.flush()
	return v.findings
}

// Failed reports whether any error-severity finding has been seen.
func (v *Verifier) Failed() bool { return v.stats.Errors > 0 }

func (v *Verifier) checkRecord(num int64, r *Record) bool {
	seq := r.Seq
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
			return v.backwards(num, r)
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
	// Chain state follows the claimed hash, so one altered record yields
	// one finding rather than a cascade.
	v.lastSeq = seq
	v.lastHash = append(v.lastHash[:0], r.RecordHash...)
	e := &v.win[v.winPos]
	e.seq = seq
	e.hash = v.want
	v.winPos = (v.winPos + 1) % len(v.win)

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

func (v *Verifier) backwards(num int64, r *Record) bool {
	var h [32]byte
	hex.Decode(h[:], r.RecordHash)
	for i := range v.win {
		e := &v.win[i]
		if e.seq != r.Seq {
			continue
		}
		if e.hash == h {
			v.stats.Duplicates++
			v.add(Finding{Reason: ReasonDuplicate, FirstSeq: r.Seq, FirstLine: num,
				Detail: "seen before with the same hash (a replay); not passed on again"})
		} else {
			v.add(Finding{Reason: ReasonEquivocation, FirstSeq: r.Seq, FirstLine: num,
				Detail: fmt.Sprintf("seen before with hash %s, now %s: two different histories", short([]byte(hex.EncodeToString(e.hash[:]))), short(r.RecordHash))})
		}
		return false
	}
	v.add(Finding{Reason: ReasonSeqRegress, FirstSeq: r.Seq, FirstLine: num,
		Detail: fmt.Sprintf("seq %d after seq %d", r.Seq, v.lastSeq)})
	return false
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
	hex.Decode(v.want[:], r.RecordHash) // the parser checked it is 64 lowercase hex
	if !v.slowFirst {
		if v.hashMatches(r.PrevHash, r.Raw) {
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
		if !bytes.Equal(v.canon, r.Raw) && v.hashMatches(r.PrevHash, r.Raw) {
			v.stats.FastPath++
			v.slowFirst = false
			return true, false
		}
	}
	return false, string(r.RecordKind) == "erased"
}

// hashMatches reports whether SHA-256(prevHash + "\n" + b) is v.want.
func (v *Verifier) hashMatches(prevHash, b []byte) bool {
	v.h.Reset()
	v.h.Write(prevHash)
	v.h.Write(newline)
	v.h.Write(b)
	v.h.Sum(v.sum[:0])
	return v.sum == v.want
}

// canonMatches canonicalises the record into v.canon and checks its hash.
// v.canon is left empty when the record does not canonicalise.
func (v *Verifier) canonMatches(r *Record) bool {
	canon, err := Canonical(v.canon[:0], r.Raw)
	if err != nil {
		v.canon = v.canon[:0]
		return false
	}
	v.canon = canon
	return v.hashMatches(r.PrevHash, canon)
}

// add records a finding, extending the open range when it continues it.
func (v *Verifier) add(f Finding) {
	f.Severity = SeverityOf(f.Reason)
	if f.LastSeq == 0 {
		f.LastSeq = f.FirstSeq
	}
	f.LastLine = f.FirstLine
	f.Count = 1
	if f.Reason == ReasonSeqGap {
		f.Count = f.LastSeq - f.FirstSeq + 1 // records missing
	}
	if f.Severity == SeverityError {
		v.stats.Errors += f.Count
	}
	if o := v.open; o != nil && o.Reason == f.Reason && f.Reason != ReasonSeqGap && f.Reason != ReasonUnanchored &&
		((f.FirstSeq != 0 && f.FirstSeq == o.LastSeq+1) || (f.FirstSeq == 0 && o.FirstSeq == 0 && f.FirstLine == o.LastLine+1)) {
		o.LastSeq = f.LastSeq
		o.LastLine = f.LastLine
		o.Count += f.Count
		return
	}
	v.flush()
	v.open = &f
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
	if len(h) > 12 {
		return string(h[:12]) + "…"
	}
	return string(h)
}

var newline = []byte{'\n'}
