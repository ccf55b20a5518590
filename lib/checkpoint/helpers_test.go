package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/auditpipe/auditpipe/lib/chain"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testOrigin = "auditpipe.test/log"

// testKey returns a deterministic key pair for name: the seed is derived
// from the name, so no private key is written down in the source.
func testKey(tb testing.TB, name string) (note.Signer, string) {
	tb.Helper()
	seed := sha256.Sum256([]byte("auditpipe checkpoint test key " + name))
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed[:]), name)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	return s, vkey
}

// testVerifiers returns the trusted verifiers for testKey(testOrigin).
func testVerifiers(tb testing.TB) (note.Signer, note.Verifiers) {
	tb.Helper()
	s, vkey := testKey(tb, testOrigin)
	v, err := NewVerifiers(vkey)
	if err != nil {
		tb.Fatal(err)
	}
	return s, v
}

// synth returns n synthetic recordHashes: hex(SHA-256(decimal i)), i = 1..n.
func synth(n int) []string {
	hs := make([]string, n)
	for i := range hs {
		s := sha256.Sum256([]byte(strconv.Itoa(i + 1)))
		hs[i] = hex.EncodeToString(s[:])
	}
	return hs
}

func storeOf(tb testing.TB, hashes []string) *MemStore {
	tb.Helper()
	var m MemStore
	for _, h := range hashes {
		if err := m.Append([]byte(h)); err != nil {
			tb.Fatal(err)
		}
	}
	return &m
}

// rootOf is the root of the first n hashes, by the Builder.
func rootOf(tb testing.TB, hashes []string, n int) tlog.Hash {
	tb.Helper()
	b := NewBuilder(testOrigin)
	for i, h := range hashes[:n] {
		if err := b.Append(int64(i+1), []byte(h)); err != nil {
			tb.Fatal(err)
		}
	}
	return b.Root()
}

// signAt signs the checkpoint of the first n hashes.
func signAt(tb testing.TB, s note.Signer, hashes []string, n int) []byte {
	tb.Helper()
	msg, err := Sign(s, testOrigin, int64(n), rootOf(tb, hashes, n))
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

func mustOpen(tb testing.TB, msg []byte, v note.Verifiers) Checkpoint {
	tb.Helper()
	cp, err := Open(msg, v)
	if err != nil {
		tb.Fatal(err)
	}
	return cp
}

// testRecord is one record of a synthetic chain.
type testRecord struct {
	seq      int64
	ts       int64
	record   string // canonical JSON
	prevHash string
	hash     string
}

const baseTS = 1764244800000

// chainOf builds a hash chain (docs/contract.md section 3) of n records; edit,
// if set, may change record i's content (1-based), as an attacker with
// write access would before recomputing every later hash.
func chainOf(n int, edit func(seq int64, rec string) string) []testRecord {
	var out []testRecord
	prev := ""
	for i := int64(1); i <= int64(n); i++ {
		rec := fmt.Sprintf(`{"actor":"agent:x","decision":"allow","kind":"tool_call","n":%d,"tenantId":"acme","ts":%d}`, i, baseTS+1000*i)
		if edit != nil {
			rec = edit(i, rec)
		}
		h := hex.EncodeToString(func() []byte { s := chain.Hash(prev, []byte(rec)); return s[:] }())
		out = append(out, testRecord{seq: i, ts: baseTS + 1000*i, record: rec, prevHash: prev, hash: h})
		prev = h
	}
	return out
}

func hashesOf(recs []testRecord) []string {
	hs := make([]string, len(recs))
	for i, r := range recs {
		hs[i] = r.hash
	}
	return hs
}

func (r testRecord) line() []byte {
	return fmt.Appendf(nil, `{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":%s,"prevHash":%q,"recordHash":%q}`,
		r.seq, r.ts, r.record, r.prevHash, r.hash)
}

// flips are the byte masks the tamper tests XOR into every byte in turn:
// the low bit, the ASCII case bit, the high bit.
var flips = []byte{0x01, 0x20, 0x80}

// isOpenError reports whether err is one of Open's typed errors.
func isOpenError(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrBadSignature) || errors.Is(err, ErrUnknownKey)
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed:\n got: %q\nwant: %q", path, got, want)
	}
}
