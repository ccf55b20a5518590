package chain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/auditpipe/auditpipe/lib/framing"
	"strconv"
)

// A mark line is a stream control line that audit-read writes, in-band
// between record lines, for audit-verify (lib/framing.IsMark recognises one;
// every other stage drops it). Two types, each written in exactly this key
// order (docs/design.md, "Marks"):
//
//	{"mark":{"type":"anchor","source":"cursor","exporter":"splunk:prod","seq":41,"hash":"<64 hex>","chain":"<64 hex>"}}
//	{"mark":{"type":"skip","fromSeq":42,"toSeq":57,"hash":"<64 hex>","verified":16,"tombstones":0}}
//	{"mark":{"type":"skip","fromSeq":42,"toSeq":57,"hash":"<64 hex>","verified":15,"tombstones":0,"breaks":1,"breakSeq":50,"breakReason":"hash_mismatch","breakDetail":"…"}}
//
// An anchor says where the read started: the record at seq had recordHash
// hash, so the next record (or skip) starts at seq+1. Its source is
// "cursor" (the exporter's committed cursor and the shipped hash audit-ack
// stored with it, read in one statement), "cursor-row" (the cursor has no
// shipped hash: the database row's record_hash, which proves less), or
// "db-row" (--from-seq: the row before the first one read). exporter is set
// for the two cursor sources only. A cursor at 0 (nothing shipped yet) gives
// seq 0 and hash "": the read starts at genesis. chain, when present, is the
// id of the chain read (docs/contract.md section 5: the recordHash of its
// first record, or the operator's --chain-id): the stages after audit-verify
// key, route and label the records by it (Kafka's message key). An anchor
// without chain (an older audit-read, a database whose first row is gone)
// is as valid as before.
//
// A chain mark (issue 15) names the chain the record lines after it belong
// to, up to the next chain mark: many chains (one per host database)
// travel interleaved through Kafka, and audit-consume writes one before each
// run of another chain's records. It may carry the chain's anchor, the last
// seq and recordHash delivered for that chain (audit-consume's stored
// anchor), in which case the chain's next record must be seq+1 linking to
// hash; seq 0 with hash "" anchors on genesis explicitly:
//
//	{"mark":{"type":"chain","chain":"<id>"}}
//	{"mark":{"type":"chain","chain":"<id>","seq":41,"hash":"<64 hex>"}}
//
// An anchor mark may name its chain too (audit-read, when it knows the
// database's chain id), as a last key: ...,"hash":"<64 hex>","chain":"<id>"}}.
// A chain id is the recordHash of the chain's first record (64 lowercase
// hex) or an operator's override: 1 to 128 bytes of [A-Za-z0-9._:-] either
// way (see ValidChainID), so that it is safe in a log line, a metric label
// and a Kafka key.
//
// A skip says audit-read left out the records fromSeq..toSeq (a filter
// dropped them) after checking them with a Verifier of its own: toSeq's
// recordHash is hash, so the next record links to it; verified records
// verified, tombstones were erased rows. breaks > 0 reports what that check
// found: the count of error findings, the first one's seq, reason and
// detail. A skip with toSeq = fromSeq-1 covers no record (it carries only
// breaks found among left-out records that did not advance the chain, such
// as a replayed duplicate in an export).
type Mark struct {
	Type     string // "anchor" or "skip"
	Source   string // anchor
	Exporter string // anchor, cursor sources
	Seq      int64  // anchor
	FromSeq  int64  // skip
	ToSeq    int64  // skip
	Hash     string // anchor: the record at Seq; skip: the record at ToSeq

	Verified, Tombstones int64 // skip
	Breaks               int64 // skip: error findings among the left-out records
	BreakSeq             int64
	BreakReason          Reason
	BreakDetail          string

	Chain    string // chain: the chain's id; anchor: optional, the chain it anchors
	Anchored bool   // chain: Seq and Hash carry the chain's anchor
}

// Mark types and anchor sources.
const (
	MarkAnchor = "anchor"
	MarkSkip   = "skip"
	MarkChain  = "chain"

	SourceCursor    = "cursor"
	SourceCursorRow = "cursor-row"
	SourceDBRow     = "db-row"
)

// MarkPrefix starts every mark line (the same as lib/framing.IsMark).
var MarkPrefix = []byte(`{"mark":`)

// AppendMark appends m's line, without a newline, to dst.
func AppendMark(dst []byte, m *Mark) []byte {
	dst = append(dst, `{"mark":{"type":`...)
	dst = strconv.AppendQuote(dst, m.Type)
	switch m.Type {
	case MarkAnchor:
		dst = append(dst, `,"source":`...)
		dst = appendJSONString(dst, m.Source)
		if m.Exporter != "" {
			dst = append(dst, `,"exporter":`...)
			dst = appendJSONString(dst, m.Exporter)
		}
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendInt(dst, m.Seq, 10)
		dst = append(dst, `,"hash":`...)
		dst = appendJSONString(dst, m.Hash)
		if m.Chain != "" {
			dst = append(dst, `,"chain":`...)
			dst = appendJSONString(dst, m.Chain)
		}
	case MarkChain:
		dst = append(dst, `,"chain":`...)
		dst = appendJSONString(dst, m.Chain)
		if m.Anchored {
			dst = append(dst, `,"seq":`...)
			dst = strconv.AppendInt(dst, m.Seq, 10)
			dst = append(dst, `,"hash":`...)
			dst = appendJSONString(dst, m.Hash)
		}
	case MarkSkip:
		dst = append(dst, `,"fromSeq":`...)
		dst = strconv.AppendInt(dst, m.FromSeq, 10)
		dst = append(dst, `,"toSeq":`...)
		dst = strconv.AppendInt(dst, m.ToSeq, 10)
		dst = append(dst, `,"hash":`...)
		dst = appendJSONString(dst, m.Hash)
		dst = append(dst, `,"verified":`...)
		dst = strconv.AppendInt(dst, m.Verified, 10)
		dst = append(dst, `,"tombstones":`...)
		dst = strconv.AppendInt(dst, m.Tombstones, 10)
		if m.Breaks > 0 {
			dst = append(dst, `,"breaks":`...)
			dst = strconv.AppendInt(dst, m.Breaks, 10)
			dst = append(dst, `,"breakSeq":`...)
			dst = strconv.AppendInt(dst, m.BreakSeq, 10)
			dst = append(dst, `,"breakReason":`...)
			dst = appendJSONString(dst, string(m.BreakReason))
			dst = append(dst, `,"breakDetail":`...)
			dst = appendJSONString(dst, m.BreakDetail)
		}
	}
	return append(dst, "}}"...)
}

// ValidChainID reports why id cannot be a chain id: a chain id is 1 to 128
// bytes of [A-Za-z0-9._:-] (the recordHash of the chain's first record is
// 64 lowercase hex, an override may be any such name).
func ValidChainID(id string) error { return framing.ValidChainID(id) }

// AppendChainMark appends the chain mark for id, without a newline; with
// an anchor (seq, hash) when a is not nil.
func AppendChainMark(dst []byte, id string, a *Anchor) []byte {
	m := Mark{Type: MarkChain, Chain: id}
	if a != nil {
		m.Anchored, m.Seq, m.Hash = true, a.Seq, a.Hash
	}
	return AppendMark(dst, &m)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

type markJSON struct {
	Mark *struct {
		Type        *string `json:"type"`
		Source      string  `json:"source"`
		Exporter    string  `json:"exporter"`
		Seq         *int64  `json:"seq"`
		FromSeq     *int64  `json:"fromSeq"`
		ToSeq       *int64  `json:"toSeq"`
		Hash        *string `json:"hash"`
		Verified    int64   `json:"verified"`
		Tombstones  int64   `json:"tombstones"`
		Breaks      int64   `json:"breaks"`
		BreakSeq    int64   `json:"breakSeq"`
		BreakReason string  `json:"breakReason"`
		BreakDetail string  `json:"breakDetail"`
		Chain       *string `json:"chain"`
	} `json:"mark"`
}

// ParseMark parses a mark line. The error says what is wrong, for a
// bad_mark finding.
func ParseMark(line []byte) (Mark, error) {
	var mj markJSON
	if !bytes.HasPrefix(bytes.TrimSpace(line), MarkPrefix) {
		return Mark{}, fmt.Errorf("not a mark line")
	}
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&mj); err != nil {
		return Mark{}, fmt.Errorf("mark line: %v", err)
	}
	if d.More() {
		return Mark{}, fmt.Errorf("mark line: text after the object")
	}
	j := mj.Mark
	if j == nil || j.Type == nil {
		return Mark{}, fmt.Errorf("mark line: no type")
	}
	m := Mark{Type: *j.Type, Source: j.Source, Exporter: j.Exporter, Verified: j.Verified, Tombstones: j.Tombstones,
		Breaks: j.Breaks, BreakSeq: j.BreakSeq, BreakReason: Reason(j.BreakReason), BreakDetail: j.BreakDetail}
	if j.Hash != nil {
		m.Hash = *j.Hash
	}
	if j.Chain != nil {
		if m.Type != MarkAnchor && m.Type != MarkChain {
			return Mark{}, fmt.Errorf("%s mark: has a chain", m.Type)
		}
		if err := ValidChainID(*j.Chain); err != nil {
			return Mark{}, fmt.Errorf("%s mark: %v", m.Type, err)
		}
		m.Chain = *j.Chain
	}
	switch m.Type {
	case MarkChain:
		if j.Chain == nil {
			return Mark{}, fmt.Errorf("chain mark: no chain")
		}
		if j.Source != "" || j.Exporter != "" || j.FromSeq != nil || j.ToSeq != nil || j.Verified != 0 || j.Tombstones != 0 ||
			j.Breaks != 0 || j.BreakSeq != 0 || j.BreakReason != "" || j.BreakDetail != "" {
			return Mark{}, fmt.Errorf("chain mark: only chain, seq and hash belong in it")
		}
		if (j.Seq == nil) != (j.Hash == nil) {
			return Mark{}, fmt.Errorf("chain mark: seq and hash go together (the chain's anchor) or not at all")
		}
		if j.Seq != nil {
			m.Anchored = true
			m.Seq = *j.Seq
			if m.Seq < 0 || (m.Seq == 0) != (m.Hash == "") || m.Hash != "" && !IsHexHashString(m.Hash) {
				return Mark{}, fmt.Errorf("chain mark: anchor must be seq >= 0 and hash 64 lowercase hex (\"\" only at seq 0)")
			}
		}
	case MarkAnchor:
		if j.Seq == nil || j.Hash == nil || *j.Seq < 0 {
			return Mark{}, fmt.Errorf("anchor mark: needs seq >= 0 and hash")
		}
		m.Seq = *j.Seq
		switch m.Source {
		case SourceCursor, SourceCursorRow:
			if m.Exporter == "" {
				return Mark{}, fmt.Errorf("anchor mark from a cursor without its exporter")
			}
		case SourceDBRow:
		default:
			return Mark{}, fmt.Errorf("anchor mark: unknown source %q", m.Source)
		}
		if (m.Seq == 0) != (m.Hash == "") || m.Hash != "" && !IsHexHashString(m.Hash) {
			return Mark{}, fmt.Errorf("anchor mark: hash must be 64 lowercase hex (\"\" only at seq 0)")
		}
	case MarkSkip:
		if j.FromSeq == nil || j.ToSeq == nil || j.Hash == nil {
			return Mark{}, fmt.Errorf("skip mark: needs fromSeq, toSeq and hash")
		}
		m.FromSeq, m.ToSeq = *j.FromSeq, *j.ToSeq
		if m.FromSeq < 1 || m.ToSeq < m.FromSeq-1 || !IsHexHashString(m.Hash) && !(m.ToSeq == 0 && m.Hash == "") {
			return Mark{}, fmt.Errorf("skip mark: bad range %d..%d or hash", m.FromSeq, m.ToSeq)
		}
		if m.Verified < 0 || m.Tombstones < 0 || m.Breaks < 0 || m.Verified+m.Tombstones > m.ToSeq-m.FromSeq+1 {
			return Mark{}, fmt.Errorf("skip mark: bad counts")
		}
		if m.Breaks > 0 && SeverityOf(m.BreakReason) != SeverityError {
			return Mark{}, fmt.Errorf("skip mark: break reason %q is not a break", m.BreakReason)
		}
	default:
		return Mark{}, fmt.Errorf("unknown mark type %q", m.Type)
	}
	return m, nil
}

// ApplyMark applies a trusted mark (one that came from audit-read on the
// same pipe) at input line num and returns the findings it completes.
//
// An anchor before any record sets the chain position (seq 0: genesis); one
// later must agree with the position reached (a second read appended), else
// bad_mark. A skip must start right after the position reached (or, before
// any anchor or record, at seq 1, or it is unanchored like a first record);
// the chain then resumes at toSeq with hash. A hole is a notice (filtered),
// never a break; breaks audit-read found in it are errors, reported with
// their own reason and seq.
func (v *Verifier) ApplyMark(num int64, m *Mark) []Finding {
	v.begin()
	v.endReplay("a mark came next")
	switch m.Type {
	case MarkAnchor:
		switch {
		case !v.started && m.Seq == 0:
			// genesis: the first record must be seq 1
		case !v.started:
			v.started = true
			v.lastSeq = m.Seq
			v.lastHash = append(v.lastHash[:0], m.Hash...)
			if v.opt.Anchor == nil {
				v.opt.Anchor = &Anchor{Seq: m.Seq, Hash: m.Hash}
			}
		case m.Seq == v.lastSeq && m.Hash == string(v.lastHash):
			// a second read that starts where the first ended
		default:
			v.add(Finding{Reason: ReasonBadMark, FirstLine: num, FirstSeq: m.Seq,
				Detail: fmt.Sprintf("anchor mark at seq %d %s after the chain reached seq %d %s: the reads do not join", m.Seq, short([]byte(m.Hash)), v.lastSeq, short(v.lastHash))})
			v.resync = true
		}
	case MarkSkip:
		n := m.ToSeq - m.FromSeq + 1
		switch {
		case !v.started && m.FromSeq == 1:
		case !v.started:
			v.add(Finding{Reason: ReasonUnanchored, FirstSeq: m.FromSeq, FirstLine: num,
				Detail: fmt.Sprintf("the stream starts at seq %d (left out by audit-read's filter) without an anchor: its link to seq %d is not checked", m.FromSeq, m.FromSeq-1)})
		case v.resync:
		case m.FromSeq > v.lastSeq+1:
			v.add(Finding{Reason: ReasonSeqGap, FirstSeq: v.lastSeq + 1, LastSeq: m.FromSeq - 1, FirstLine: num,
				Detail: fmt.Sprintf("seq %d..%d missing (%d records) before the records audit-read left out from seq %d", v.lastSeq+1, m.FromSeq-1, m.FromSeq-1-v.lastSeq, m.FromSeq)})
		case m.FromSeq <= v.lastSeq:
			v.add(Finding{Reason: ReasonBadMark, FirstSeq: m.FromSeq, FirstLine: num,
				Detail: fmt.Sprintf("skip mark for seq %d..%d after the chain reached seq %d", m.FromSeq, m.ToSeq, v.lastSeq)})
			return v.end()
		}
		v.resync = false
		if m.Breaks > 0 {
			v.add(Finding{Reason: m.BreakReason, FirstSeq: m.BreakSeq, FirstLine: num, Count: m.Breaks,
				Detail: fmt.Sprintf("in the records audit-read left out (seq %d..%d), checked by audit-read: %s", m.FromSeq, m.ToSeq, m.BreakDetail)})
		}
		if m.Tombstones > 0 {
			// Erased rows are to be known every time, filtered or not.
			v.add(Finding{Reason: ReasonTombstone, FirstSeq: m.FromSeq, LastSeq: m.ToSeq, FirstLine: num, Count: m.Tombstones,
				Detail: fmt.Sprintf("%d erased rows among the records audit-read left out (seq %d..%d)", m.Tombstones, m.FromSeq, m.ToSeq)})
		}
		if n > 0 {
			v.stats.Holes++
			v.stats.Filtered += n
			v.stats.Tombstones += m.Tombstones
			v.add(Finding{Reason: ReasonFiltered, FirstSeq: m.FromSeq, LastSeq: m.ToSeq, FirstLine: num, Count: 1,
				Detail: fmt.Sprintf("%d records left out by audit-read's filter, their chain checked by audit-read (%d verified, %d tombstones)", n, m.Verified, m.Tombstones)})
			v.advance(m.ToSeq, []byte(m.Hash), false)
		}
	}
	return v.end()
}

// SetHead moves the chain position to seq with recordHash hash (64 hex)
// without checking the record: for audit-read, whose own Verifier checks
// only the records its filter leaves out (audit-verify checks the ones it
// passes on) but must know where each hole starts. A seq at or below the
// position (a replayed record in an export) is ignored.
func (v *Verifier) SetHead(seq int64, hash []byte) {
	if v.started && seq <= v.lastSeq {
		return
	}
	v.findings = v.findings[:0]
	v.endReplay("a record passed on came next")
	v.flush()
	v.advance(seq, hash, false)
	v.resync = false
}
