package auditread_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
)

type replBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *replBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *replBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Issue 12 item 3d, as audit-read --follow meets it: the database replaced
// by another one (another chain, a copy renamed over it) stops the read
// with exit 3 and a message naming the path and the replaced database; a
// copy of the same chain is followed on.
func TestFollowReplacedDatabase(t *testing.T) {
	ctx := context.Background()
	mk := func(dir, name string, n int, seed string) string {
		path := filepath.Join(dir, name)
		var events bytes.Buffer
		if err := auditsample.Run(ctx, []string{"--count", "50", "--seed", seed}, nil, &events, io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := auditappend.Run(ctx, []string{"--db", path, "--quiet"}, bytes.NewReader(events.Bytes()), io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		name string
		seed string // of the replacement; "1" is the same chain
		code int
		msg  string
	}{
		{"another chain", "2", exitcode.Verify, "the database was replaced (another file is at the path now) and the new file does not continue the chain read so far: seq 50 had recordHash"},
		{"same chain", "1", exitcode.OK, "was replaced (another file is at the path now); the new file holds seq 50 with the same recordHash: following it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db := mk(dir, "audit.db", 50, "1")
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var stdout, stderr replBuf
			done := make(chan error, 1)
			go func() {
				done <- auditread.Run(rctx, []string{"--db", db, "--follow", "--poll", "20ms"}, nil, &stdout, &stderr)
			}()
			deadline := time.Now().Add(5 * time.Second)
			for strings.Count(stdout.String(), "\n") < 50 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			other := mk(t.TempDir(), "copy.db", 50, c.seed)
			if err := os.Rename(other, db); err != nil {
				t.Fatal(err)
			}
			if c.code == exitcode.OK {
				for !strings.Contains(stderr.String(), "following it") && rctx.Err() == nil {
					time.Sleep(20 * time.Millisecond)
				}
				cancel()
			}
			err := <-done
			if exitcode.Of(err) != c.code || rctx.Err() != nil && c.code != exitcode.OK {
				t.Fatalf("err %v (exit %d), want exit %d in time\n%s", err, exitcode.Of(err), c.code, stderr.String())
			}
			all := stderr.String()
			if err != nil {
				all += err.Error()
			}
			if !strings.Contains(all, c.msg) || !strings.Contains(all, db) {
				t.Errorf("no %q naming %s:\n%s", c.msg, db, all)
			}
		})
	}
}
