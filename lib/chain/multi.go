package chain

import (
	"fmt"
	"sort"
)

// ReasonChainHeld is the finding that a chain stopped (fail closed) while
// the other chains of a multi-chain stream go on (issue 15): none of its
// later records are passed on. Its FirstSeq is the first seq not passed.
const ReasonChainHeld Reason = "chain_held"

// MultiOptions configure a Multi.
type MultiOptions struct {
	// Window is each chain's duplicate window (see Options.Window); it is
	// per chain, so it is the main part of the memory a chain holds
	// (40 bytes an entry). Default 64.
	Window         int
	PassDuplicates bool
	// FailClosed holds a chain at its first error finding (and at a record
	// it could not check): none of its later records pass. Without it
	// (report mode) a chain goes on and only records whose own hash
	// verifies pass, as for one chain.
	FailClosed bool
	// MaxChains bounds the chains held in memory (default 100000). A chain
	// first seen beyond it is not verified: its records are not passed and
	// each chain mark naming it is a chain_held finding.
	MaxChains int
}

// ChainState is one chain's verification state in a Multi.
type ChainState struct {
	ID         string
	v          *Verifier
	Held       bool
	HeldSeq    int64  // the first seq not passed on (0: unknown)
	HeldReason Reason // the finding that held it
	Refused    int64  // records not passed on since it was held
}

// Verifier is the chain's own verifier (its Stats, Head, Failed).
func (s *ChainState) Verifier() *Verifier { return s.v }

// Multi verifies many interleaved chains at once, each with its own
// Verifier (issue 15). A chain mark selects the chain the record lines
// after it belong to; a chain first seen is anchored by its chain mark's
// anchor, or else by the genesis rule (its first record must be seq 1 with
// an empty prevHash); one first seen in the middle without an anchor is
// held (unanchored), not trusted. A chain that breaks is held on its own:
// the others keep flowing.
type Multi struct {
	opt      MultiOptions
	chains   map[string]*ChainState
	cur      *ChainState
	overflow string // the chain selected that MaxChains kept out ("" none)
	held     int
	findings []Finding

	overflowSeen map[string]struct{}
	// Overflowed counts chain marks refused for MaxChains.
	Overflowed int64
}

// maxOverflowNamed bounds the chains kept out by MaxChains that are named
// in a finding (each once).
const maxOverflowNamed = 1024

// NewMulti returns a Multi.
func NewMulti(opt MultiOptions) *Multi {
	if opt.Window <= 0 {
		opt.Window = 64
	}
	if opt.MaxChains <= 0 {
		opt.MaxChains = 100000
	}
	return &Multi{opt: opt, chains: make(map[string]*ChainState), overflowSeen: make(map[string]struct{})}
}

// Current is the chain the next record belongs to (nil before any chain
// mark, or when the selected chain was kept out by MaxChains).
func (m *Multi) Current() *ChainState { return m.cur }

// Chains returns every chain's state, by id.
func (m *Multi) Chains() []*ChainState {
	out := make([]*ChainState, 0, len(m.chains))
	for _, s := range m.chains {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Chain is the state of chain id (nil when it was never seen).
func (m *Multi) Chain(id string) *ChainState { return m.chains[id] }

// Len is the number of chains held in memory.
func (m *Multi) Len() int { return len(m.chains) }

// HeldCount is the number of chains held (including those kept out by
// MaxChains).
func (m *Multi) HeldCount() int { return m.held }

func (m *Multi) newVerifier(a *Anchor) *Verifier {
	return NewVerifier(Options{Window: m.opt.Window, PassDuplicates: m.opt.PassDuplicates, Anchor: a})
}

// Mark applies a mark at input line num: a chain mark selects (and, for a
// chain first seen, anchors) a chain; an anchor or skip mark applies to the
// current chain.
func (m *Multi) Mark(num int64, mk *Mark) []Finding {
	m.findings = m.findings[:0]
	if mk.Type != MarkChain {
		s := m.cur
		switch {
		case s == nil && m.overflow != "":
		case s == nil:
			m.findings = append(m.findings, Finding{Reason: ReasonBadMark, Severity: SeverityError, FirstLine: num, LastLine: num, Count: 1,
				Detail: fmt.Sprintf("%s mark before any chain mark: in a stream of many chains every mark follows the chain mark of its chain", mk.Type)})
		case !s.Held:
			m.collect(s, s.v.ApplyMark(num, mk))
			m.holdIfFailed(s, num, s.v.Started(), 0)
		}
		return m.findings
	}
	if s := m.cur; s != nil && s.ID != mk.Chain {
		m.collect(s, s.v.Flush()) // its open range is complete
	}
	s := m.chains[mk.Chain]
	m.overflow = ""
	switch {
	case s == nil && len(m.chains) >= m.opt.MaxChains:
		m.cur = nil
		m.overflow = mk.Chain
		m.Overflowed++
		if _, seen := m.overflowSeen[mk.Chain]; seen || len(m.overflowSeen) >= maxOverflowNamed {
			return m.findings // named once (and at most maxOverflowNamed of them); counted in Overflowed
		}
		m.overflowSeen[mk.Chain] = struct{}{}
		m.held++
		m.findings = append(m.findings, Finding{Chain: mk.Chain, Reason: ReasonChainHeld, Severity: SeverityError, FirstLine: num, LastLine: num, Count: 1,
			Detail: fmt.Sprintf("not verified: %d chains are held in memory already (--max-chains): none of its records are passed on; the other chains go on. Fix: raise --max-chains, or split the topic's partitions among more consumers", m.opt.MaxChains)})
		return m.findings
	case s == nil:
		var a *Anchor
		if mk.Anchored && mk.Seq > 0 {
			a = &Anchor{Seq: mk.Seq, Hash: mk.Hash}
		}
		s = &ChainState{ID: mk.Chain, v: m.newVerifier(a)}
		m.chains[mk.Chain] = s
	case s.Held:
	case mk.Anchored && mk.Seq > 0:
		// The chain comes again with an anchor: the consumer started
		// over (a rebalance). An anchor at or below the head is proven
		// by the replay that follows; one past it was verified and
		// delivered by another verifier (the partition moved away and
		// back): the chain resumes there.
		if head, _ := s.v.Head(); mk.Seq > head {
			m.collect(s, s.v.Finish())
			old := s.v
			s.v = m.newVerifier(&Anchor{Seq: mk.Seq, Hash: mk.Hash})
			s.v.stats.Records, s.v.stats.Verified = old.stats.Records, old.stats.Verified
		}
	}
	m.cur = s
	return m.findings
}

// Check verifies one record line of the current chain. pass says whether
// it may be passed on.
func (m *Multi) Check(num int64, line []byte) (pass bool, done []Finding) {
	m.findings = m.findings[:0]
	s := m.cur
	if s == nil {
		if m.overflow == "" {
			m.findings = append(m.findings, Finding{Reason: ReasonBadMark, Severity: SeverityError, FirstLine: num, LastLine: num, Count: 1,
				Detail: "a record line before any chain mark: in a stream of many chains every record follows the chain mark of its chain"})
		}
		return false, m.findings
	}
	if s.Held {
		s.Refused++
		return false, nil
	}
	v := s.v
	started := v.Started()
	head, _ := v.Head()
	recs := v.stats.Records
	pass, f := v.Check(num, line)
	m.collect(s, f)
	v.trim()
	if !started && v.stats.Records > recs && v.stats.FirstSeq > 1 {
		// First seen in the middle, with no anchor: not trusted. (The
		// verifier's own unanchored notice, which advises flags of one
		// chain, gives way to the hold.)
		kept := m.findings[:0]
		for _, f := range append(m.findings, v.Flush()...) {
			if f.Reason != ReasonUnanchored {
				kept = append(kept, f)
			}
		}
		m.findings = kept
		m.hold(s, num, v.stats.FirstSeq, ReasonUnanchored,
			fmt.Sprintf("unanchored: first seen at seq %d with no anchor in its chain mark, so its link to seq %d is not checked", v.stats.FirstSeq, v.stats.FirstSeq-1),
			"give it an anchor (the last seq and recordHash delivered, from the host's cursor: audit-consume --set-anchor CHAIN=SEQ:HASH), or consume the topic from its earliest offset")
		return false, m.findings
	}
	if m.opt.FailClosed && m.holdIfFailed(s, num, true, head+1) {
		return false, m.findings
	}
	return pass, m.findings
}

// holdIfFailed holds s when its verifier found an error (or a record it
// could not check) in fail-closed mode.
func (m *Multi) holdIfFailed(s *ChainState, num int64, started bool, next int64) bool {
	if !m.opt.FailClosed || !(s.v.Failed() || s.v.InputFailed()) {
		return false
	}
	m.collect(s, s.v.Flush())
	seq, reason := next, ReasonBadMark
	for _, f := range m.findings {
		if f.Severity == SeverityError || f.Reason == ReasonLineTooLong {
			reason = f.Reason
			if f.FirstSeq > 0 {
				seq = f.FirstSeq
			}
			break
		}
	}
	m.hold(s, num, seq, reason, fmt.Sprintf("%s at seq %d", reason, seq),
		fmt.Sprintf("find out what changed the chain at seq %d on the host it comes from (audit-verify --db on its database); the chain stays held in every run until its records verify, and nothing of it is lost: the consumer keeps its partition's committed offset at its first record not delivered", seq))
	return true
}

func (m *Multi) hold(s *ChainState, num, seq int64, reason Reason, what, fix string) {
	if s.Held {
		return
	}
	s.Held, s.HeldSeq, s.HeldReason = true, seq, reason
	m.held++
	m.findings = append(m.findings, Finding{Chain: s.ID, Reason: ReasonChainHeld, Severity: SeverityError, FirstSeq: seq, LastSeq: seq, FirstLine: num, LastLine: num, Count: 1,
		Detail: fmt.Sprintf("held at seq %d (%s): none of its later records are passed on; the other chains go on. Fix: %s", seq, what, fix)})
}

// collect adds a chain's findings, naming the chain.
func (m *Multi) collect(s *ChainState, fs []Finding) {
	for _, f := range fs {
		f.Chain = s.ID
		m.findings = append(m.findings, f)
	}
}

// LineProblem records a line that could not be read whole; it belongs to
// the current chain.
func (m *Multi) LineProblem(num int64, reason Reason, detail string) []Finding {
	m.findings = m.findings[:0]
	s := m.cur
	switch {
	case s == nil && m.overflow != "":
	case s == nil:
		m.findings = append(m.findings, Finding{Reason: reason, Severity: SeverityOf(reason), FirstLine: num, LastLine: num, Count: 1, Detail: detail})
	case s.Held:
		s.Refused++
	default:
		head, _ := s.v.Head()
		m.collect(s, s.v.LineProblem(num, reason, detail))
		m.holdIfFailed(s, num, true, head+1)
	}
	return m.findings
}

// Note records a finding about a line that is not a record (a mark refused).
func (m *Multi) Note(num int64, reason Reason, detail string) []Finding {
	m.findings = m.findings[:0]
	if s := m.cur; s != nil && !s.Held {
		m.collect(s, s.v.Note(num, reason, detail))
		m.holdIfFailed(s, num, true, 0)
		return m.findings
	}
	m.findings = append(m.findings, Finding{Reason: reason, Severity: SeverityOf(reason), FirstLine: num, LastLine: num, Count: 1, Detail: detail})
	return m.findings
}

// Flush closes the current chain's open range (the input paused).
func (m *Multi) Flush() []Finding {
	m.findings = m.findings[:0]
	if s := m.cur; s != nil {
		m.collect(s, s.v.Flush())
	}
	return m.findings
}

// Finish closes every chain's open range and replay, by chain id.
func (m *Multi) Finish() []Finding {
	m.findings = m.findings[:0]
	for _, s := range m.Chains() {
		m.collect(s, s.v.Finish())
	}
	return m.findings
}

// Stats adds up every chain's counters (Tenants merged; FirstSeq, LastSeq
// and HeadHash are left out: they are per chain).
func (m *Multi) Stats() Stats {
	var t Stats
	t.Tenants = map[string]int64{}
	for _, s := range m.chains {
		st := s.v.Stats()
		t.Records += st.Records
		t.Verified += st.Verified
		t.FastPath += st.FastPath
		t.SlowPath += st.SlowPath
		t.Tombstones += st.Tombstones
		t.Duplicates += st.Duplicates
		t.Unproven += st.Unproven
		t.Holes += st.Holes
		t.Filtered += st.Filtered
		t.Errors += st.Errors
		t.InputErrors += st.InputErrors
		for k, n := range st.Tenants {
			t.Tenants[k] += n
		}
	}
	return t
}

// trimCap is the most scratch space a chain's verifier keeps between its
// records: a chain that met a large record (escaped strings, the slow
// path) does not hold a buffer that size for as long as it lives.
const trimCap = 1024

func (v *Verifier) trim() {
	if cap(v.canon) > trimCap {
		v.canon = nil
	}
	if cap(v.parser.scratch) > trimCap {
		v.parser.scratch = nil
	}
}
