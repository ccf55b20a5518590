package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/witness"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Reason is the code of a finding. The codes are a public contract: they
// appear in reports and operators grep for them. Every one is of severity
// error: each means that the log cannot be shown to be the history that was
// signed.
type Reason string

const (
	// The log is shorter than a signed size.
	ReasonTruncatedTail Reason = "truncated_tail"
	// The log's root at a signed size differs from the signed root, and no
	// larger checkpoint matches the log: rows in (FirstSeq-1, LastSeq] were
	// rewritten.
	ReasonRewrite Reason = "rewrite"
	// No signed root matches the log at all, the smallest included.
	ReasonReplacedChain Reason = "replaced_chain"
	// The newest checkpoint presented is older than the trusted state.
	ReasonRollback Reason = "rollback"
	// Two validly signed checkpoints of one size with different roots.
	ReasonEquivocation Reason = "equivocation"
	// Two validly signed checkpoints that cannot be one history: a
	// consistency proof from the smaller to the larger, made from the log,
	// verifies against the larger's root and not against the smaller's.
	ReasonInconsistent Reason = "inconsistent"
	// A trusted key's signature does not verify.
	ReasonBadSignature Reason = "bad_signature"
	// A checkpoint that no trusted key signed.
	ReasonUnknownKey Reason = "unknown_key"
	// A checkpoint, checkpoint-file line or state that is not well formed.
	ReasonMalformed Reason = "malformed"
	// A validly signed checkpoint of another log.
	ReasonOriginMismatch Reason = "origin_mismatch"
	// Records after the last signed size older than Options.MaxUnsealed.
	ReasonUnsealedTail Reason = "unsealed_tail"
	// The record stream was not seqs 1, 2, 3, ...: the tree cannot be
	// computed past the break, and checkpoints beyond it are not checked.
	ReasonStreamBreak Reason = "stream_break"
	// With a witness quorum: a cosignature by a configured witness that does
	// not verify (the note or the cosignature was altered).
	ReasonBadCosignature Reason = "bad_cosignature"
	// With a witness quorum: signed checkpoints the log matches that no
	// checkpoint with the quorum of witness cosignatures covers (older than
	// Options.MaxUnwitnessed).
	ReasonUnwitnessed Reason = "unwitnessed"
)

// Finding is one problem the Checker found. FirstSeq..LastSeq are the rows
// concerned, where there are such rows; Size is the signed size concerned;
// Line locates the checkpoint concerned in the checkpoint input (0: the
// trusted state, or none); Notes holds the signed notes concerned, verbatim,
// as evidence.
type Finding struct {
	Reason   Reason         `json:"reason"`
	Severity chain.Severity `json:"severity"`
	FirstSeq int64          `json:"firstSeq,omitempty"`
	LastSeq  int64          `json:"lastSeq,omitempty"`
	Size     int64          `json:"size,omitempty"`
	LogSize  int64          `json:"logSize"`
	Line     int64          `json:"line,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
	Detail   string         `json:"detail"`
}

func (f Finding) String() string {
	where := ""
	switch {
	case f.FirstSeq == 0:
	case f.FirstSeq == f.LastSeq:
		where = fmt.Sprintf(" seq %d", f.FirstSeq)
	default:
		where = fmt.Sprintf(" seq %d..%d", f.FirstSeq, f.LastSeq)
	}
	if where == "" {
		return fmt.Sprintf("%s %s: %s", f.Severity, f.Reason, f.Detail)
	}
	return fmt.Sprintf("%s %s:%s: %s", f.Severity, f.Reason, where, f.Detail)
}

// Options configure a Checker.
type Options struct {
	// Verifiers are the trusted keys (NewVerifiers, LoadVerifiers). Required.
	Verifiers note.Verifiers
	// Origin is the log's name. Required: a checkpoint of another origin is
	// reported (origin_mismatch), never compared with this log.
	Origin string
	// Trusted is the state kept from the last successful run (ReadState), or
	// nil on the first run, when the checkpoints are trusted on first use.
	Trusted *State
	// MaxUnsealed, if positive, is how old the oldest record after the last
	// signed size may be before it is reported (unsealed_tail). Record ts
	// are milliseconds since the epoch.
	MaxUnsealed time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Witnesses are the witness keys (witness.NewVerifiers) and Quorum how
	// many of them must have cosigned a checkpoint for it to count as
	// witnessed. With Quorum > 0 the trusted state advances only to the
	// newest witnessed checkpoint the log matches, and matched checkpoints
	// past it are an unwitnessed finding unless the first record after
	// the witnessed size is younger than MaxUnwitnessed.
	Witnesses      note.Verifiers
	Quorum         int
	MaxUnwitnessed time.Duration
	// Window is how many recent records are remembered to recognise an
	// exact repeat (an at-least-once replay) and skip it (default 4096).
	Window int
}

// Report is the outcome of a check.
type Report struct {
	Findings    []Finding
	LogSize     int64 // records in the tree: seqs 1..LogSize
	Duplicates  int64 // exact repeats skipped
	Checkpoints int   // validly signed checkpoints of this log, the trusted state included
	Sizes       int   // distinct signed sizes
	Matched     int   // signed sizes whose root the log matches
	Unchecked   int   // signed sizes the log does not reach
	Proofs      int   // consistency proofs checked between consecutive signed sizes
	ProofsOK    int   // of which verified
	Covered     int64 // the largest signed size
	// With a quorum: the newest signed size the log matches with the
	// quorum of cosignatures (0: none), and the signed sizes below it
	// that had no quorum themselves (witnessed later: a gap, not a loss).
	Witnessed       int64
	UnwitnessedGaps []int64
	// The keys added by key rotations followed ("line L: name+hash").
	Rotations []string
	// State is what to persist (WriteState) for the next run: the largest
	// checkpoint that the log matches, consistent with the trusted state. It
	// is nil when no checkpoint matched, or when there is any finding: a
	// failed check never moves trust forward.
	State *State
}

// Failed reports whether the check failed (any finding is an error).
func (r Report) Failed() bool { return len(r.Findings) > 0 }

// Checker checks a log against signed checkpoints and a trusted state. Give
// it every checkpoint first (AddCheckpoint, ReadCheckpoints), then the log's
// records in seq order from seq 1 (Append), then call Finish. Memory is
// O(checkpoints) for the checkpoints themselves, plus O(log n) hashes for
// the tree (Builder's frontier) and the consistency proof in progress, plus
// Options.Window records: it does not grow with the log.
//
// At each signed size the Checker records the log's root; between each two
// consecutive signed sizes it builds the RFC 6962 consistency proof from the
// log as the log streams by and checks it with tlog.CheckTree. Findings:
// see Reason. A Checker is not safe for concurrent use.
type Checker struct {
	opt      Options
	b        *Builder
	trusted  *signed
	cps      []*signed
	findings []Finding
	added    int

	started bool
	entries []*sizeEntry
	next    int // the next entry the stream will reach
	pair    *pairProof
	covered int64

	win       []winEntry
	dups      int64
	broken    bool
	breakSeq  int64 // the first seq not in the tree
	breakMsg  string
	oldestSeq int64 // the oldest record (by ts) after covered
	oldestTS  int64
	firstTS   int64

	report *Report

	trust          *trustSet
	rotations      []*rotation
	rotated        []string
	pendingTrusted *State
}

type signed struct {
	cp        Checkpoint
	line      int64
	where     string
	trusted   bool
	cosigners []string
}

// sizeEntry is one distinct signed size.
type sizeEntry struct {
	size    int64
	cps     []*signed // the trusted state first, then input order
	rep     *signed   // the one whose root the log matches, else cps[0]
	reached bool
	matched bool
	logRoot tlog.Hash
	proved  bool // the proof from the previous entry was checked
	proofOK bool
	afterTS int64 // ts of the record after this size
}

// pairProof is the consistency proof being gathered between two consecutive
// signed sizes: the stored hashes tlog.ProveTree will ask for.
type pairProof struct {
	old, new *sizeEntry
	have     map[int64]tlog.Hash
	want     map[int64]bool
}

type winEntry struct {
	seq  int64
	hash [32]byte
}

var errStarted = errors.New("add checkpoint: the record stream has started; give every checkpoint before the first Append")

// NewChecker returns a Checker. A trusted state whose note does not verify is
// a finding, not an error: the check then runs without it and fails.
func NewChecker(opt Options) (*Checker, error) {
	if opt.Verifiers == nil {
		return nil, errors.New("new checker: no verifier keys")
	}
	if opt.Origin == "" {
		return nil, errors.New("new checker: no origin")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Window <= 0 {
		opt.Window = 4096
	}
	c := &Checker{opt: opt, b: NewBuilder(opt.Origin), win: make([]winEntry, opt.Window)}
	c.trust = &trustSet{base: opt.Verifiers}
	if t := opt.Trusted; t != nil {
		if t.Origin != opt.Origin {
			return nil, fmt.Errorf("new checker: the trusted state is of origin %q, not %q", t.Origin, opt.Origin)
		}
		cp, err := t.Open(opt.Verifiers)
		if errors.Is(err, ErrUnknownKey) {
			// Perhaps signed by a key a rotation in the checkpoint file adds.
			c.pendingTrusted = t
		} else if err != nil {
			c.noteProblem(err, 0, []byte(t.Note), "the trusted state")
		} else {
			c.trusted = &signed{cp: cp, where: "the trusted state", trusted: true}
			c.cps = append(c.cps, c.trusted)
		}
	}
	return c, nil
}

// AddCheckpoint adds one signed checkpoint note. A note that does not open
// (bad_signature, unknown_key, malformed) or is of another origin
// (origin_mismatch) is a finding; it is then left out of the check. Findings
// name it by its 1-based position among the AddCheckpoint calls. The only
// error is a call after the first Append.
func (c *Checker) AddCheckpoint(msg []byte) error {
	if c.started {
		return errStarted
	}
	c.added++
	c.add(msg, int64(c.added), fmt.Sprintf("checkpoint #%d", c.added))
	return nil
}

// ReadCheckpoints adds the checkpoints of a checkpoint file: NDJSON, one
// object per line with the signed note in its "checkpoint" member (other
// members are ignored), as AppendCheckpoint writes them. Blank lines are
// skipped; a line that is not such an object is a finding (malformed) naming
// its line number, as is any note AddCheckpoint would report. It returns an
// error only for a failure to read, ctx's error, or a call after the first
// Append.
func (c *Checker) ReadCheckpoints(ctx context.Context, r io.Reader) error {
	if c.started {
		return errStarted
	}
	rd, err := ndjson.NewReader(r, ndjson.Options{MaxLine: 4 * MaxNoteSize})
	if err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	defer rd.Close()
	// Key rotations first (wherever they are in the file), then the
	// checkpoints, under the keys they add.
	var pending []pendingNote
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := rd.Next()
		if err == io.EOF {
			c.followRotations()
			for _, p := range pending {
				if p.finding != nil {
					c.add1(*p.finding)
					continue
				}
				c.add(p.msg, p.line, fmt.Sprintf("the checkpoint at line %d", p.line))
			}
			return nil
		}
		var le *ndjson.LineError
		if errors.As(err, &le) {
			pending = append(pending, pendingNote{finding: &Finding{Reason: ReasonMalformed, Line: le.Num, Detail: "checkpoint file " + le.Error()}})
			continue
		}
		if err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		members, err := strictObject(line.Bytes, false)
		var note string
		if err == nil {
			if v, ok := members["rotation"]; ok {
				if json.Unmarshal(v, &note) != nil {
					err = errors.New(`"rotation" is not a string`)
				} else {
					c.rotations = append(c.rotations, &rotation{msg: []byte(note), line: line.Num})
					continue
				}
			}
		}
		if err == nil {
			v, ok := members["checkpoint"]
			switch {
			case !ok:
				err = errors.New(`no "checkpoint" member`)
			case json.Unmarshal(v, &note) != nil:
				err = errors.New(`"checkpoint" is not a string`)
			}
		}
		if err != nil {
			pending = append(pending, pendingNote{finding: &Finding{Reason: ReasonMalformed, Line: line.Num,
				Detail: fmt.Sprintf("checkpoint file line %d: %v", line.Num, err)}})
			continue
		}
		pending = append(pending, pendingNote{msg: []byte(note), line: line.Num})
	}
}

type pendingNote struct {
	msg     []byte
	line    int64
	finding *Finding // a line that was not a checkpoint
}

// AppendCheckpoint writes one line of a checkpoint file: {"checkpoint":"<note>"}
// and a newline, in a single Write (so that appends to a file opened with
// O_APPEND do not interleave).
func AppendCheckpoint(w io.Writer, msg []byte) error {
	b := appendJSONString([]byte(`{"checkpoint":`), string(msg))
	b = append(b, "}\n"...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("append checkpoint: %w", err)
	}
	return nil
}

func (c *Checker) add(msg []byte, line int64, where string) {
	cp, err := Open(msg, c.trust)
	if err != nil {
		c.noteProblem(err, line, msg, where)
		return
	}
	if cp.Origin != c.opt.Origin {
		c.add1(Finding{Reason: ReasonOriginMismatch, Line: line, Notes: []string{string(msg)},
			Detail: fmt.Sprintf("%s is validly signed but of origin %q, not this log's %q", where, cp.Origin, c.opt.Origin)})
		return
	}
	sg := &signed{cp: cp, line: line, where: where}
	if c.opt.Quorum > 0 && c.opt.Witnesses != nil {
		cs, err := witness.Cosignatures(msg, c.opt.Witnesses)
		if err != nil {
			c.add1(Finding{Reason: ReasonBadCosignature, Size: cp.Size, Line: line, Notes: []string{string(msg)},
				Detail: fmt.Sprintf("%s (size %d): %v; it counts as signed by the log only", where, cp.Size, err)})
		}
		for _, x := range cs {
			sg.cosigners = append(sg.cosigners, x.Witness+"+"+x.KeyID)
		}
	}
	c.cps = append(c.cps, sg)
}

func (c *Checker) noteProblem(err error, line int64, msg []byte, where string) {
	reason := ReasonMalformed
	switch {
	case errors.Is(err, ErrBadSignature):
		reason = ReasonBadSignature
	case errors.Is(err, ErrUnknownKey):
		reason = ReasonUnknownKey
	}
	f := Finding{Reason: reason, Line: line, Detail: fmt.Sprintf("%s: %v", where, err)}
	if len(msg) <= MaxNoteSize {
		f.Notes = []string{string(msg)}
	}
	c.add1(f)
}

func (c *Checker) add1(f Finding) {
	f.Severity = chain.SeverityError
	c.findings = append(c.findings, f)
}

// seal groups the checkpoints by size, once they are all in.
func (c *Checker) seal() {
	c.started = true
	if t := c.pendingTrusted; t != nil {
		cp, err := t.Open(c.trust)
		if err != nil {
			c.noteProblem(err, 0, []byte(t.Note), "the trusted state")
		} else {
			c.trusted = &signed{cp: cp, where: "the trusted state", trusted: true}
			c.cps = append([]*signed{c.trusted}, c.cps...)
		}
	}
	bySize := make(map[int64]*sizeEntry)
	for _, s := range c.cps {
		e := bySize[s.cp.Size]
		if e == nil {
			e = &sizeEntry{size: s.cp.Size, rep: s}
			bySize[s.cp.Size] = e
			c.entries = append(c.entries, e)
		}
		e.cps = append(e.cps, s)
	}
	slices.SortFunc(c.entries, func(a, b *sizeEntry) int { return cmpInt(a.size, b.size) })
	if n := len(c.entries); n > 0 {
		c.covered = c.entries[n-1].size
	}
	c.b.capture = c.capture
	c.reach()
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Append adds the log's next record: its seq, recordHash (64 lowercase hex)
// and ts (ms since the epoch). Records must come in seq order from seq 1. An
// exact repeat of a recent record is skipped; any other seq out of order
// breaks the stream (a stream_break finding): later records are ignored.
// The only error is a malformed recordHash (the caller passes records its
// parser accepted, so that is a bug in the caller).
func (c *Checker) Append(seq int64, recordHash []byte, ts int64) error {
	raw, err := decodeRecordHash(recordHash)
	if err != nil {
		return fmt.Errorf("check seq %d: %w", seq, err)
	}
	if !c.started {
		c.seal()
	}
	if c.broken {
		return nil
	}
	want := c.b.size + 1
	w := int64(len(c.win))
	if seq != want {
		var was *winEntry
		if seq >= 1 && seq < want && want-seq <= w {
			if e := &c.win[(seq-1)%w]; e.seq == seq {
				was = e
			}
		}
		switch {
		case was != nil && was.hash == raw:
			c.dups++
			return nil
		case was != nil:
			c.breakMsg = fmt.Sprintf("seq %d appears again with a different recordHash (%x…, was %x…)", seq, raw[:6], was.hash[:6])
		case seq > want:
			c.breakMsg = fmt.Sprintf("seq %d follows seq %d: seqs %d..%d are missing", seq, want-1, want, seq-1)
		default:
			c.breakMsg = fmt.Sprintf("seq %d follows seq %d", seq, want-1)
		}
		c.broken = true
		c.breakSeq = want
		return nil
	}
	if seq == 1 {
		c.firstTS = ts
	}
	if c.next > 0 && c.entries[c.next-1].size == seq-1 {
		c.entries[c.next-1].afterTS = ts
	}
	c.b.appendLeaf(raw)
	c.win[(seq-1)%w] = winEntry{seq: seq, hash: raw}
	if seq > c.covered && (c.oldestSeq == 0 || ts < c.oldestTS) {
		c.oldestSeq, c.oldestTS = seq, ts
	}
	c.reach()
	return nil
}

// reach handles the signed size the stream has just reached, if any.
func (c *Checker) reach() {
	for c.next < len(c.entries) && c.entries[c.next].size == c.b.size {
		c.hit(c.next)
		c.next++
	}
}

func (c *Checker) hit(i int) {
	e := c.entries[i]
	e.reached = true
	e.logRoot = c.b.Root()
	for _, s := range e.cps {
		if s.cp.Root == e.logRoot {
			e.rep, e.matched = s, true
			break
		}
	}
	if e.size == 0 {
		return // the empty tree is a prefix of every tree: no proof
	}
	if c.pair != nil && c.pair.new == e {
		c.finishPair()
	}
	if i+1 < len(c.entries) {
		c.startPair(e, c.entries[i+1])
	}
}

// proofIndexes returns the stored-hash indexes tlog.ProveTree(t, n) reads.
func proofIndexes(t, n int64) []int64 {
	var idx []int64
	tlog.ProveTree(t, n, tlog.HashReaderFunc(func(x []int64) ([]tlog.Hash, error) {
		idx = append(idx, x...)
		return make([]tlog.Hash, len(x)), nil
	}))
	return idx
}

// startPair starts gathering the proof from old's size to new's. Every
// stored hash it needs is either a frontier subtree now (those that ended at
// or before old's size are maximal subtrees of it) or completes while the
// stream goes on to new's size, when capture takes it.
func (c *Checker) startPair(old, new *sizeEntry) {
	p := &pairProof{old: old, new: new, have: make(map[int64]tlog.Hash), want: make(map[int64]bool)}
	front := make(map[int64]tlog.Hash)
	c.b.frontierHashes(func(x int64, h tlog.Hash) { front[x] = h })
	for _, x := range proofIndexes(new.size, old.size) {
		if h, ok := front[x]; ok {
			p.have[x] = h
		} else {
			p.want[x] = true
		}
	}
	c.pair = p
}

func (c *Checker) capture(level int, k int64, h tlog.Hash) {
	p := c.pair
	if p == nil || len(p.want) == 0 {
		return
	}
	if x := tlog.StoredHashIndex(level, k); p.want[x] {
		p.have[x] = h
		delete(p.want, x)
	}
}

func (c *Checker) finishPair() {
	p := c.pair
	c.pair = nil
	proof, err := tlog.ProveTree(p.new.size, p.old.size, tlog.HashReaderFunc(func(x []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(x))
		for i, ix := range x {
			h, ok := p.have[ix]
			if !ok {
				return nil, fmt.Errorf("stored hash %d not captured", ix)
			}
			out[i] = h
		}
		return out, nil
	}))
	if err != nil {
		// The index arithmetic guarantees every hash is captured; tlog
		// itself panics on "bad math" of this kind.
		panic(fmt.Sprintf("%v: proof %d -> %d: %v", errInternal, p.old.size, p.new.size, err))
	}
	p.new.proved = true
	p.new.proofOK = CheckConsistency(p.old.rep.cp, p.new.rep.cp, proof) == nil
}

// Finish evaluates what was gathered and returns the report. Calling it
// again returns the same report.
func (c *Checker) Finish() Report {
	if c.report != nil {
		return *c.report
	}
	if !c.started {
		c.seal()
	}
	L := c.b.size
	r := &Report{LogSize: L, Duplicates: c.dups, Checkpoints: len(c.cps), Sizes: len(c.entries), Covered: c.covered, Rotations: c.rotated}
	c.equivocations()
	c.rollback()
	c.tail(r)
	c.walk(r)
	c.unsealed()
	witnessed := c.unwitnessed(r)
	for _, e := range c.entries {
		if e.proved {
			r.Proofs++
			if e.proofOK {
				r.ProofsOK++
			}
		}
	}
	for i := range c.findings {
		c.findings[i].LogSize = L
	}
	r.Findings = c.findings
	if len(r.Findings) == 0 {
		for _, e := range slices.Backward(c.entries) {
			if c.opt.Quorum > 0 && e != witnessed {
				continue // trust moves only to a witnessed checkpoint
			}
			if e.matched && e.size > 0 {
				s := StateOf(e.rep.cp)
				r.State = &s
				break
			}
		}
	}
	c.report = r
	return *r
}

func (c *Checker) equivocations() {
	for _, e := range c.entries {
		first := e.cps[0]
		seen := []tlog.Hash{first.cp.Root}
		for _, s := range e.cps[1:] {
			if slices.Contains(seen, s.cp.Root) {
				continue
			}
			seen = append(seen, s.cp.Root)
			log := "the log does not reach this size"
			switch {
			case !e.reached:
			case e.logRoot == first.cp.Root:
				log = "the log matches the first"
			case e.logRoot == s.cp.Root:
				log = "the log matches the second"
			default:
				log = "the log matches neither"
			}
			c.add1(Finding{Reason: ReasonEquivocation, Size: e.size, Line: s.line,
				Notes: []string{string(first.cp.Note), string(s.cp.Note)},
				Detail: fmt.Sprintf("two validly signed checkpoints of size %d have different roots: %s has %s, %s has %s; %s",
					e.size, first.where, first.cp.Root, s.where, s.cp.Root, log)})
		}
	}
}

func (c *Checker) rollback() {
	if c.trusted == nil {
		return
	}
	var newest *signed
	for _, s := range c.cps {
		if !s.trusted && (newest == nil || s.cp.Size > newest.cp.Size) {
			newest = s
		}
	}
	if newest != nil && newest.cp.Size < c.trusted.cp.Size {
		c.add1(Finding{Reason: ReasonRollback, Size: newest.cp.Size, Line: newest.line,
			Notes: []string{string(newest.cp.Note), string(c.trusted.cp.Note)},
			Detail: fmt.Sprintf("the newest checkpoint presented (%s, size %d) is older than the trusted state (size %d): the checkpoints were rolled back or are stale",
				newest.where, newest.cp.Size, c.trusted.cp.Size)})
	}
}

// tail reports signed sizes the log does not reach.
func (c *Checker) tail(r *Report) {
	L := c.b.size
	var beyond []*sizeEntry
	for _, e := range c.entries {
		if !e.reached {
			beyond = append(beyond, e)
		}
	}
	r.Unchecked = len(beyond)
	if c.broken {
		msg := fmt.Sprintf("%s: the tree covers seqs 1..%d only", c.breakMsg, L)
		if n := len(beyond); n > 0 {
			msg += fmt.Sprintf("; %d signed sizes (%d..%d) are not checked", n, beyond[0].size, beyond[n-1].size)
		}
		c.add1(Finding{Reason: ReasonStreamBreak, FirstSeq: c.breakSeq, LastSeq: c.breakSeq, Detail: msg})
		return
	}
	if len(beyond) == 0 {
		return
	}
	e := beyond[len(beyond)-1]
	c.add1(Finding{Reason: ReasonTruncatedTail, FirstSeq: L + 1, LastSeq: e.size, Size: e.size, Line: e.rep.line,
		Notes: []string{string(e.rep.cp.Note)},
		Detail: fmt.Sprintf("the log has %d records but %s signed size %d: seqs %d..%d (%d records) are missing",
			L, e.rep.where, e.size, L+1, e.size, e.size-L)})
}

// walk compares the signed roots with the log's, in size order.
func (c *Checker) walk(r *Report) {
	var reached []*sizeEntry
	for _, e := range c.entries {
		switch {
		case !e.reached:
		case e.size == 0:
			if !e.matched {
				c.add1(Finding{Reason: ReasonMalformed, Line: e.rep.line, Notes: []string{string(e.rep.cp.Note)},
					Detail: fmt.Sprintf("%s has size 0 but not the empty tree's root", e.rep.where)})
			}
		default:
			reached = append(reached, e)
			if e.matched {
				r.Matched++
			}
		}
	}
	if len(reached) == 0 {
		return
	}
	if r.Matched == 0 {
		first, last := reached[0], reached[len(reached)-1]
		c.add1(Finding{Reason: ReasonReplacedChain, FirstSeq: 1, LastSeq: first.size, Size: first.size, Line: first.rep.line,
			Notes: []string{string(first.rep.cp.Note)},
			Detail: fmt.Sprintf("none of the %d signed sizes the log reaches (%d..%d) matches the log's root, not even the smallest (%s: signed %s, log %s): the log was replaced, or rewritten at or before seq %d",
				len(reached), first.size, last.size, first.rep.where, first.rep.cp.Root, first.logRoot, first.size)})
		return
	}
	var lastMatch int64
	var run []*sizeEntry // mismatching sizes since lastMatch
	for i, e := range reached {
		if !e.matched {
			run = append(run, e)
			continue
		}
		if len(run) > 0 {
			a := run[0]
			proof := "it verifies against neither"
			if e.proved && !e.proofOK {
				proof = fmt.Sprintf("it verifies against %s's root and not against %s's", e.rep.where, run[len(run)-1].rep.where)
			}
			c.add1(Finding{Reason: ReasonInconsistent, FirstSeq: lastMatch + 1, LastSeq: a.size, Size: a.size, Line: a.rep.line,
				Notes: []string{string(a.rep.cp.Note), string(e.rep.cp.Note)},
				Detail: fmt.Sprintf("%s (size %d) and %s (size %d) are validly signed but not one history: the log matches the larger, not the smaller (signed %s, log %s), and the consistency proof from size %d to %d made from the log fails: %s. Rows in (%d, %d] differ: the log was rewritten there and the rewrite signed later, or the key signed a fork",
					a.rep.where, a.size, e.rep.where, e.size, a.rep.cp.Root, a.logRoot, run[len(run)-1].size, e.size, proof, lastMatch, a.size)})
			run = nil
		} else if i > 0 && reached[i-1].matched && e.proved && !e.proofOK {
			// Both roots match the log, so the proof must verify.
			panic(fmt.Sprintf("%v: consistency proof %d -> %d failed between matching roots", errInternal, reached[i-1].size, e.size))
		}
		lastMatch = e.size
	}
	if len(run) > 0 {
		a, z := run[0], run[len(run)-1]
		more := ""
		if len(run) > 1 {
			more = fmt.Sprintf("; %d larger signed sizes up to %d mismatch too", len(run)-1, z.size)
		}
		c.add1(Finding{Reason: ReasonRewrite, FirstSeq: lastMatch + 1, LastSeq: a.size, Size: a.size, Line: a.rep.line,
			Notes: []string{string(a.rep.cp.Note)},
			Detail: fmt.Sprintf("the log's root at size %d (%s) differs from the one %s signed (%s), while it matches at size %d: rows in (%d, %d] (seqs %d..%d) were rewritten%s",
				a.size, a.logRoot, a.rep.where, a.rep.cp.Root, lastMatch, lastMatch, a.size, lastMatch+1, a.size, more)})
	}
}

func (c *Checker) unsealed() {
	L := c.b.size
	if c.opt.MaxUnsealed <= 0 || L <= c.covered || c.oldestSeq == 0 {
		return
	}
	oldest := time.UnixMilli(c.oldestTS)
	age := c.opt.Now().Sub(oldest)
	if age <= c.opt.MaxUnsealed {
		return
	}
	c.add1(Finding{Reason: ReasonUnsealedTail, FirstSeq: c.covered + 1, LastSeq: L, Size: c.covered,
		Detail: fmt.Sprintf("%d records (seqs %d..%d) are not covered by a signed checkpoint; the oldest, seq %d at %s, is %s old, more than the %s allowed",
			L-c.covered, c.covered+1, L, c.oldestSeq, oldest.UTC().Format(time.RFC3339Nano), age.Round(time.Second), c.opt.MaxUnsealed)})
}

// witnessedBy returns the cosigners of the checkpoints of e whose root the
// log matches, and whether one of them is the trusted state.
func (c *Checker) witnessedBy(e *sizeEntry) (names []string, trusted bool) {
	for _, s := range e.cps {
		if s.cp.Root != e.logRoot {
			continue
		}
		trusted = trusted || s.trusted
		for _, n := range s.cosigners {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names, trusted
}

// unwitnessed applies the quorum: it finds the newest matched size with
// the quorum (the trusted state counts: a clean run with the quorum stored
// it), makes the representative of that size the note with the most
// cosignatures, and reports matched sizes past it. It returns the entry
// the trusted state may advance to (nil without a quorum).
func (c *Checker) unwitnessed(r *Report) *sizeEntry {
	if c.opt.Quorum <= 0 {
		return nil
	}
	var w, last *sizeEntry
	var gaps []int64
	for _, e := range c.entries {
		if !e.matched || e.size == 0 {
			continue
		}
		last = e
		names, trusted := c.witnessedBy(e)
		if len(names) >= c.opt.Quorum || trusted {
			w = e
			r.UnwitnessedGaps = append(r.UnwitnessedGaps, gaps...)
			gaps = nil
			best := -1
			for _, s := range e.cps {
				if s.cp.Root == e.logRoot && len(s.cosigners) > best {
					e.rep, best = s, len(s.cosigners)
				}
			}
			continue
		}
		gaps = append(gaps, e.size)
	}
	from, after := int64(0), c.firstTS
	if w != nil {
		r.Witnessed, from, after = w.size, w.size, w.afterTS
	}
	if last == nil || last == w {
		return w
	}
	age := c.opt.Now().Sub(time.UnixMilli(after))
	if c.opt.MaxUnwitnessed > 0 && age <= c.opt.MaxUnwitnessed {
		return w
	}
	names, _ := c.witnessedBy(last)
	c.add1(Finding{Reason: ReasonUnwitnessed, FirstSeq: from + 1, LastSeq: last.size, Size: last.size, Line: last.rep.line,
		Notes: []string{string(last.rep.cp.Note)},
		Detail: fmt.Sprintf("seqs %d..%d are signed by the log but no checkpoint covering them carries %d witness cosignatures (the newest, size %d, has %d: %v); the newest witnessed size is %d. A view the witnesses never saw (the log's key used to show a rewritten log), or witnesses down longer than --max-unwitnessed (%s; the first unwitnessed record is %s old)",
			from+1, last.size, c.opt.Quorum, last.size, len(names), names, from, c.opt.MaxUnwitnessed, age.Round(time.Second))})
	return w
}
