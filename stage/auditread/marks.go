package auditread

import (
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// holes writes the marks that keep a filtered read verifiable (issue 12
// item 1b). Every row in the range goes through it: a kept one moves the
// chain position (audit-verify checks it), a dropped one is checked here by
// a Verifier of our own, and the run of dropped rows before the next kept
// one (or the end, or an idle moment in --follow) becomes one skip mark:
// the seqs it covers, the recordHash the next record must link to, and the
// first break found among them. See chain.Mark.
type holes struct {
	v    *chain.Verifier
	line []byte // mark buffer

	open          bool
	fromStarted   bool  // the position was known when the hole opened
	fromSeq       int64 // head seq when it opened (started), else its first seq
	verified      int64
	tombstones    int64
	breaks        int64
	breakSeq      int64
	breakReason   chain.Reason
	breakDetail   string
	total, nHoles int64 // for the summary: rows left out, holes written
	totalBreaks   int64

	silent           bool // --marks off: checked and counted, not written
	firstBreakSeq    int64
	firstBreakReason chain.Reason
	firstBreakDetail string
}

func newHoles(anchor *chain.Anchor, window int) *holes {
	return &holes{v: chain.NewVerifier(chain.Options{Anchor: anchor, Window: window, Immediate: true})}
}

// kept moves the position to a record passed on; its mark, if a hole is
// open, must be written first (flush).
func (h *holes) kept(seq int64, recordHash []byte) { h.v.SetHead(seq, recordHash) }

// dropped checks a record line the filter leaves out.
func (h *holes) dropped(num, seq int64, line []byte) {
	if !h.open {
		h.open = true
		s, _ := h.v.Head()
		h.fromStarted = h.v.Started()
		h.fromSeq = s
		if !h.fromStarted {
			h.fromSeq = seq
		}
	}
	h.total++
	pass, fs := h.v.Check(num, line)
	tomb := false
	for _, f := range fs {
		switch {
		case f.Reason == chain.ReasonTombstone:
			tomb = true
		case f.Severity == chain.SeverityError:
			if h.breaks == 0 {
				h.breakSeq, h.breakReason, h.breakDetail = f.FirstSeq, f.Reason, f.Detail
			}
			h.breaks += f.Count
		}
	}
	switch {
	case tomb:
		h.tombstones++
	case pass:
		h.verified++
	}
}

// flush writes the open hole's skip mark, if any.
func (h *holes) flush(out *ndjson.Writer) error {
	if !h.open {
		return nil
	}
	h.open = false
	for _, f := range h.v.Flush() {
		if f.Severity == chain.SeverityError && f.Reason != chain.ReasonLineTooLong {
			if h.breaks == 0 {
				h.breakSeq, h.breakReason, h.breakDetail = f.FirstSeq, f.Reason, f.Detail
			}
			h.breaks += f.Count
		}
	}
	from := h.fromSeq
	if h.fromStarted {
		from++
	}
	to, hash := h.v.Head()
	if to < from {
		to = from - 1
		if to == 0 {
			hash = ""
		}
	}
	m := chain.Mark{Type: chain.MarkSkip, FromSeq: from, ToSeq: to, Hash: hash,
		Verified: h.verified, Tombstones: h.tombstones, Breaks: h.breaks,
		BreakSeq: h.breakSeq, BreakReason: h.breakReason, BreakDetail: h.breakDetail}
	if n := to - from + 1; m.Verified+m.Tombstones > n { // replayed duplicates in an export
		m.Verified = max(n-m.Tombstones, 0)
		m.Tombstones = min(m.Tombstones, n)
	}
	h.verified, h.tombstones, h.breaks, h.breakSeq, h.breakReason, h.breakDetail = 0, 0, 0, 0, "", ""
	if to < from && m.Breaks == 0 {
		return nil
	}
	h.nHoles++
	if m.Breaks > 0 && h.totalBreaks == 0 {
		h.firstBreakSeq, h.firstBreakReason, h.firstBreakDetail = m.BreakSeq, m.BreakReason, m.BreakDetail
	}
	h.totalBreaks += m.Breaks
	if h.silent {
		return nil
	}
	h.line = chain.AppendMark(h.line[:0], &m)
	return out.Write(h.line)
}

// writeMark writes an anchor mark.
func writeMark(out *ndjson.Writer, m *chain.Mark) error {
	return out.Write(chain.AppendMark(nil, m))
}
