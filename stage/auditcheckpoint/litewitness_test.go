package auditcheckpoint

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/litewitness"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// TestRealWitness: seal with a real litewitness, verify with its key; then
// the stolen log key signs a rewritten log: litewitness refuses it (seal
// exits 3, witness_refused) and the quorum verifier refuses it (unwitnessed).
func TestRealWitness(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	skey, vkey := keys(t, dir, "log")
	pub, _ := os.ReadFile(vkey)
	w := litewitness.Start(t, "witness.test/lite", testOrigin, strings.TrimSpace(string(pub)))
	wfile := filepath.Join(dir, "witnesses")
	os.WriteFile(wfile, []byte(w.VKey+"="+w.URL+"\n"), 0o644)
	out, state := filepath.Join(dir, "cp.ndjson"), filepath.Join(dir, "seal.state")
	r := run(t, ctx, records(1, 20, 0, ""), "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--witness-file", wfile)
	if r.code != 0 {
		t.Fatalf("seal: %d %s", r.code, r.stderr)
	}
	r = run(t, ctx, records(21, 35, 0, ""), "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--witness-file", wfile)
	if r.code != 0 {
		t.Fatalf("seal 2: %d %s", r.code, r.stderr)
	}
	r = run(t, ctx, records(1, 35, 0, ""), "verify", "--verifier", vkey, "--checkpoints", out, "--state", filepath.Join(dir, "t.state"), "--init", "--witness-key", wfile)
	if r.code != 0 {
		t.Fatalf("verify: %d %s", r.code, r.stderr)
	}
	forged := filepath.Join(dir, "forged.ndjson")
	forkLog := records(1, 40, 5, "-rewritten")
	r = run(t, ctx, forkLog, "seal", "--signer", skey, "--out", forged, "--every", "10", "--witness-file", wfile)
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "error witness_refused: witness witness.test/lite") {
		t.Fatalf("forged seal: %d %s", r.code, r.stderr)
	}
	t.Logf("the witness's refusal: %s", r.stderr)
	r = run(t, ctx, forkLog, "verify", "--verifier", vkey, "--checkpoints", forged, "--state", filepath.Join(dir, "b.state"), "--init", "--witness-key", wfile)
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "error unwitnessed: seq 1..40") {
		t.Fatalf("verify forged: %d %s", r.code, r.stderr)
	}
}
