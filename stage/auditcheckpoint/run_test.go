package auditcheckpoint

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

const testOrigin = "auditpipe.test/log"

// records returns record lines for seqs from..to of a chain whose record
// n is {"n":n} with tag appended to the text of the records at or after
// forkAt (0: none), so that two chains share a prefix.
func records(from, to int64, forkAt int64, tag string) []byte {
	var b bytes.Buffer
	prev := ""
	for seq := int64(1); seq <= to; seq++ {
		text := "event"
		if forkAt > 0 && seq >= forkAt {
			text += tag
		}
		rec := fmt.Sprintf(`{"n":%d,"text":%q}`, seq, text)
		sum := chain.Hash(prev, []byte(rec))
		h := hex.EncodeToString(sum[:])
		if seq >= from {
			fmt.Fprintf(&b, `{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":%s,"prevHash":%q,"recordHash":%q}`+"\n",
				seq, 1764244800000+seq, rec, prev, h)
		}
		prev = h
	}
	return b.Bytes()
}

// keys writes a key pair into dir and returns the signer and verifier paths.
func keys(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	s, v := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if _, err := checkpoint.GenerateKeyFiles(testOrigin, s, v); err != nil {
		t.Fatal(err)
	}
	return s, v
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, ctx context.Context, stdin []byte, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(ctx, args, bytes.NewReader(stdin), &stdout, &stderr)
	code := cli.Report(prog, err, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// sizes returns the sizes of the checkpoints in a checkpoint file, in order.
func sizes(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var l struct{ Checkpoint string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("checkpoint line %q: %v", line, err)
		}
		var n int64
		fmt.Sscanf(strings.Split(l.Checkpoint, "\n")[1], "%d", &n)
		out = append(out, n)
	}
	return out
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := keys(t, dir, "a")
	open := filepath.Join(dir, "open.key")
	data, _ := os.ReadFile(signer)
	os.WriteFile(open, data, 0o644)
	_, other := keys(t, dir, "b")
	os.WriteFile(filepath.Join(dir, "other-name.pub"), []byte(mustVerifierKey(t, "other.test/log")+"\n"), 0o644)
	two := []string{"--verifier", verifier, "--verifier", filepath.Join(dir, "other-name.pub")}
	existing := filepath.Join(dir, "existing.state")
	os.WriteFile(existing, []byte("{}\n"), 0o600)
	ck := filepath.Join(dir, "ck.ndjson")
	withCheckpoint := filepath.Join(dir, "with.ndjson")
	os.WriteFile(withCheckpoint, []byte(`{"checkpoint":"x"}`+"\n"), 0o644)

	for _, tc := range []struct {
		name       string
		args       []string
		stdin      []byte
		wantCode   int
		wantStderr string
	}{
		{"no command", nil, nil, 2, "no command given"},
		{"unknown command", []string{"sign"}, nil, 2, `unknown command "sign"`},
		{"help", []string{"-h"}, nil, 0, "Commands:"},
		{"command help", []string{"seal", "-h"}, nil, 0, "AUDIT_CHECKPOINT_SEAL_SIGNER"},
		{"keygen no name", []string{"keygen", "--signer", "s", "--verifier", "v"}, nil, 2, "--name is required"},
		{"keygen no files", []string{"keygen", "--name", testOrigin}, nil, 2, "--signer and --verifier are required"},
		{"keygen same file", []string{"keygen", "--name", testOrigin, "--signer", "k", "--verifier", "k"}, nil, 2, "must be different files"},
		{"keygen bad name", []string{"keygen", "--name", "a b", "--signer", "s", "--verifier", "v"}, nil, 2, "contains a space"},
		{"keygen argument", []string{"keygen", "--name", testOrigin, "--signer", "s", "--verifier", "v", "extra"}, nil, 2, `unexpected argument "extra"`},
		{"keygen exists", []string{"keygen", "--name", testOrigin, "--signer", signer, "--verifier", filepath.Join(dir, "new.pub")}, nil, 1, "file exists"},
		{"seal no signer", []string{"seal", "--out", ck}, nil, 2, "--signer is required"},
		{"seal no out", []string{"seal", "--signer", signer}, nil, 2, "--out is required"},
		{"seal negative every", []string{"seal", "--signer", signer, "--out", ck, "--every", "-1"}, nil, 2, "must not be negative"},
		{"seal unknown flag", []string{"seal", "--signer", signer, "--out", ck, "--bogus"}, nil, 2, "unknown flag --bogus"},
		{"seal key others can read", []string{"seal", "--signer", open, "--out", ck}, nil, 2, "chmod 600"},
		{"seal bad origin", []string{"seal", "--signer", signer, "--out", ck, "--origin", "a+b"}, nil, 2, "contains '+'"},
		{"seal state is out", []string{"seal", "--signer", signer, "--out", ck, "--state", ck}, nil, 2, "must be different files"},
		{"seal not from seq 1", []string{"seal", "--signer", signer, "--out", ck}, records(5, 9, 0, ""), 4, "the stream starts at seq 5, but the tree starts at seq 1 and there is no seal state"},
		{"seal lost state", []string{"seal", "--signer", signer, "--out", withCheckpoint, "--state", filepath.Join(dir, "lost.state")}, nil, 2, "is missing but " + withCheckpoint + " already holds 1 checkpoints"},
		{"seal damaged state", []string{"seal", "--signer", signer, "--out", ck, "--state", existing}, nil, 2, "is of origin"},
		{"seal broken chain", []string{"seal", "--signer", signer, "--out", filepath.Join(dir, "broken.ndjson")},
			append(records(1, 3, 0, ""), records(5, 6, 0, "")...), 3, "chain: error seq_gap: seq 4 line 4"},
		{"verify no verifier", []string{"verify", "--checkpoints", ck, "--state", "s"}, nil, 2, "--verifier is required"},
		{"verify no checkpoints", []string{"verify", "--verifier", verifier, "--state", "s"}, nil, 2, "--checkpoints is required"},
		{"verify no state", []string{"verify", "--verifier", verifier, "--checkpoints", ck}, nil, 2, "--state is required"},
		{"verify missing state", []string{"verify", "--verifier", verifier, "--checkpoints", ck, "--state", filepath.Join(dir, "none")}, nil, 2, "pass --init to trust the checkpoints on first use"},
		{"verify malformed state", []string{"verify", "--verifier", verifier, "--checkpoints", ck, "--state", existing}, nil, 3, "trusted state: read state"},
		{"verify two origins", append([]string{"verify", "--checkpoints", ck, "--state", filepath.Join(dir, "none"), "--init"}, two...), nil, 2, "give --origin: the verifier keys have 2 names"},
		{"verify bad key file", []string{"verify", "--verifier", signer, "--checkpoints", ck, "--state", "s", "--init"}, nil, 2, "not a verifier key"},
		{"verify missing checkpoints", []string{"verify", "--verifier", verifier, "--checkpoints", filepath.Join(dir, "none.ndjson"), "--state", filepath.Join(dir, "none"), "--init"}, nil, 4, "open checkpoints"},
		{"prove no seq", []string{"prove", "--verifier", verifier, "--checkpoints", ck}, nil, 2, "--seq is required"},
		{"prove no checkpoints", []string{"prove", "--verifier", verifier, "--seq", "3"}, nil, 2, "--checkpoints is required"},
		{"prove nothing signed", []string{"prove", "--verifier", other, "--checkpoints", withCheckpoint, "--seq", "3"}, nil, 2, "holds no checkpoint of auditpipe.test/log of any size"},
		{"check-proof no verifier", []string{"check-proof", "p.json"}, nil, 2, "--verifier is required"},
		{"check-proof two files", []string{"check-proof", "--verifier", verifier, "a.json", "b.json"}, nil, 2, `unexpected argument "b.json"`},
		{"check-proof missing file", []string{"check-proof", "--verifier", verifier, filepath.Join(dir, "none.json")}, nil, 4, "open proof"},
		{"check-proof garbage", []string{"check-proof", "--verifier", verifier}, []byte("{}\n"), 3, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, t.Context(), tc.stdin, tc.args...)
			if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", r.code, r.stderr, tc.wantCode, tc.wantStderr)
			}
		})
	}
}

func mustVerifierKey(t *testing.T, name string) string {
	_, vkey, err := checkpoint.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// TestInitWithState: --init refuses to run over an existing, valid state.
func TestInitWithState(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := keys(t, dir, "k")
	ck, st := filepath.Join(dir, "ck.ndjson"), filepath.Join(dir, "trusted.state")
	log := records(1, 10, 0, "")
	if r := run(t, t.Context(), log, "seal", "--signer", signer, "--out", ck); r.code != 0 {
		t.Fatalf("seal: %+v", r)
	}
	if r := run(t, t.Context(), log, "verify", "--verifier", verifier, "--checkpoints", ck, "--state", st, "--init"); r.code != 0 {
		t.Fatalf("verify --init: %+v", r)
	}
	r := run(t, t.Context(), log, "verify", "--verifier", verifier, "--checkpoints", ck, "--state", st, "--init")
	if r.code != 2 || !strings.Contains(r.stderr, "--init is for the first run only") {
		t.Fatalf("second --init: %+v", r)
	}
}

// TestSealResume: the state carries the tree from run to run; a run may
// replay sealed records, must not skip any, and stops if the sealed part
// changed.
func TestSealResume(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := keys(t, dir, "k")
	ck, st := filepath.Join(dir, "ck.ndjson"), filepath.Join(dir, "seal.state")
	seal := func(stdin []byte, extra ...string) result {
		return run(t, t.Context(), stdin, append([]string{"seal", "--signer", signer, "--out", ck, "--state", st, "--every", "25", "--interval", "0"}, extra...)...)
	}

	in := records(1, 60, 0, "")
	r := seal(in)
	if r.code != 0 || r.stdout != string(in) {
		t.Fatalf("first run: exit %d, stdout equal %v, stderr %s", r.code, r.stdout == string(in), r.stderr)
	}
	if got := fmt.Sprint(sizes(t, ck)); got != "[25 50 60]" {
		t.Fatalf("sizes %s, want [25 50 60] (every 25, and at the end)", got)
	}

	// The whole log again: 1..60 pass through as a replay, 61..100 are new.
	in = records(1, 100, 0, "")
	r = seal(in)
	if r.code != 0 || r.stdout != string(in) || !strings.Contains(r.stderr, "100 records (seq 1..100, 60 already sealed); 2 checkpoints appended") {
		t.Fatalf("replay run: exit %d, stdout equal %v, stderr %s", r.code, r.stdout == string(in), r.stderr)
	}
	// Starting right after the state: anchored on its last hash.
	r = seal(records(101, 120, 0, ""))
	if r.code != 0 || !strings.Contains(r.stderr, "20 records (seq 101..120)") {
		t.Fatalf("continuing run: %+v", r)
	}
	if got := fmt.Sprint(sizes(t, ck)); got != "[25 50 60 75 100 120]" {
		t.Fatalf("sizes %s", got)
	}

	// A gap after the state is refused, naming what to seal first.
	r = seal(records(130, 140, 0, ""))
	if r.code != 4 || !strings.Contains(r.stderr, "seqs 121..129 were never sealed") || r.stdout != "" {
		t.Fatalf("gap: %+v", r)
	}
	// A next record that does not link to the sealed hash is refused.
	forged := records(121, 125, 1, "-forged") // the same seqs, another chain
	r = seal(forged)
	if r.code != 3 || !strings.Contains(r.stderr, "chain: error prev_link: seq 121") {
		t.Fatalf("unlinked continuation: %+v", r)
	}
	// A log rewritten inside the sealed part (hashes recomputed) is refused
	// when the replay reaches the sealed size, and nothing is signed.
	before := sizes(t, ck)
	r = seal(records(1, 130, 90, "-rewritten"))
	if r.code != 3 || !strings.Contains(r.stderr, "seq 120 has recordHash") || !strings.Contains(r.stderr, "the log was rewritten at or before seq 120") {
		t.Fatalf("rewritten replay: %+v", r)
	}
	if got := sizes(t, ck); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("a rewritten log was signed: sizes %v, were %v", got, before)
	}

	// A stop between the state write and the append: the next run puts the
	// state's checkpoint back into the file.
	data, _ := os.ReadFile(ck)
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	os.WriteFile(ck, []byte(strings.Join(lines[:len(lines)-1], "")), 0o644)
	r = seal(nil)
	if r.code != 0 || !strings.Contains(r.stderr, "lacked the checkpoint of size 120") {
		t.Fatalf("repair: %+v", r)
	}
	if got := fmt.Sprint(sizes(t, ck)); got != "[25 50 60 75 100 120]" {
		t.Fatalf("sizes after repair %s", got)
	}

	// Everything signed is one history of this log.
	r = run(t, t.Context(), records(1, 120, 0, ""), "verify", "--verifier", verifier, "--checkpoints", ck, "--state", filepath.Join(dir, "trusted.state"), "--init")
	if r.code != 0 || !strings.Contains(r.stderr, "6 matching the log, 5 of 5 consistency proofs verified; clean") {
		t.Fatalf("verify: %+v", r)
	}

	// A damaged state is refused, not resumed from.
	var s sealState
	data, _ = os.ReadFile(st)
	json.Unmarshal(data, &s)
	s.Size = 119
	data, _ = json.Marshal(s)
	os.WriteFile(st, data, 0o600)
	r = seal(nil)
	if r.code != 1 || !strings.Contains(r.stderr, "damaged seal state") {
		t.Fatalf("damaged state: %+v", r)
	}
}

// TestSealIntervalAndSignal: with records arriving slowly, a checkpoint is
// signed every --interval, and at once on a signal (context cancelled) while
// seal still waits for input.
func TestSealIntervalAndSignal(t *testing.T) {
	dir := t.TempDir()
	signer, _ := keys(t, dir, "k")
	ck := filepath.Join(dir, "ck.ndjson")
	in := records(1, 15, 0, "")
	lines := strings.SplitAfter(string(in), "\n")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"seal", "--signer", signer, "--out", ck, "--every", "0", "--interval", "20ms"}, pr, &stdout, &stderr)
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if data, _ := os.ReadFile(ck); len(data) > 0 && fmt.Sprint(sizes(t, ck)) == want {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("checkpoint sizes %v, want %s; stderr %s", sizes(t, ck), want, stderr.String())
	}
	io.WriteString(pw, strings.Join(lines[:10], ""))
	waitFor("[10]")
	time.Sleep(60 * time.Millisecond) // no new records: no new checkpoint
	io.WriteString(pw, strings.Join(lines[10:15], ""))
	waitFor("[10 15]")
	cancel()
	pw.Close()
	if err := <-done; exitcode.Of(err) != 0 {
		t.Fatalf("Run: %v", err)
	}
	if got := fmt.Sprint(sizes(t, ck)); got != "[10 15]" {
		t.Fatalf("sizes %s", got)
	}
	if stdout.String() != string(in) {
		t.Fatalf("stdout is not the input byte for byte")
	}
}

// TestSealSignal: a signal while seal waits for input signs at once.
func TestSealSignal(t *testing.T) {
	dir := t.TempDir()
	signer, _ := keys(t, dir, "k")
	ck := filepath.Join(dir, "ck.ndjson")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"seal", "--signer", signer, "--out", ck, "--every", "0", "--interval", "0"}, pr, &stdout, &stderr)
	}()
	io.WriteString(pw, string(records(1, 7, 0, "")))
	// Wait until the records went through, then signal.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), `"seq":7`) {
		if time.Now().After(deadline) {
			t.Fatal("the records did not pass through")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if data, _ := os.ReadFile(ck); len(data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after the signal while seal waited for input")
		}
		time.Sleep(5 * time.Millisecond)
	}
	pw.Close()
	if err := <-done; exitcode.Of(err) != 0 {
		t.Fatalf("Run: %v", err)
	}
	if got := fmt.Sprint(sizes(t, ck)); got != "[7]" {
		t.Fatalf("sizes %s", got)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while Run writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMarksDropped: mark lines (audit-read's control lines for
// audit-verify) are dropped by seal (never sealed, never passed on,
// counted in the summary), and skipped by verify and prove.
func TestMarksDropped(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := keys(t, dir, "k")
	ck := filepath.Join(dir, "ck.ndjson")
	plain := records(1, 30, 0, "")
	ls := strings.SplitAfter(string(plain), "\n")
	var in strings.Builder
	in.WriteString(`{"mark":{"type":"anchor","seq":0,"hash":""}}` + "\n")
	for i, l := range ls {
		in.WriteString(l)
		if i == 9 {
			in.WriteString(`{"mark":{"type":"hole","from":11,"to":11}}` + "\n")
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want func(r result) string
	}{
		{"seal", []string{"seal", "--signer", signer, "--out", ck, "--every", "10", "--interval", "0"}, func(r result) string {
			if r.code != 0 || r.stdout != string(plain) || !strings.Contains(r.stderr, "2 mark lines dropped") {
				return "seal"
			}
			if got := fmt.Sprint(sizes(t, ck)); got != "[10 20 30]" {
				return "sizes " + got
			}
			return ""
		}},
		{"verify", []string{"verify", "--verifier", verifier, "--checkpoints", ck, "--state", filepath.Join(dir, "trusted.state"), "--init"}, func(r result) string {
			if r.code != 0 {
				return "verify"
			}
			return ""
		}},
		{"prove", []string{"prove", "--verifier", verifier, "--checkpoints", ck, "--seq", "12"}, func(r result) string {
			if r.code != 0 || !strings.Contains(r.stdout, "12") {
				return "prove"
			}
			return ""
		}},
	} {
		r := run(t, t.Context(), []byte(in.String()), tc.args...)
		if bad := tc.want(r); bad != "" {
			t.Fatalf("%s: %s: exit %d\nstderr %s", tc.name, bad, r.code, r.stderr)
		}
	}
}
