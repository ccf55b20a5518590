package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// SeqError is a record appended out of order: the tree's leaf i must be the
// record with seq i+1, so a record must have seq Want = Size()+1.
type SeqError struct {
	Seq  int64 // the seq given
	Want int64 // the seq the tree needs next
}

func (e *SeqError) Error() string {
	if e.Seq > e.Want {
		return fmt.Sprintf("seq %d out of order: want seq %d (seqs %d..%d missing)", e.Seq, e.Want, e.Want, e.Seq-1)
	}
	return fmt.Sprintf("seq %d out of order: want seq %d", e.Seq, e.Want)
}

// Builder computes the RFC 6962 Merkle tree root of a log as its records
// stream by, keeping only the right frontier: the roots of the maximal
// complete subtrees, one per set bit of Size(), so at most 63 hashes. Leaf
// i is the record with seq i+1; its data is the 32 bytes of the record's
// recordHash and its hash tlog.RecordHash(data) = SHA-256(0x00 || data).
type Builder struct {
	origin   string
	size     int64
	frontier []tlog.Hash // left to right: the largest subtree first
	// capture, if set, is told every complete subtree hash as it is made:
	// level 0 is the leaf itself; (level, k) is the subtree of leaves
	// [k<<level, (k+1)<<level).
	capture func(level int, k int64, h tlog.Hash)
}

// NewBuilder returns a Builder of the empty tree of the log named origin.
func NewBuilder(origin string) *Builder {
	return &Builder{origin: origin, frontier: make([]tlog.Hash, 0, 64)}
}

// ResumeBuilder returns a Builder at size whose frontier is as Frontier
// returned it. A signer that persists its frontier and resumes from it keeps
// extending the history it signed, instead of signing whatever the database
// holds when it restarts (which may have been rewritten meanwhile). Check the
// resumed Root against the last checkpoint signed before relying on it.
func ResumeBuilder(origin string, size int64, frontier []tlog.Hash) (*Builder, error) {
	if size < 0 || len(frontier) != bits.OnesCount64(uint64(size)) {
		return nil, fmt.Errorf("resume builder: a tree of size %d has %d frontier hashes, got %d", size, bits.OnesCount64(uint64(max(size, 0))), len(frontier))
	}
	b := NewBuilder(origin)
	b.size = size
	b.frontier = append(b.frontier, frontier...)
	return b, nil
}

// Append adds the record with seq and recordHash (64 lowercase hex, as in
// the record line). seq must be Size()+1: anything else is a *SeqError and
// the tree is unchanged.
func (b *Builder) Append(seq int64, recordHash []byte) error {
	if seq != b.size+1 {
		return &SeqError{Seq: seq, Want: b.size + 1}
	}
	raw, err := decodeRecordHash(recordHash)
	if err != nil {
		return fmt.Errorf("append seq %d: %w", seq, err)
	}
	b.appendLeaf(raw)
	return nil
}

func (b *Builder) appendLeaf(data [32]byte) {
	n := b.size // the new leaf's index
	h := tlog.RecordHash(data[:])
	if b.capture != nil {
		b.capture(0, n, h)
	}
	// Each trailing 1 bit of n completes a subtree with the one to its left.
	for l := 0; n>>l&1 == 1; l++ {
		h = tlog.NodeHash(b.frontier[len(b.frontier)-1], h)
		b.frontier = b.frontier[:len(b.frontier)-1]
		if b.capture != nil {
			b.capture(l+1, n>>(l+1), h)
		}
	}
	b.frontier = append(b.frontier, h)
	b.size++
}

// Size returns the number of records appended.
func (b *Builder) Size() int64 { return b.size }

// Origin returns the log's origin.
func (b *Builder) Origin() string { return b.origin }

// Root returns the tree's root: tlog.TreeHash(Size(), store) for a store of
// the same records, computed from the frontier alone.
func (b *Builder) Root() tlog.Hash {
	if len(b.frontier) == 0 {
		return emptyRoot
	}
	h := b.frontier[len(b.frontier)-1]
	for i := len(b.frontier) - 2; i >= 0; i-- {
		h = tlog.NodeHash(b.frontier[i], h)
	}
	return h
}

// Frontier returns a copy of the frontier, for ResumeBuilder.
func (b *Builder) Frontier() []tlog.Hash {
	return append([]tlog.Hash(nil), b.frontier...)
}

// Sign signs a checkpoint of the tree as it stands.
func (b *Builder) Sign(signer note.Signer) ([]byte, error) {
	return Sign(signer, b.origin, b.size, b.Root())
}

// frontierHashes calls f with the stored-hash index (tlog.StoredHashIndex)
// and hash of each frontier subtree.
func (b *Builder) frontierHashes(f func(index int64, h tlog.Hash)) {
	var start int64
	i := 0
	for l := 62; l >= 0; l-- {
		if b.size>>l&1 == 1 {
			f(tlog.StoredHashIndex(l, start>>l), b.frontier[i])
			start += 1 << l
			i++
		}
	}
}

// HashStore is the stored hashes of a whole log, from which proofs are made.
type HashStore interface {
	// ReadHashes returns the hashes with the given stored-hash indexes
	// (tlog.StoredHashIndex), or an error.
	tlog.HashReader
	// Size returns the number of records stored.
	Size() int64
}

var _ HashStore = (*MemStore)(nil)

// MemStore is a HashStore in memory: the tlog stored hashes of every record,
// just under two 32-byte hashes per record (about 64 bytes a record: 640 MB
// for ten million records). Fine for tests and moderate logs; a big log
// wants these hashes in a file or table instead. The zero value is an
// empty store.
type MemStore struct {
	hashes []tlog.Hash
	size   int64
}

// Append adds the next record's recordHash (64 lowercase hex).
func (m *MemStore) Append(recordHash []byte) error {
	raw, err := decodeRecordHash(recordHash)
	if err != nil {
		return fmt.Errorf("append record %d: %w", m.size+1, err)
	}
	hs, err := tlog.StoredHashes(m.size, raw[:], m)
	if err != nil {
		return fmt.Errorf("append record %d: %w", m.size+1, err)
	}
	m.hashes = append(m.hashes, hs...)
	m.size++
	return nil
}

// Size returns the number of records stored.
func (m *MemStore) Size() int64 { return m.size }

// ReadHashes implements tlog.HashReader.
func (m *MemStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("read hashes: index %d not stored (%d records)", x, m.size)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// leaf returns the leaf hash of the record with seq.
func (m *MemStore) leaf(seq int64) tlog.Hash {
	return m.hashes[tlog.StoredHashIndex(0, seq-1)]
}

// ReadStore reads record lines (docs/contract.md section 2) in seq order, seq 1
// first, into a MemStore. maxLine caps a line (0: ndjson.DefaultMaxLine).
// A line that repeats an earlier record exactly (same seq and recordHash: an
// at-least-once replay) is skipped; any other line out of order, any line
// that does not parse, is an error naming its line number. ReadStore does
// not check the chain (lib/chain's Verifier does): it only indexes the
// recordHashes.
func ReadStore(ctx context.Context, r io.Reader, maxLine int) (*MemStore, error) {
	rd, err := ndjson.NewReader(r, ndjson.Options{MaxLine: maxLine})
	if err != nil {
		return nil, fmt.Errorf("read store: %w", err)
	}
	defer rd.Close()
	var m MemStore
	var p chain.LineParser
	for {
		line, err := rd.Next()
		if err == io.EOF {
			return &m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read store: %w", err)
		}
		if line.Num%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := p.Parse(line.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read store: line %d: %w", line.Num, err)
		}
		if rec.Seq <= m.size {
			raw, _ := decodeRecordHash(rec.RecordHash) // the parser checked the form
			if m.leaf(rec.Seq) == tlog.RecordHash(raw[:]) {
				continue
			}
			return nil, fmt.Errorf("read store: line %d: seq %d again with a different recordHash", line.Num, rec.Seq)
		}
		if rec.Seq != m.size+1 {
			return nil, fmt.Errorf("read store: line %d: %w", line.Num, &SeqError{Seq: rec.Seq, Want: m.size + 1})
		}
		if err := m.Append(rec.RecordHash); err != nil {
			return nil, fmt.Errorf("read store: line %d: %w", line.Num, err)
		}
	}
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// the first oldSize records is a prefix of the tree of the first newSize.
// For oldSize 0 or oldSize == newSize the proof is empty.
func ProveConsistency(store HashStore, oldSize, newSize int64) (tlog.TreeProof, error) {
	if oldSize < 0 || oldSize > newSize || newSize > store.Size() {
		return nil, fmt.Errorf("prove consistency: sizes %d -> %d do not fit a store of %d records", oldSize, newSize, store.Size())
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, store)
	if err != nil {
		return nil, fmt.Errorf("prove consistency %d -> %d: %w", oldSize, newSize, err)
	}
	return p, nil
}

// CheckConsistency checks that proof shows old's tree to be a prefix of
// new's: the log named by both only grew from old to new. It returns nil
// only if that is proven; otherwise an error wrapping ErrInconsistent.
func CheckConsistency(old, new Checkpoint, proof tlog.TreeProof) error {
	switch {
	case old.Origin != new.Origin:
		return fmt.Errorf("check consistency: %w: origins %q and %q differ", ErrInconsistent, old.Origin, new.Origin)
	case old.Size < 0 || old.Size > new.Size:
		return fmt.Errorf("check consistency: %w: old size %d is larger than new size %d", ErrInconsistent, old.Size, new.Size)
	case old.Size == 0:
		if old.Root != emptyRoot || len(proof) != 0 {
			return fmt.Errorf("check consistency: %w: a tree of size 0 has the empty root and an empty proof", ErrInconsistent)
		}
		return nil
	}
	if err := tlog.CheckTree(proof, new.Size, new.Root, old.Size, old.Root); err != nil {
		return fmt.Errorf("check consistency %d -> %d: %w: %v", old.Size, new.Size, ErrInconsistent, err)
	}
	return nil
}

// ProveInclusion returns the RFC 6962 inclusion proof (audit path) of the
// record with seq in the tree of the first size records. Note: seq, not the
// leaf index; the leaf index is seq-1.
func ProveInclusion(store HashStore, size, seq int64) (tlog.RecordProof, error) {
	if seq < 1 || seq > size || size > store.Size() {
		return nil, fmt.Errorf("prove inclusion: seq %d in a tree of %d records does not fit a store of %d", seq, size, store.Size())
	}
	p, err := tlog.ProveRecord(size, seq-1, store)
	if err != nil {
		return nil, fmt.Errorf("prove inclusion of seq %d: %w", seq, err)
	}
	return p, nil
}

// CheckInclusion checks that proof shows the record with seq and recordHash
// (64 lowercase hex) to be in cp's tree. It returns nil only if that is
// proven; otherwise an error wrapping ErrNotIncluded (or ErrBadRecordHash).
func CheckInclusion(cp Checkpoint, seq int64, recordHash []byte, proof tlog.RecordProof) error {
	raw, err := decodeRecordHash(recordHash)
	if err != nil {
		return fmt.Errorf("check inclusion: %w", err)
	}
	if seq < 1 || seq > cp.Size {
		return fmt.Errorf("check inclusion: %w: seq %d is not in a tree of %d records", ErrNotIncluded, seq, cp.Size)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Root, seq-1, tlog.RecordHash(raw[:])); err != nil {
		return fmt.Errorf("check inclusion of seq %d: %w: %v", seq, ErrNotIncluded, err)
	}
	return nil
}

// errInternal marks a broken invariant of this package (never expected).
var errInternal = errors.New("checkpoint: internal error")
