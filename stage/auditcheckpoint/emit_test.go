package auditcheckpoint

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/framing"
)

// layout names each stdout line: the seq of a record, cpN for a checkpoint
// line of size N (+ for each cosignature).
func layout(t *testing.T, out string) string {
	t.Helper()
	var l []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if framing.IsCheckpoint([]byte(line)) {
			note, size, err := framing.ParseCheckpoint(nil, []byte(line))
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			l = append(l, "cp"+strconv.FormatInt(size, 10)+strings.Repeat("+", strings.Count(string(note), "\n\u2014 ")-1))
			continue
		}
		i := strings.Index(line, ",")
		l = append(l, strings.TrimPrefix(line[:i], `{"seq":`))
	}
	return strings.Join(l, " ")
}

// TestSealEmitCheckpoints: with --emit-checkpoints each checkpoint follows
// the record that completes it on stdout; without it stdout is the records
// byte for byte. A run that starts inside the sealed part (the cursor was
// behind seal when the pipeline stopped) carries the checkpoints again:
// the one at the cursor (size first-1) before the first record, and each
// later one after its record.
func TestSealEmitCheckpoints(t *testing.T) {
	dir := t.TempDir()
	skey, _ := keys(t, dir, "log")
	out, state := filepath.Join(dir, "cp.ndjson"), filepath.Join(dir, "seal.state")
	ctx := context.Background()
	args := []string{"seal", "--signer", skey, "--out", out, "--state", state, "--every", "3", "--interval", "0", "--quiet"}

	plain := run(t, ctx, records(1, 7, 0, ""), append(args[:0:0], "seal", "--signer", skey, "--out", filepath.Join(dir, "other.ndjson"), "--every", "3", "--quiet")...)
	if plain.code != 0 || plain.stdout != string(records(1, 7, 0, "")) {
		t.Fatalf("without --emit-checkpoints: exit %d, stdout not the records:\n%s%s", plain.code, plain.stdout, plain.stderr)
	}

	r := run(t, ctx, records(1, 7, 0, ""), append(args, "--emit-checkpoints")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got, want := layout(t, r.stdout), "1 2 3 cp3 4 5 6 cp6 7 cp7"; got != want {
		t.Fatalf("stdout %s, want %s", got, want)
	}
	// The checkpoint lines are the lines of --out, byte for byte.
	file := mustRead(t, out)
	for _, line := range strings.Split(r.stdout, "\n") {
		if framing.IsCheckpoint([]byte(line)) && !strings.Contains(string(file), line+"\n") {
			t.Fatalf("%s is not a line of %s", line, out)
		}
	}

	// Restarted at seq 4 (cursor 3): cp3 came after record 3, maybe in a
	// batch not acked: it comes first; cp6 and cp7 again after their
	// records; then the new cp9.
	r = run(t, ctx, records(4, 9, 0, ""), append(args, "--emit-checkpoints")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got, want := layout(t, r.stdout), "cp3 4 5 6 cp6 7 cp7 8 9 cp9"; got != want {
		t.Fatalf("restart at 4: stdout %s, want %s", got, want)
	}
	// Restarted at seq 6 (cursor 5): cp3 came before record 4, so the ack
	// of record 5 covers it: not sent again.
	r = run(t, ctx, records(6, 9, 0, ""), append(args, "--emit-checkpoints")...)
	if got, want := layout(t, r.stdout), "6 cp6 7 cp7 8 9 cp9"; r.code != 0 || got != want {
		t.Fatalf("restart at 6: exit %d stdout %s, want %s\n%s", r.code, got, want, r.stderr)
	}
	// The whole log again (a new SIEM, its cursor at 0): every checkpoint
	// comes again after its record.
	r = run(t, ctx, records(1, 9, 0, ""), append(args, "--emit-checkpoints")...)
	if got, want := layout(t, r.stdout), "1 2 3 cp3 4 5 6 cp6 7 cp7 8 9 cp9"; r.code != 0 || got != want {
		t.Fatalf("from seq 1: exit %d stdout %s, want %s\n%s", r.code, got, want, r.stderr)
	}
}
