package auditcheckpoint

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/witnessfake"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// witnessSetup: a log key, a fake witness that knows it, and the files.
func witnessSetup(t *testing.T) (dir, skey, vkey string, w *witnessfake.Witness, wfile string) {
	t.Helper()
	dir = t.TempDir()
	skey, vkey = keys(t, dir, "log")
	w, err := witnessfake.Start("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	pub, _ := os.ReadFile(vkey)
	if err := w.AddLog(testOrigin, strings.TrimSpace(string(pub))); err != nil {
		t.Fatal(err)
	}
	wfile = filepath.Join(dir, "witnesses")
	os.WriteFile(wfile, []byte("# the witnesses\n"+w.VKey+"="+w.URL+"\n"), 0o644)
	return
}

func TestWitnessSealAndVerify(t *testing.T) {
	ctx := context.Background()
	dir, skey, vkey, w, wfile := witnessSetup(t)
	out, state := filepath.Join(dir, "cp.ndjson"), filepath.Join(dir, "seal.state")
	r := run(t, ctx, records(1, 30, 0, ""), "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--witness-file", wfile)
	if r.code != 0 || w.Size(testOrigin) != 30 {
		t.Fatalf("seal: %d %s; witness at %d", r.code, r.stderr, w.Size(testOrigin))
	}
	data, _ := os.ReadFile(out)
	if !strings.Contains(string(data), `\n— witness.test/w1 `) {
		t.Fatalf("no cosigned checkpoint in %s", data)
	}
	r = run(t, ctx, records(1, 30, 0, ""), "verify", "--verifier", vkey, "--checkpoints", out, "--state", filepath.Join(dir, "t.state"), "--init", "--witness-key", wfile)
	if r.code != 0 {
		t.Fatalf("verify: %d %s", r.code, r.stderr)
	}

	// prove picks the newest witnessed checkpoint; check-proof demands the quorum.
	proof := filepath.Join(dir, "proof.json")
	r = run(t, ctx, records(1, 30, 0, ""), "prove", "--verifier", vkey, "--checkpoints", out, "--seq", "7", "--out", proof, "--witness-key", wfile)
	if r.code != 0 {
		t.Fatalf("prove: %d %s", r.code, r.stderr)
	}
	r = run(t, ctx, nil, "check-proof", "--verifier", vkey, "--witness-key", wfile, proof)
	if r.code != 0 || !strings.Contains(r.stdout, `"size":30`) {
		t.Fatalf("check-proof: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// A cosignature byte flipped in the stored copy: bad_cosignature.
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	last := lines[len(lines)-1]
	i := strings.LastIndex(last, " ")
	sig := strings.TrimSuffix(last[i+1:], `\n"}`)
	raw, _ := base64.StdEncoding.DecodeString(sig)
	raw[20] ^= 1
	lines[len(lines)-1] = last[:i+1] + base64.StdEncoding.EncodeToString(raw) + `\n"}`
	bad := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(bad, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	r = run(t, ctx, records(1, 30, 0, ""), "verify", "--verifier", vkey, "--checkpoints", bad, "--state", filepath.Join(dir, "t2.state"), "--init", "--witness-key", wfile)
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "error bad_cosignature: ") || !strings.Contains(r.stderr, "the cosignature of witness witness.test/w1") {
		t.Fatalf("flipped cosignature: %d %s", r.code, r.stderr)
	}
}

// TestWitnessSplitView: the log key is stolen and signs a rewritten log.
// The witness refuses the second view (seal exits 3, witness_refused), and
// a verifier shown the rewritten log with its log-signed checkpoints
// refuses it too (unwitnessed), while one without witnesses would not.
func TestWitnessSplitView(t *testing.T) {
	ctx := context.Background()
	dir, skey, vkey, w, wfile := witnessSetup(t)
	out := filepath.Join(dir, "cp.ndjson")
	if r := run(t, ctx, records(1, 20, 0, ""), "seal", "--signer", skey, "--out", out, "--every", "10", "--witness-file", wfile); r.code != 0 {
		t.Fatalf("seal: %d %s", r.code, r.stderr)
	}
	forged := filepath.Join(dir, "forged.ndjson")
	forkLog := records(1, 25, 5, "-rewritten")
	r := run(t, ctx, forkLog, "seal", "--signer", skey, "--out", forged, "--every", "10", "--witness-file", wfile)
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "error witness_refused: witness witness.test/w1") {
		t.Fatalf("forged seal: %d %s", r.code, r.stderr)
	}
	if w.Size(testOrigin) != 20 {
		t.Fatalf("the witness moved to %d", w.Size(testOrigin))
	}
	// Without witnesses the forged view verifies (trust on first use)...
	r = run(t, ctx, forkLog, "verify", "--verifier", vkey, "--checkpoints", forged, "--state", filepath.Join(dir, "a.state"), "--init")
	if r.code != 0 {
		t.Fatalf("verify without witnesses: %d %s", r.code, r.stderr)
	}
	// prove and check-proof with the quorum refuse it too.
	r = run(t, ctx, forkLog, "prove", "--verifier", vkey, "--checkpoints", forged, "--seq", "7", "--witness-key", wfile)
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "with 1 witness cosignatures (3 signed by the log alone): unwitnessed") {
		t.Fatalf("prove forged: %d %s", r.code, r.stderr)
	}
	proof := filepath.Join(dir, "forged-proof.json")
	if r := run(t, ctx, forkLog, "prove", "--verifier", vkey, "--checkpoints", forged, "--seq", "7", "--out", proof); r.code != 0 {
		t.Fatalf("prove forged without witnesses: %d %s", r.code, r.stderr)
	}
	r = run(t, ctx, nil, "check-proof", "--verifier", vkey, "--witness-key", wfile, proof)
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "unwitnessed: its checkpoint (size 25) carries 0 of the 1 witness cosignatures required") {
		t.Fatalf("check-proof forged: %d %s", r.code, r.stderr)
	}
	// ...with the quorum it does not.
	r = run(t, ctx, forkLog, "verify", "--verifier", vkey, "--checkpoints", forged, "--state", filepath.Join(dir, "b.state"), "--init", "--witness-key", wfile)
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "error unwitnessed: seq 1..25, size 25, checkpoint line 3: seqs 1..25 are signed by the log but no checkpoint covering them carries 1 witness cosignatures") {
		t.Fatalf("verify with the quorum: %d %s", r.code, r.stderr)
	}
}

// TestWitnessDownAndBack: shipping goes on while the witness is down; the
// next run, with it back, gets the newest checkpoint cosigned; verify
// passes and names the gap.
func TestWitnessDownAndBack(t *testing.T) {
	ctx := context.Background()
	dir, skey, vkey, w, wfile := witnessSetup(t)
	out, state := filepath.Join(dir, "cp.ndjson"), filepath.Join(dir, "seal.state")
	if r := run(t, ctx, records(1, 10, 0, ""), "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--witness-file", wfile); r.code != 0 {
		t.Fatalf("seal: %d %s", r.code, r.stderr)
	}
	w.SetDown(true)
	r := run(t, ctx, records(11, 30, 0, ""), "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--witness-file", wfile, "--witness-flush", "200ms")
	if r.code != 0 || !strings.Contains(r.stderr, "warning witness_unreachable: witness witness.test/w1: HTTP 503") ||
		!strings.Contains(r.stderr, "warning unwitnessed: witness witness.test/w1 has not cosigned the newest checkpoint, size 30") {
		t.Fatalf("seal while down: %d %s", r.code, r.stderr)
	}
	if got := r.stdout; got != string(records(11, 30, 0, "")) {
		t.Fatal("records were not passed on while the witness was down")
	}
	// Verify now: the newest witnessed size is 10.
	r = run(t, ctx, records(1, 30, 0, ""), "verify", "--verifier", vkey, "--checkpoints", out, "--state", filepath.Join(dir, "a.state"), "--init", "--witness-key", wfile)
	if r.code != exitcode.Verify || !strings.Contains(r.stderr, "error unwitnessed: seq 11..30, size 30") {
		t.Fatalf("verify while down: %d %s", r.code, r.stderr)
	}
	w.SetDown(false)
	if r := run(t, ctx, records(31, 40, 0, ""), "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--witness-file", wfile); r.code != 0 {
		t.Fatalf("seal back: %d %s", r.code, r.stderr)
	}
	if w.Size(testOrigin) != 40 {
		t.Fatalf("witness at %d, want 40", w.Size(testOrigin))
	}
	r = run(t, ctx, records(1, 40, 0, ""), "verify", "--verifier", vkey, "--checkpoints", out, "--state", filepath.Join(dir, "b.state"), "--init", "--witness-key", wfile)
	if r.code != 0 || !strings.Contains(r.stderr, "note unwitnessed_gap: the checkpoints of sizes [20") ||
		!strings.Contains(r.stderr, "] had fewer than 1 witness cosignatures; a later witnessed checkpoint covers them") {
		t.Fatalf("verify after: %d %s", r.code, r.stderr)
	}
}

// TestWitnessRefusals: a witness rolled back between runs, and one that
// answers with a corrupt cosignature: each an alarm (exit 3) with its
// finding; the records are passed on all the same.
func TestWitnessRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(w *witnessfake.Witness)
		want string
	}{
		{"rolled back", func(w *witnessfake.Witness) { w.RollBack(testOrigin, 1000) }, // its state lost
			"error witness_refused: witness witness.test/w1 was rolled back: it now holds size 0 but its cosignature of size 20 is in the checkpoint file"},
		{"corrupt cosignature", func(w *witnessfake.Witness) { w.SetCorrupt(true) },
			"error witness_refused: witness witness.test/w1: bad cosignature: the cosignature of witness witness.test/w1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir, skey, _, w, wfile := witnessSetup(t)
			out, state := filepath.Join(dir, "cp.ndjson"), filepath.Join(dir, "seal.state")
			if r := run(t, ctx, records(1, 20, 0, ""), "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--witness-file", wfile); r.code != 0 {
				t.Fatalf("seal: %d %s", r.code, r.stderr)
			}
			tc.do(w)
			r := run(t, ctx, records(21, 30, 0, ""), "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--witness-file", wfile)
			if r.code != exitcode.Verify || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("seal: %d %s\nwant %q", r.code, r.stderr, tc.want)
			}
			if r.stdout != string(records(21, 30, 0, "")) {
				t.Fatal("the records were not passed on")
			}
			if n := strings.Count(r.stderr, "witness_refused"); n != 1 {
				t.Fatalf("%d witness_refused lines, want 1 (never retried)", n)
			}
		})
	}
}

// TestWitnessHung: a witness that never answers does not hold up the
// records, and the run ends within the --witness-flush bound, saying the
// newest checkpoint is not witnessed.
func TestWitnessHung(t *testing.T) {
	ctx := context.Background()
	dir, skey, _, w, wfile := witnessSetup(t)
	w.SetDelay(time.Hour)
	out := filepath.Join(dir, "cp.ndjson")
	start := time.Now()
	r := run(t, ctx, records(1, 30, 0, ""), "seal", "--signer", skey, "--out", out, "--every", "10", "--witness-file", wfile, "--witness-flush", "300ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("seal took %s with a hung witness", d)
	}
	if r.code != 0 || r.stdout != string(records(1, 30, 0, "")) ||
		!strings.Contains(r.stderr, "warning unwitnessed: witness witness.test/w1 has not cosigned the newest checkpoint, size 30") {
		t.Fatalf("seal: %d %s", r.code, r.stderr)
	}
}
