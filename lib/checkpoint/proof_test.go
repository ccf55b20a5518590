package checkpoint

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/chain"
)

func writeProof(t *testing.T, p Proof) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteProof(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestProofRoundTrip(t *testing.T) {
	signer, v := testVerifiers(t)
	recs := chainOf(100, nil)
	hashes := hashesOf(recs)
	store := storeOf(t, hashes)
	for _, n := range []int{1, 2, 7, 100} {
		cp := mustOpen(t, signAt(t, signer, hashes, n), v)
		for _, seq := range seqsFor(n) {
			r := recs[seq-1]
			withRecord, err := NewProof(store, cp, r.line())
			if err != nil {
				t.Fatal(err)
			}
			if string(withRecord.Record) != r.record || withRecord.PrevHash != r.prevHash {
				t.Fatalf("seq %d: the bundle's record is %q, want %q", seq, withRecord.Record, r.record)
			}
			hashOnly, err := NewHashProof(store, cp, seq, r.hash)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []Proof{withRecord, hashOnly} {
				data := writeProof(t, p)
				gotSeq, gotHash, gotCP, err := VerifyProof(bytes.NewReader(data), v)
				if err != nil {
					t.Fatalf("size %d seq %d: %v\n%s", n, seq, err, data)
				}
				if gotSeq != seq || gotHash != r.hash || gotCP.Size != int64(n) || gotCP.Root != cp.Root {
					t.Fatalf("size %d seq %d: VerifyProof = %d, %s, %+v", n, seq, gotSeq, gotHash, gotCP)
				}
				if n == 100 && seq == 42 && p.Record != nil {
					golden(t, "proof.golden", data)
				}
			}
		}
	}
}

// TestProofFlipEveryByte: no single-byte change to a bundle verifies.
func TestProofFlipEveryByte(t *testing.T) {
	signer, v := testVerifiers(t)
	recs := chainOf(9, nil)
	hashes := hashesOf(recs)
	store := storeOf(t, hashes)
	cp := mustOpen(t, signAt(t, signer, hashes, 9), v)
	for _, seq := range []int64{1, 5, 9} {
		withRecord, err := NewProof(store, cp, recs[seq-1].line())
		if err != nil {
			t.Fatal(err)
		}
		hashOnly, _ := NewHashProof(store, cp, seq, recs[seq-1].hash)
		for _, p := range []Proof{withRecord, hashOnly} {
			data := writeProof(t, p)
			for i := range data {
				for _, m := range flips {
					data[i] ^= m
					if s, h, _, err := VerifyProof(bytes.NewReader(data), v); err == nil {
						t.Fatalf("seq %d: byte %d (%q) ^%#x accepted: seq %d hash %s\n%s", seq, i, data[i]^m, m, s, h, data)
					}
					data[i] ^= m
				}
			}
			if _, _, _, err := VerifyProof(bytes.NewReader(data), v); err != nil {
				t.Fatalf("the restored bundle fails: %v", err)
			}
		}
	}
}

func TestProofErrors(t *testing.T) {
	signer, v := testVerifiers(t)
	recs := chainOf(9, nil)
	hashes := hashesOf(recs)
	store := storeOf(t, hashes)
	cp := mustOpen(t, signAt(t, signer, hashes, 9), v)
	p, err := NewProof(store, cp, recs[4].line())
	if err != nil {
		t.Fatal(err)
	}
	good := string(writeProof(t, p))

	other, _ := testKey(t, "other.test/key")
	foreign, _ := Sign(other, testOrigin, 9, cp.Root)
	q := p
	q.Checkpoint = foreign
	unknown := string(writeProof(t, q))
	small := p
	small.Checkpoint = signAt(t, signer, hashes, 4) // seq 5 is not in a tree of 4
	beyond := string(writeProof(t, small))

	rep := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("%q is not in the bundle", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, c := range []struct {
		name, in string
		want     error
	}{
		{"unknown key", unknown, ErrUnknownKey},
		{"beyond the checkpoint", beyond, ErrNotIncluded},
		{"unknown member", rep(`{"format"`, `{"x":1,"format"`), ErrMalformed},
		{"repeated member", rep(`"seq":5,`, `"seq":5,"seq":5,`), ErrMalformed},
		{"case-folded member", rep(`"seq"`, `"Seq"`), ErrMalformed},
		{"missing member", rep(`"seq":5,`, ``), ErrMalformed},
		{"record without prevHash", rep(`"prevHash":"`+p.PrevHash+`",`, ``), ErrMalformed},
		{"other format", rep(ProofFormat, "auditpipe-inclusion-proof-v2"), ErrMalformed},
		{"seq with leading zero", rep(`"seq":5`, `"seq":05`), ErrMalformed},
		{"seq as float", rep(`"seq":5`, `"seq":5.0`), ErrMalformed},
		{"seq 0", rep(`"seq":5`, `"seq":0`), ErrMalformed},
		{"seq as string", rep(`"seq":5`, `"seq":"5"`), ErrMalformed},
		{"uppercase hash", rep(p.RecordHash, strings.ToUpper(p.RecordHash)), ErrMalformed},
		{"null proof", rep(`"proof":[`, `"proof":null,"x":[`), ErrMalformed},
		{"trailing data", good + "{}", ErrMalformed},
		{"leading space", " " + good, ErrMalformed},
		{"reformatted record", rep(`{"actor"`, `{ "actor"`), ErrRecordMismatch},
		{"other record", rep(`"n":5`, `"n":6`), ErrRecordMismatch},
		{"empty", "", ErrMalformed},
		{"array", "[]", ErrMalformed},
	} {
		_, _, _, err := VerifyProof(strings.NewReader(c.in), v)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: VerifyProof = %v, want %v", c.name, err, c.want)
		}
	}

	// WriteProof refuses what ParseProof would.
	for name, bad := range map[string]Proof{
		"seq 0":           {Seq: 0, RecordHash: p.RecordHash, Checkpoint: p.Checkpoint},
		"bad hash":        {Seq: 5, RecordHash: "xyz", Checkpoint: p.Checkpoint},
		"no checkpoint":   {Seq: 5, RecordHash: p.RecordHash},
		"prev, no record": {Seq: 5, RecordHash: p.RecordHash, PrevHash: p.PrevHash, Checkpoint: p.Checkpoint},
		"record mismatch": {Seq: 5, RecordHash: p.RecordHash, PrevHash: p.PrevHash, Record: []byte(`{}`), Checkpoint: p.Checkpoint},
	} {
		if err := WriteProof(&bytes.Buffer{}, bad); err == nil {
			t.Errorf("WriteProof(%s) did not fail", name)
		}
	}
}

// TestNewProofCanonicalises: records whose bytes are not canonical (the
// public golden chain, written by a JS engine) go into the bundle in
// canonical form, so that the bundle hashes exactly.
func TestNewProofCanonicalises(t *testing.T) {
	f, err := os.Open("../chain/testdata/chain-public.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	var hashes []string
	var lp chain.LineParser
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := bytes.Clone(sc.Bytes())
		r, err := lp.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
		hashes = append(hashes, string(r.RecordHash))
	}
	signer, v := testVerifiers(t)
	store := storeOf(t, hashes)
	cp := mustOpen(t, signAt(t, signer, hashes, len(hashes)), v)
	slow := 0
	for i, l := range lines {
		p, err := NewProof(store, cp, l)
		if err != nil {
			t.Fatalf("seq %d: %v", i+1, err)
		}
		r, _ := lp.Parse(l)
		if !bytes.Equal(p.Record, r.Raw) {
			slow++
		}
		if _, _, _, err := VerifyProof(bytes.NewReader(writeProof(t, p)), v); err != nil {
			t.Fatalf("seq %d: %v", i+1, err)
		}
	}
	if slow == 0 {
		t.Fatal("no record of the public chain needed canonicalising: the test is void")
	}

	// An erased row no longer matches its hash: prove its hash alone.
	r, _ := lp.Parse(lines[2])
	erased := bytes.Replace(lines[2], r.Raw, []byte(`{"erasedAt":1,"kind":"erased","originalKind":"x","reason":"gdpr","tenantId":"acme"}`), 1)
	if _, err := NewProof(store, cp, erased); !errors.Is(err, ErrRecordMismatch) {
		t.Fatalf("NewProof of an erased row: %v, want ErrRecordMismatch", err)
	}
	if _, err := NewHashProof(store, cp, 3, string(r.RecordHash)); err != nil {
		t.Fatal(err)
	}
	// A store of another log does not make a bundle.
	if _, err := NewHashProof(storeOf(t, synth(len(hashes))), cp, 3, string(r.RecordHash)); !errors.Is(err, ErrNotIncluded) {
		t.Fatalf("NewHashProof from another store: %v, want ErrNotIncluded", err)
	}
}
