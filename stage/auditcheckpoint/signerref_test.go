package auditcheckpoint

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealSignerReference: --signer takes the secret references every
// other secret takes; the key never appears in an error.
func TestSealSignerReference(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	skey, vkey := keys(t, dir, "log")
	key, _ := os.ReadFile(skey)
	t.Setenv("CKPT_SIGNER", strings.TrimSpace(string(key)))
	for _, ref := range []string{"env:CKPT_SIGNER", "file:" + skey, "exec:cat " + skey} {
		out := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_", " ", "_").Replace(ref))
		r := run(t, ctx, records(1, 5, 0, ""), "seal", "--signer", ref, "--out", out)
		if r.code != 0 {
			t.Fatalf("%s: %d %s", ref, r.code, r.stderr)
		}
		r = run(t, ctx, records(1, 5, 0, ""), "verify", "--verifier", vkey, "--checkpoints", out, "--state", out+".state", "--init")
		if r.code != 0 {
			t.Fatalf("verify %s: %d %s", ref, r.code, r.stderr)
		}
	}
	t.Setenv("NOT_KEY", "hunter2")
	r := run(t, ctx, records(1, 5, 0, ""), "seal", "--signer", "env:NOT_KEY", "--out", filepath.Join(dir, "x"))
	if r.code != 2 || !strings.Contains(r.stderr, "env:NOT_KEY does not hold a signer key") || strings.Contains(r.stderr, "hunter2") {
		t.Fatalf("bad key: %d %s", r.code, r.stderr)
	}
}
