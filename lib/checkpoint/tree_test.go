package checkpoint

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

var testSizes = []int{1, 2, 3, 7, 8, 9, 100, 1000}

// mth is RFC 6962's MTH written out from section 2.1, independent of tlog.
func mth(leaves [][]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := mth(leaves[:k]), mth(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func TestBuilderRoot(t *testing.T) {
	hashes := synth(1000)
	store := storeOf(t, hashes)
	b := NewBuilder(testOrigin)
	if got, want := b.Root(), tlog.Hash(sha256.Sum256(nil)); got != want {
		t.Fatalf("empty root %v, want SHA-256 of nothing %v", got, want)
	}
	var leaves [][]byte
	for i, h := range hashes {
		if err := b.Append(int64(i+1), []byte(h)); err != nil {
			t.Fatal(err)
		}
		n := int64(i + 1)
		if b.Size() != n {
			t.Fatalf("Size() = %d, want %d", b.Size(), n)
		}
		want, err := tlog.TreeHash(n, store)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Root(); got != want {
			t.Fatalf("size %d: Root() = %v, tlog.TreeHash = %v", n, got, want)
		}
		raw, _ := hex.DecodeString(h)
		leaves = append(leaves, raw)
		if n <= 130 {
			if ref := mth(leaves); tlog.Hash(ref) != b.Root() {
				t.Fatalf("size %d: Root() = %v, RFC 6962 MTH = %v", n, b.Root(), tlog.Hash(ref))
			}
		}
		if len(b.frontier) > 10 {
			t.Fatalf("size %d: frontier of %d hashes", n, len(b.frontier))
		}
	}
}

func TestBuilderAppendErrors(t *testing.T) {
	b := NewBuilder(testOrigin)
	h := synth(3)
	err := b.Append(2, []byte(h[0]))
	var se *SeqError
	if !errors.As(err, &se) || se.Seq != 2 || se.Want != 1 || !strings.Contains(err.Error(), "seq 2") {
		t.Fatalf("gap: %v, want a *SeqError naming seq 2 and wanting seq 1", err)
	}
	if err := b.Append(1, []byte(h[0])); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(1, []byte(h[1])); !errors.As(err, &se) || se.Seq != 1 || se.Want != 2 {
		t.Fatalf("repeat: %v", err)
	}
	for _, bad := range []string{"", h[1][:63], h[1] + "0", strings.ToUpper(h[1]), "g" + h[1][1:]} {
		if err := b.Append(2, []byte(bad)); !errors.Is(err, ErrBadRecordHash) {
			t.Errorf("Append(%q) = %v, want ErrBadRecordHash", bad, err)
		}
	}
	if b.Size() != 1 {
		t.Fatalf("failed appends changed the size to %d", b.Size())
	}
}

func TestResumeBuilder(t *testing.T) {
	hashes := synth(300)
	for _, cut := range []int{0, 1, 5, 64, 127, 200} {
		a := NewBuilder(testOrigin)
		for i, h := range hashes[:cut] {
			a.Append(int64(i+1), []byte(h))
		}
		b, err := ResumeBuilder(testOrigin, a.Size(), a.Frontier())
		if err != nil {
			t.Fatal(err)
		}
		for i := cut; i < len(hashes); i++ {
			a.Append(int64(i+1), []byte(hashes[i]))
			if err := b.Append(int64(i+1), []byte(hashes[i])); err != nil {
				t.Fatal(err)
			}
			if a.Root() != b.Root() {
				t.Fatalf("resumed at %d: roots differ at %d", cut, i+1)
			}
		}
	}
	if _, err := ResumeBuilder(testOrigin, 7, make([]tlog.Hash, 2)); err == nil {
		t.Fatal("a frontier of 2 hashes for size 7 was accepted")
	}
	if _, err := ResumeBuilder(testOrigin, -1, nil); err == nil {
		t.Fatal("size -1 was accepted")
	}
}

// seqsFor returns the seqs to test in a log of n: all of them in a small
// log, a sample (edges and a stride) in a big one.
func seqsFor(n int) []int64 {
	var s []int64
	for i := 1; i <= n; i++ {
		if n <= 100 || i <= 3 || i > n-3 || i%97 == 0 || i == 512 || i == 513 {
			s = append(s, int64(i))
		}
	}
	return s
}

func TestInclusionProofs(t *testing.T) {
	signer, v := testVerifiers(t)
	hashes := synth(1000)
	store := storeOf(t, hashes)
	for _, n := range testSizes {
		cp := mustOpen(t, signAt(t, signer, hashes, n), v)
		for _, seq := range seqsFor(n) {
			rh := []byte(hashes[seq-1])
			p, err := ProveInclusion(store, int64(n), seq)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckInclusion(cp, seq, rh, p); err != nil {
				t.Fatalf("size %d seq %d: %v", n, seq, err)
			}
			// Every byte of every proof hash matters.
			for i := range p {
				for j := range tlog.HashSize {
					for _, m := range flips {
						p[i][j] ^= m
						if err := CheckInclusion(cp, seq, rh, p); !errors.Is(err, ErrNotIncluded) {
							t.Fatalf("size %d seq %d: hash %d byte %d ^%#x: %v, want ErrNotIncluded", n, seq, i, j, m, err)
						}
						p[i][j] ^= m
					}
				}
			}
			if err := CheckInclusion(cp, seq, rh, append(p, tlog.Hash{})); !errors.Is(err, ErrNotIncluded) {
				t.Fatalf("size %d seq %d: a longer proof: %v", n, seq, err)
			}
			if len(p) > 0 {
				if err := CheckInclusion(cp, seq, rh, p[:len(p)-1]); !errors.Is(err, ErrNotIncluded) {
					t.Fatalf("size %d seq %d: a shorter proof: %v", n, seq, err)
				}
			}
			other := []byte(synth(1001)[1000])
			if err := CheckInclusion(cp, seq, other, p); !errors.Is(err, ErrNotIncluded) {
				t.Fatalf("size %d seq %d: another record: %v", n, seq, err)
			}
			if n > 1 {
				s2 := seq%int64(n) + 1
				if err := CheckInclusion(cp, s2, rh, p); !errors.Is(err, ErrNotIncluded) {
					t.Fatalf("size %d: seq %d's proof passed for seq %d: %v", n, seq, s2, err)
				}
			}
		}
		for _, seq := range []int64{0, -1, int64(n) + 1} {
			if err := CheckInclusion(cp, seq, []byte(hashes[0]), nil); !errors.Is(err, ErrNotIncluded) {
				t.Errorf("size %d seq %d: %v", n, seq, err)
			}
			if _, err := ProveInclusion(store, int64(n), seq); err == nil {
				t.Errorf("ProveInclusion(size %d, seq %d) did not fail", n, seq)
			}
		}
	}
	if _, err := ProveInclusion(store, 1001, 1); err == nil {
		t.Error("ProveInclusion beyond the store did not fail")
	}
}

func TestConsistencyProofs(t *testing.T) {
	signer, v := testVerifiers(t)
	hashes := synth(1000)
	store := storeOf(t, hashes)
	cps := map[int]Checkpoint{}
	cpAt := func(n int) Checkpoint {
		if _, ok := cps[n]; !ok {
			cps[n] = mustOpen(t, signAt(t, signer, hashes, n), v)
		}
		return cps[n]
	}
	for _, n := range testSizes {
		newCP := cpAt(n)
		for _, m := range seqsFor(n) {
			oldCP := cpAt(int(m))
			p, err := ProveConsistency(store, m, int64(n))
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckConsistency(oldCP, newCP, p); err != nil {
				t.Fatalf("%d -> %d: %v", m, n, err)
			}
			for i := range p {
				for j := range tlog.HashSize {
					for _, x := range flips {
						p[i][j] ^= x
						if err := CheckConsistency(oldCP, newCP, p); !errors.Is(err, ErrInconsistent) {
							t.Fatalf("%d -> %d: hash %d byte %d ^%#x: %v, want ErrInconsistent", m, n, i, j, x, err)
						}
						p[i][j] ^= x
					}
				}
			}
			if int(m) < n {
				if err := CheckConsistency(newCP, oldCP, p); !errors.Is(err, ErrInconsistent) {
					t.Fatalf("%d -> %d backwards: %v", n, m, err)
				}
				// A checkpoint of another history at the old size.
				forged := oldCP
				forged.Root[0] ^= 1
				if err := CheckConsistency(forged, newCP, p); !errors.Is(err, ErrInconsistent) {
					t.Fatalf("%d -> %d with a forged old root: %v", m, n, err)
				}
			}
		}
	}
	// Size 0: the empty tree is a prefix of everything.
	empty := Checkpoint{Origin: testOrigin, Root: tlog.Hash(sha256.Sum256(nil))}
	p, err := ProveConsistency(store, 0, 7)
	if err != nil || len(p) != 0 {
		t.Fatalf("ProveConsistency(0, 7) = %v, %v", p, err)
	}
	if err := CheckConsistency(empty, cpAt(7), p); err != nil {
		t.Fatal(err)
	}
	empty.Root[0] ^= 1
	if err := CheckConsistency(empty, cpAt(7), p); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("size 0 with a non-empty root: %v", err)
	}
	other := cpAt(7)
	other.Origin = "other.test/log"
	if err := CheckConsistency(cpAt(3), other, nil); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("different origins: %v", err)
	}
	for _, c := range [][2]int64{{-1, 3}, {4, 3}, {3, 1001}} {
		if _, err := ProveConsistency(store, c[0], c[1]); err == nil {
			t.Errorf("ProveConsistency(%d, %d) did not fail", c[0], c[1])
		}
	}
}

func TestMemStoreReadHashesBounds(t *testing.T) {
	m := storeOf(t, synth(3))
	if _, err := m.ReadHashes([]int64{0, 1, 99}); err == nil {
		t.Fatal("reading an index not stored did not fail")
	}
	if err := m.Append([]byte("nothex")); !errors.Is(err, ErrBadRecordHash) {
		t.Fatalf("Append(nothex) = %v", err)
	}
}

func TestReadStore(t *testing.T) {
	recs := chainOf(50, nil)
	var in bytes.Buffer
	for _, r := range recs {
		in.Write(r.line())
		in.WriteByte('\n')
		if r.seq == 20 { // an at-least-once replay of seqs 18..20
			for _, d := range recs[17:20] {
				in.Write(d.line())
				in.WriteByte('\n')
			}
		}
	}
	m, err := ReadStore(context.Background(), &in, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := storeOf(t, hashesOf(recs))
	if m.Size() != 50 {
		t.Fatalf("Size() = %d, want 50", m.Size())
	}
	got, _ := tlog.TreeHash(50, m)
	exp, _ := tlog.TreeHash(50, want)
	if got != exp {
		t.Fatal("ReadStore built another tree")
	}

	lines := func(rs ...testRecord) *bytes.Buffer {
		var b bytes.Buffer
		for _, r := range rs {
			b.Write(r.line())
			b.WriteByte('\n')
		}
		return &b
	}
	forked := recs[1]
	forked.hash = recs[2].hash
	for _, c := range []struct {
		name string
		in   *bytes.Buffer
		want string
	}{
		{"gap", lines(recs[0], recs[1], recs[3]), "line 3: seq 4 out of order: want seq 3"},
		{"start", lines(recs[1]), "line 1: seq 2 out of order: want seq 1"},
		{"fork", lines(recs[0], recs[1], forked), "line 3: seq 2 again with a different recordHash"},
		{"bad", bytes.NewBufferString("{\"seq\":1}\n"), "line 1: bad_field"},
	} {
		_, err := ReadStore(context.Background(), c.in, 0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func BenchmarkBuilderAppend(b *testing.B) {
	hashes := synth(1 << 16)
	bu := NewBuilder(testOrigin)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bu.Append(bu.Size()+1, []byte(hashes[i&(1<<16-1)]))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
