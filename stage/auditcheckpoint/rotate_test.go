package auditcheckpoint

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// TestRotate: two rotations (k1 -> k2 -> k3); an auditor with k1's
// verifier key alone follows the chain and verifies checkpoints by all
// three, also with the trusted state signed by k3 on the next run. A
// rotation signed by an unknown key is not followed.
func TestRotate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s1, v1 := keys(t, dir, "k1")
	s2, v2 := keys(t, dir, "k2")
	s3, v3 := keys(t, dir, "k3")
	out, state := filepath.Join(dir, "cp.ndjson"), filepath.Join(dir, "seal.state")
	seal := func(from, to int64, signer string) {
		t.Helper()
		if r := run(t, ctx, records(from, to, 0, ""), "seal", "--signer", signer, "--out", out, "--state", state, "--every", "10"); r.code != 0 {
			t.Fatalf("seal: %d %s", r.code, r.stderr)
		}
	}
	seal(1, 10, s1)
	if r := run(t, ctx, nil, "rotate", "--signer", s1, "--new-signer", s2, "--new-verifier", v2, "--out", out); r.code != 0 {
		t.Fatalf("rotate: %d %s", r.code, r.stderr)
	}
	seal(11, 20, s2)
	if r := run(t, ctx, nil, "rotate", "--signer", s2, "--new-signer", s3, "--new-verifier", v3, "--out", out); r.code != 0 {
		t.Fatalf("rotate: %d %s", r.code, r.stderr)
	}
	seal(21, 30, s3)
	tstate := filepath.Join(dir, "t.state")
	r := run(t, ctx, records(1, 30, 0, ""), "verify", "--verifier", v1, "--checkpoints", out, "--state", tstate, "--init")
	if r.code != 0 || !strings.Contains(r.stderr, "key rotation followed") {
		t.Fatalf("verify: %d %s", r.code, r.stderr)
	}
	seal(31, 40, s3)
	r = run(t, ctx, records(1, 40, 0, ""), "verify", "--verifier", v1, "--checkpoints", out, "--state", tstate)
	if r.code != 0 {
		t.Fatalf("verify 2: %d %s", r.code, r.stderr)
	}
	// prove follows the rotations too (the bundle is checked with the
	// current key: it carries no rotation).
	proof := filepath.Join(dir, "p.json")
	if r := run(t, ctx, records(1, 40, 0, ""), "prove", "--verifier", v1, "--checkpoints", out, "--seq", "35", "--out", proof); r.code != 0 {
		t.Fatalf("prove: %d %s", r.code, r.stderr)
	}
	if r := run(t, ctx, nil, "check-proof", "--verifier", v3, proof); r.code != 0 {
		t.Fatalf("check-proof: %d %s", r.code, r.stderr)
	}
	// Without the rotation lines, k3's checkpoints are unknown_key.
	data, _ := os.ReadFile(out)
	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(l, `{"rotation"`) {
			kept = append(kept, l)
		}
	}
	bare := filepath.Join(dir, "bare.ndjson")
	os.WriteFile(bare, []byte(strings.Join(kept, "\n")+"\n"), 0o644)
	r = run(t, ctx, records(1, 40, 0, ""), "verify", "--verifier", v1, "--checkpoints", bare, "--state", filepath.Join(dir, "u.state"), "--init")
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "error unknown_key") {
		t.Fatalf("no rotations: %d %s", r.code, r.stderr)
	}
	// A thief's rotation signed by a key nobody trusts is not followed.
	s4, v4 := keys(t, dir, "k4")
	s5, v5 := keys(t, dir, "k5")
	_ = v4
	evil := filepath.Join(dir, "evil.ndjson")
	os.WriteFile(evil, data, 0o644)
	if r := run(t, ctx, nil, "rotate", "--signer", s4, "--new-signer", s5, "--new-verifier", v5, "--out", evil); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = run(t, ctx, records(1, 40, 0, ""), "verify", "--verifier", v1, "--checkpoints", evil, "--state", filepath.Join(dir, "e.state"), "--init")
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "is not signed by a trusted key (nor by one a followed rotation added)") {
		t.Fatalf("evil rotation: %d %s", r.code, r.stderr)
	}
	_ = checkpoint.RotationHeader
}
