package checkpoint

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/witness"
)

// The findings of a StoreChecker: what a SIEM's copy of the log lost.
const (
	// Records the store does not hold: a gap in its seqs, or a tail cut
	// before the largest signed size.
	ReasonStoreMissingRecords Reason = "store_missing_records"
	// A checkpoint the store should hold (a reference copy has it, or its
	// size is a multiple of --every the log reached) and does not.
	ReasonStoreMissingCheckpoint Reason = "store_missing_checkpoint"
	// A record the store holds differs from the signed log: its chain
	// does not link, or the store's root at a signed size is not the
	// signed root.
	ReasonStoreAltered Reason = "store_altered"
)

// StoreOptions configure a StoreChecker.
type StoreOptions struct {
	Verifiers note.Verifiers // the log's keys (required)
	Origin    string         // the log's origin (required)
	// Witnesses and Quorum: with Quorum > 0, records past the newest
	// checkpoint the store holds with Quorum cosignatures are unwitnessed.
	Witnesses note.Verifiers
	Quorum    int
	// Reference are checkpoint notes the store must hold (for example the
	// shipper's --out file): each one it lacks is store_missing_checkpoint.
	Reference [][]byte
	// Every, if positive, is seal's --every: the store must hold a
	// checkpoint at each multiple of it up to its last record.
	Every int64
}

// StoreChecker checks the copy of the log a store (a SIEM) returns,
// fetched back with its checkpoints, and names what the store lost as
// ranges of seq. Give it the store's checkpoints (AddCheckpoint), then its
// records in seq order (Add; exact repeats are skipped), then Finish.
// Memory: the checkpoints, and O(log n) hashes for the tree of the prefix
// before the first gap.
type StoreChecker struct {
	opt      StoreOptions
	cps      map[int64][]Checkpoint // by size, the store's
	witnessd map[int64]bool
	sizes    []int64
	findings []Finding

	b        *Builder // the tree while the store's seqs are 1, 2, 3, ...
	next     int64    // the seq expected next
	lastHash string
	gaps     int
	started  bool
	nextSize int  // index in sizes of the next size to compare
	rootBad  bool // a root mismatched: larger sizes mismatch too, said once
}

// NewStoreChecker returns a StoreChecker.
func NewStoreChecker(opt StoreOptions) (*StoreChecker, error) {
	if opt.Verifiers == nil || opt.Origin == "" {
		return nil, errors.New("store checker: verifiers and origin are required")
	}
	return &StoreChecker{opt: opt, cps: map[int64][]Checkpoint{}, witnessd: map[int64]bool{}, b: NewBuilder(opt.Origin), next: 1}, nil
}

// AddCheckpoint adds one checkpoint note the store holds. Notes that do not
// open, or are of another origin, are findings.
func (s *StoreChecker) AddCheckpoint(msg []byte, where string) {
	cp, err := Open(msg, s.opt.Verifiers)
	if err != nil {
		reason := ReasonMalformed
		switch {
		case errors.Is(err, ErrBadSignature):
			reason = ReasonBadSignature
		case errors.Is(err, ErrUnknownKey):
			reason = ReasonUnknownKey
		}
		s.add(Finding{Reason: reason, Notes: []string{string(msg)}, Detail: fmt.Sprintf("%s in the store: %v", where, err)})
		return
	}
	if cp.Origin != s.opt.Origin {
		s.add(Finding{Reason: ReasonOriginMismatch, Size: cp.Size, Notes: []string{string(msg)}, Detail: fmt.Sprintf("%s in the store is of origin %q, not %q", where, cp.Origin, s.opt.Origin)})
		return
	}
	if _, ok := s.cps[cp.Size]; !ok {
		s.sizes = append(s.sizes, cp.Size)
	}
	s.cps[cp.Size] = append(s.cps[cp.Size], cp)
	if s.opt.Quorum > 0 && s.opt.Witnesses != nil {
		cs, err := witness.Cosignatures(msg, s.opt.Witnesses)
		if err != nil {
			s.add(Finding{Reason: ReasonBadCosignature, Size: cp.Size, Notes: []string{string(msg)}, Detail: fmt.Sprintf("%s in the store (size %d): %v", where, cp.Size, err)})
		} else if len(cs) >= s.opt.Quorum {
			s.witnessd[cp.Size] = true
		}
	}
}

func (s *StoreChecker) add(f Finding) {
	f.Severity = "error"
	s.findings = append(s.findings, f)
}

// signedBy returns the smallest size the store holds a checkpoint of that
// is at least seq (0: none).
func (s *StoreChecker) signedBy(seq int64) int64 {
	for _, n := range s.sizes {
		if n >= seq {
			return n
		}
	}
	return 0
}

// Add adds the store's next record. Records must come in seq order; an
// exact repeat of the previous record is skipped.
func (s *StoreChecker) Add(seq int64, recordHash, prevHash string) error {
	if !s.started {
		s.started = true
		slices.Sort(s.sizes)
	}
	switch {
	case seq == s.next-1 && recordHash == s.lastHash:
		return nil // a duplicate the store holds twice
	case seq < s.next:
		return fmt.Errorf("store check: seq %d after seq %d: the records must be in seq order (sort the fetched records)", seq, s.next-1)
	case seq > s.next:
		s.gap(s.next, seq-1)
	default:
		if seq > 1 && prevHash != s.lastHash {
			s.add(Finding{Reason: ReasonStoreAltered, FirstSeq: seq, LastSeq: seq,
				Detail: fmt.Sprintf("the store's seq %d has prevHash %.12s…, but its seq %d has recordHash %.12s…: a record the store holds was altered", seq, prevHash, seq-1, s.lastHash)})
		}
	}
	if s.gaps == 0 {
		if err := s.b.Append(seq, []byte(recordHash)); err != nil {
			return err
		}
		for s.nextSize < len(s.sizes) && s.sizes[s.nextSize] == seq {
			s.compare(seq)
			s.nextSize++
		}
	}
	s.next, s.lastHash = seq+1, recordHash
	return nil
}

func (s *StoreChecker) compare(size int64) {
	if s.rootBad {
		return
	}
	root := s.b.Root()
	for _, cp := range s.cps[size] {
		if cp.Root != root {
			s.add(Finding{Reason: ReasonStoreAltered, FirstSeq: 1, LastSeq: size, Size: size, Notes: []string{string(cp.Note)},
				Detail: fmt.Sprintf("the store's records 1..%d have root %s, not the signed %s: records the store holds were altered, or it holds another log (larger signed sizes differ too)", size, root, cp.Root)})
			s.rootBad = true
			return
		}
	}
}

func (s *StoreChecker) gap(a, b int64) {
	s.gaps++
	by := ""
	if n := s.signedBy(b); n > 0 {
		by = fmt.Sprintf(", signed by the checkpoint of size %d the store holds", n)
	}
	s.add(Finding{Reason: ReasonStoreMissingRecords, FirstSeq: a, LastSeq: b, Size: s.signedBy(b),
		Detail: fmt.Sprintf("the store lacks seqs %d..%d (%d records)%s: deleted in the store, or never delivered", a, b, b-a+1, by)})
}

// StoreReport is the outcome of a StoreChecker.
type StoreReport struct {
	Findings  []Finding
	LastSeq   int64 // the largest seq the store holds
	Sizes     []int64
	Witnessed int64 // the newest size with the quorum (0: none)
}

// Finish names the missing tail, the missing checkpoints and the
// unwitnessed records, and returns every finding.
func (s *StoreChecker) Finish() StoreReport {
	if !s.started {
		slices.Sort(s.sizes)
	}
	last := s.next - 1
	if n := len(s.sizes); n > 0 && s.sizes[n-1] > last {
		s.gap(last+1, s.sizes[n-1])
	}
	held := func(size int64) bool { _, ok := s.cps[size]; return ok }
	named := map[int64]bool{}  // a size's cosigned notes are the same checkpoint: one finding
	var refTop, storeTop int64 // the largest size the reference signed and the store holds
	if n := len(s.sizes); n > 0 {
		storeTop = s.sizes[n-1]
	}
	for i, msg := range s.opt.Reference {
		cp, err := Open(msg, s.opt.Verifiers)
		if err != nil || cp.Origin != s.opt.Origin || held(cp.Size) || named[cp.Size] {
			continue
		}
		named[cp.Size] = true
		refTop = max(refTop, cp.Size)
		s.add(Finding{Reason: ReasonStoreMissingCheckpoint, Size: cp.Size, Notes: []string{string(msg)},
			Detail: fmt.Sprintf("the store lacks the checkpoint of size %d (reference checkpoint #%d): deleted in the store, or never delivered", cp.Size, i+1)})
	}
	// A tail deleted with its checkpoints: the reference signed records
	// past everything the store holds.
	if from := max(last, storeTop) + 1; refTop >= from {
		s.gaps++
		s.add(Finding{Reason: ReasonStoreMissingRecords, FirstSeq: from, LastSeq: refTop, Size: refTop,
			Detail: fmt.Sprintf("the store lacks seqs %d..%d (%d records), signed by the reference checkpoint of size %d, which the store lacks too: deleted in the store, or never delivered", from, refTop, refTop-from+1, refTop)})
	}
	if e := s.opt.Every; e > 0 {
		top := last
		if n := len(s.sizes); n > 0 {
			top = max(top, s.sizes[n-1])
		}
		var missing []int64
		for n := e; n <= top; n += e {
			if !held(n) {
				missing = append(missing, n)
			}
		}
		for _, n := range missing {
			s.add(Finding{Reason: ReasonStoreMissingCheckpoint, Size: n, FirstSeq: n - e + 1, LastSeq: n,
				Detail: fmt.Sprintf("the store lacks the checkpoint of size %d (seal signs every %d records): seqs %d..%d have no checkpoint of their own there", n, e, n-e+1, n)})
		}
	}
	r := StoreReport{LastSeq: last, Sizes: slices.Clone(s.sizes)}
	if s.opt.Quorum > 0 {
		for _, n := range s.sizes {
			if s.witnessd[n] {
				r.Witnessed = n
			}
		}
		if last > r.Witnessed {
			s.add(Finding{Reason: ReasonUnwitnessed, FirstSeq: r.Witnessed + 1, LastSeq: last, Size: r.Witnessed,
				Detail: fmt.Sprintf("the store's seqs %d..%d are not covered by a checkpoint it holds with %d witness cosignatures (the newest such is of size %d)", r.Witnessed+1, last, s.opt.Quorum, r.Witnessed)})
		}
	}
	r.Findings = s.findings
	return r
}

// AddRecord adds a parsed record line of the store: Add, after checking
// that its content hashes to its recordHash (an erased row, a tombstone,
// is taken by its recordHash alone).
func (s *StoreChecker) AddRecord(rec chain.Record) error {
	if string(rec.RecordKind) != "erased" && !recordMatches(string(rec.PrevHash), rec.Raw, string(rec.RecordHash)) {
		s.add(Finding{Reason: ReasonStoreAltered, FirstSeq: rec.Seq, LastSeq: rec.Seq,
			Detail: fmt.Sprintf("the store's seq %d does not hash to its recordHash %.12s…: its content was altered in the store", rec.Seq, rec.RecordHash)})
	}
	return s.Add(rec.Seq, string(rec.RecordHash), string(rec.PrevHash))
}
