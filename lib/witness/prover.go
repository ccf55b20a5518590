package witness

import (
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// Prover makes consistency proofs from any size at or past its base to the
// current size, from the tree's frontier at the base and the leaf hashes
// after it: what a witness needs, without keeping the whole tree. Memory is
// 32 bytes per leaf past the base; Advance drops the leaves no proof needs
// any more.
type Prover struct {
	base     int64
	frontier []tlog.Hash // the maximal complete subtrees of [0, base), largest first
	leaves   []tlog.Hash // leaf hashes of base, base+1, ...
}

// NewProver starts a Prover at size base with the tree's frontier there (as
// checkpoint.Builder.Frontier returns it: the roots of the complete
// subtrees, largest first).
func NewProver(base int64, frontier []tlog.Hash) (*Prover, error) {
	n := 0
	for b := base; b > 0; b &= b - 1 {
		n++
	}
	if base < 0 || len(frontier) != n {
		return nil, fmt.Errorf("prover: a frontier of %d hashes for size %d, want %d", len(frontier), base, n)
	}
	return &Prover{base: base, frontier: append([]tlog.Hash(nil), frontier...)}, nil
}

// Base is the smallest size a proof can start from.
func (p *Prover) Base() int64 { return p.base }

// Size is the tree's size.
func (p *Prover) Size() int64 { return p.base + int64(len(p.leaves)) }

// Pending is the number of leaf hashes held.
func (p *Prover) Pending() int { return len(p.leaves) }

// AppendLeaf adds the next leaf by its data (the recordHash's 32 bytes).
func (p *Prover) AppendLeaf(data []byte) { p.leaves = append(p.leaves, tlog.RecordHash(data)) }

var errBeforeBase = errors.New("before the prover's base")

// hash returns the Merkle tree hash of leaves [a, b) (RFC 6962 MTH).
func (p *Prover) hash(a, b int64) (tlog.Hash, error) {
	if b <= p.base {
		// A complete subtree of the frontier, or a part of one (which
		// splits down to a leaf before the base: not held).
		start, rest := int64(0), p.base
		for _, h := range p.frontier {
			size := highBit(rest)
			if start == a && start+size == b {
				return h, nil
			}
			start += size
			rest -= size
		}
		if b-a == 1 {
			return tlog.Hash{}, errBeforeBase
		}
	} else if b-a == 1 {
		return p.leaves[a-p.base], nil
	}
	k := highBit(b - a - 1) // the largest power of two smaller than b-a
	l, err := p.hash(a, a+k)
	if err != nil {
		return l, err
	}
	r, err := p.hash(a+k, b)
	if err != nil {
		return r, err
	}
	return tlog.NodeHash(l, r), nil
}

func highBit(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return int64(1) << (63 - leadingZeros(n))
}

func leadingZeros(n int64) int { return bits.LeadingZeros64(uint64(n)) }

// Root returns the root of the tree at size n (base <= n <= Size).
func (p *Prover) Root(n int64) (tlog.Hash, error) {
	if n < p.base || n > p.Size() {
		return tlog.Hash{}, fmt.Errorf("prover: size %d is outside %d..%d", n, p.base, p.Size())
	}
	return tlog.TreeHash(n, p.reader())
}

// Prove returns the consistency proof from size old to size n (base <= old
// <= n <= Size; old 0 gives the empty proof).
func (p *Prover) Prove(old, n int64) (tlog.TreeProof, error) {
	if old == 0 || old == n {
		return nil, nil
	}
	if old < p.base || n > p.Size() || old > n {
		return nil, fmt.Errorf("prover: cannot prove %d -> %d: this run holds the tree's leaves %d..%d only", old, n, p.base, p.Size())
	}
	return tlog.ProveTree(n, old, p.reader())
}

func (p *Prover) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			level, k := tlog.SplitStoredHashIndex(x)
			a := k << level
			h, err := p.hash(a, a+int64(1)<<level)
			if err != nil {
				return nil, fmt.Errorf("prover: node %d..%d: %w", a, a+int64(1)<<level, err)
			}
			out[i] = h
		}
		return out, nil
	})
}

// Advance moves the base to size to (base <= to <= Size), dropping the
// leaves before it: proofs from sizes below to are no longer possible.
func (p *Prover) Advance(to int64) error {
	if to <= p.base {
		return nil
	}
	if to > p.Size() {
		return fmt.Errorf("prover: cannot advance to %d past the size %d", to, p.Size())
	}
	var front []tlog.Hash
	start := int64(0)
	for rest := to; rest > 0; {
		size := highBit(rest)
		h, err := p.hash(start, start+size)
		if err != nil {
			return err
		}
		front = append(front, h)
		start += size
		rest -= size
	}
	p.leaves = append([]tlog.Hash(nil), p.leaves[to-p.base:]...)
	p.frontier, p.base = front, to
	return nil
}

// Snapshot returns the base, its frontier and the leaf hashes after it, to
// persist (NewProverFrom restores it).
func (p *Prover) Snapshot() (base int64, frontier, leaves []tlog.Hash) {
	return p.base, append([]tlog.Hash(nil), p.frontier...), append([]tlog.Hash(nil), p.leaves...)
}

// NewProverFrom restores a Snapshot.
func NewProverFrom(base int64, frontier, leaves []tlog.Hash) (*Prover, error) {
	p, err := NewProver(base, frontier)
	if err != nil {
		return nil, err
	}
	p.leaves = append([]tlog.Hash(nil), leaves...)
	return p, nil
}
