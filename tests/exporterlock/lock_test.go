// Package exporterlock runs two whole drains of one exporter at once, as two
// overlapping cron runs would (issue 12 item 4): the second is refused at
// its first stage, naming the first one's pid, and the archive holds every
// record once.
package exporterlock

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func build(t *testing.T, dir string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/")
	for _, b := range []string{"audit-sample", "audit-append", "audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack"} {
		cmd.Args = append(cmd.Args, "./cmd/"+b)
	}
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// drain is examples/pipelines/drain-once.sh with the file sink, in its own
// process group.
func drain(t *testing.T, bin, dir, archive string, follow bool) (*exec.Cmd, *syncBuf) {
	f := ""
	if follow {
		f = "--follow"
	}
	script := fmt.Sprintf(`set -o pipefail; trap : TERM
audit-read --db audit.db --from-cursor file:archive %s --quiet \
  | audit-verify --db audit.db --from-cursor file:archive --quiet \
  | audit-batch --siem file --max-count 50 --quiet \
  | audit-ship --kind file --path %s --exporter file:archive --acks - --quiet \
  | audit-ack --db audit.db --exporter file:archive --quiet`, f, archive)
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &syncBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	return cmd, stderr
}

// countLines counts the records in an archive (gzip members, possibly
// still being written).
func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return 0
		}
		b, _ = io.ReadAll(zr) // a member still being written ends it early
	}
	return bytes.Count(b, []byte(`"recordHash"`))
}

func TestTwoDrainsOneExporter(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	bin, dir := t.TempDir(), t.TempDir()
	build(t, bin)
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	gen := exec.Command("bash", "-c", "audit-sample --count 3000 | audit-append --db audit.db --quiet")
	gen.Dir, gen.Env = dir, env
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	// The first drain (following, so that it is still there).
	first, firstErr := drain(t, bin, dir, "a.ndjson", true)
	deadline := time.Now().Add(20 * time.Second)
	for countLines(t, filepath.Join(dir, "a.ndjson")) < 3000 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := countLines(t, filepath.Join(dir, "a.ndjson")); n != 3000 {
		t.Fatalf("the first drain archived %d records, want 3000\n%s", n, firstErr.String())
	}

	// The second, overlapping: refused at once, nothing archived.
	start := time.Now()
	second, secondErr := drain(t, bin, dir, "b.ndjson", false)
	err := second.Wait()
	took := time.Since(start)
	if err == nil {
		t.Fatalf("the second drain succeeded:\n%s", secondErr.String())
	}
	if took > 10*time.Second {
		t.Errorf("the second drain took %v to be refused", took)
	}
	msg := secondErr.String()
	want := fmt.Sprintf("exporter file:archive on audit.db is in use by another pipeline: its audit-read (pid ")
	if !strings.Contains(msg, want) || !strings.Contains(msg, "audit.db.file:archive.lock") {
		t.Errorf("the refusal does not name the holder and the lock file:\n%s", msg)
	}
	if n := countLines(t, filepath.Join(dir, "b.ndjson")); n != 0 {
		t.Errorf("the refused drain archived %d records", n)
	}

	// The first one stops cleanly; a third drain then runs and has nothing
	// left to ship.
	syscall.Kill(-first.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("first drain: %v\n%s", err, firstErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the first drain did not stop\n%s", firstErr.String())
	}
	third, thirdErr := drain(t, bin, dir, "c.ndjson", false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { <-ctx.Done(); syscall.Kill(-third.Process.Pid, syscall.SIGKILL) }()
	if err := third.Wait(); err != nil {
		t.Fatalf("third drain: %v\n%s", err, thirdErr.String())
	}
	if n := countLines(t, filepath.Join(dir, "c.ndjson")); n != 0 {
		t.Errorf("the third drain archived %d records again", n)
	}
}
