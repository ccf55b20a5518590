package auditack

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// TestMain lets the tests run audit-ack as a real process (this test
// binary, re-executed): signals and FIFOs are the subject.
func TestMain(m *testing.M) {
	if os.Getenv("AUDITACK_TEST_MAIN") == "1" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
	code   int
}

func startAck(t *testing.T, stdin *os.File, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Env = append(os.Environ(), "AUDITACK_TEST_MAIN=1")
	p := &proc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends sig and waits at most limit for the exit.
func (p *proc) stop(t *testing.T, sig os.Signal, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("still running %v after %v\n%s", sig, limit, p.stderr.String())
	}
	return time.Since(start)
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeFIFO opens the FIFO write-only (as audit-ship does), writes s and
// closes it.
func writeFIFO(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// The first SIGTERM or SIGINT stops audit-ack promptly whatever it is
// doing, with exit 0 and its summary: waiting on an idle FIFO (no writer
// ever, or after the writer left), waiting on stdin, and blocked in a
// commit behind another process's write lock.
func TestStopsPromptlyOnFirstSignal(t *testing.T) {
	db := sampleDB(t, 50)
	const ex = "file:x"
	for _, c := range []struct {
		name  string
		sig   syscall.Signal
		setup func(t *testing.T, fifo string) (args []string, stdin *os.File, after func(p *proc))
	}{
		{name: "fifo, no writer ever", sig: syscall.SIGTERM},
		{name: "fifo, no writer ever, SIGINT", sig: syscall.SIGINT},
		{name: "fifo, writer gone", sig: syscall.SIGTERM, setup: func(t *testing.T, fifo string) ([]string, *os.File, func(*proc)) {
			return nil, nil, func(p *proc) {
				writeFIFO(t, fifo, realAck(t, db, ex, 1, 10, 10))
				waitFor(t, "the commit", 5*time.Second, func() bool { return cursorOf(t, db, ex) == 10 })
			}
		}},
		{name: "stdin pipe, no writer", sig: syscall.SIGTERM, setup: func(t *testing.T, fifo string) ([]string, *os.File, func(*proc)) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			return []string{"--db", db, "--exporter", ex}, r, nil
		}},
		{name: "committing behind a lock", sig: syscall.SIGTERM, setup: func(t *testing.T, fifo string) ([]string, *os.File, func(*proc)) {
			return []string{"--db", db, "--exporter", ex, "--fifo", fifo, "--busy-timeout", "60s"}, nil, func(p *proc) {
				// Another process holds the write lock; an ack arrives.
				d, err := sql.Open("sqlite", "file:"+db+"?_txlock=immediate")
				if err != nil {
					t.Fatal(err)
				}
				d.SetMaxOpenConns(1)
				tx, err := d.BeginTx(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(`UPDATE audit_export_cursor SET updated_at = updated_at WHERE 0`); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { tx.Rollback(); d.Close() })
				writeFIFO(t, fifo, realAck(t, db, ex, 11, 20, 10))
				time.Sleep(300 * time.Millisecond) // into the commit's wait
			}
		}},
		{name: "opening behind a lock", sig: syscall.SIGTERM, setup: func(t *testing.T, fifo string) ([]string, *os.File, func(*proc)) {
			// A database without auditpipe's table: audit-ack must create
			// it, and waits for the write lock another process holds.
			db2 := sampleDB(t, 5)
			d, err := sql.Open("sqlite", "file:"+db2+"?_txlock=immediate")
			if err != nil {
				t.Fatal(err)
			}
			d.SetMaxOpenConns(1)
			if _, err := d.Exec(`DROP TABLE auditpipe_cursor_hash`); err != nil {
				t.Fatal(err)
			}
			tx, err := d.BeginTx(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(`UPDATE audit_export_cursor SET updated_at = updated_at WHERE 0`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tx.Rollback(); d.Close() })
			return []string{"--db", db2, "--exporter", ex, "--fifo", fifo, "--busy-timeout", "60s"}, nil, func(p *proc) {
				time.Sleep(300 * time.Millisecond)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "acks.fifo")
			args := []string{"--db", db, "--exporter", ex, "--fifo", fifo}
			var stdin *os.File
			var after func(*proc)
			if c.setup != nil {
				a, in, f := c.setup(t, fifo)
				if a != nil {
					args = a
				}
				stdin, after = in, f
			}
			p := startAck(t, stdin, args...)
			if strings.Contains(strings.Join(args, " "), "--fifo") && !strings.Contains(c.name, "opening") {
				waitFor(t, "the FIFO", 5*time.Second, func() bool { _, err := os.Stat(fifo); return err == nil })
			}
			time.Sleep(200 * time.Millisecond)
			if after != nil {
				after(p)
			}
			select {
			case <-p.done:
				// The writer leaving is no end of input: the FIFO stays open
				// for the next shipper.
				t.Fatalf("exited %d before the signal:\n%s", p.code, p.stderr.String())
			default:
			}
			took := p.stop(t, c.sig, 5*time.Second)
			if p.code != 0 {
				t.Errorf("exit %d after %v, want 0\n%s", p.code, took, p.stderr.String())
			}
			if !strings.Contains(p.stderr.String(), "audit-ack: file:x:") {
				t.Errorf("no summary:\n%s", p.stderr.String())
			}
			if strings.Contains(c.name, "committing") && !strings.Contains(p.stderr.String(), "the final commit (seq 20) waited 1s for the database lock and was given up; the cursor stays at seq 10") {
				t.Errorf("no word of the commit given up:\n%s", p.stderr.String())
			}
			t.Logf("stopped in %v", took)
		})
	}
}

// Issue 12 item 3e: the FIFO removed and recreated (a tmpfiles rule, an
// operator, a unit's RuntimeDirectory) while audit-ack runs: the restarted
// shipper writes to the new one. audit-ack notices, reads the new one, and
// loses nothing written to the old one.
func TestFIFOReplaced(t *testing.T) {
	db := sampleDB(t, 100)
	const ex = "file:x"
	dir := t.TempDir()
	fifo := filepath.Join(dir, "acks.fifo")
	p := startAck(t, nil, "--db", db, "--exporter", ex, "--fifo", fifo, "--commit-interval", "10ms")
	waitFor(t, "the FIFO", 5*time.Second, func() bool { _, err := os.Stat(fifo); return err == nil })
	writeFIFO(t, fifo, realAck(t, db, ex, 1, 10, 10))
	waitFor(t, "seq 10", 5*time.Second, func() bool { return cursorOf(t, db, ex) == 10 })

	// An old shipper still holds the old FIFO open when it is replaced.
	old, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The new shipper writes to the new one (opened non-blocking: it must
	// not hang the test if nobody reads it).
	waitFor(t, "a reader on the new FIFO", 5*time.Second, func() bool {
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return false
		}
		f.Close()
		return true
	})
	writeFIFO(t, fifo, realAck(t, db, ex, 11, 20, 10))
	waitFor(t, "seq 20 through the new FIFO", 5*time.Second, func() bool { return cursorOf(t, db, ex) == 20 })
	// What the old shipper writes late still arrives.
	old.WriteString(realAck(t, db, ex, 21, 30, 10))
	old.Close()
	waitFor(t, "seq 30 through the old FIFO", 5*time.Second, func() bool { return cursorOf(t, db, ex) == 30 })
	// And removed without a new one: audit-ack makes it again.
	os.Remove(fifo)
	waitFor(t, "the FIFO made again", 5*time.Second, func() bool {
		fi, err := os.Stat(fifo)
		return err == nil && fi.Mode()&os.ModeNamedPipe != 0
	})
	writeFIFO(t, fifo, realAck(t, db, ex, 31, 40, 10))
	waitFor(t, "seq 40", 5*time.Second, func() bool { return cursorOf(t, db, ex) == 40 })
	p.stop(t, syscall.SIGTERM, 5*time.Second)
	if p.code != 0 || !strings.Contains(p.stderr.String(), "was removed or replaced") {
		t.Errorf("exit %d; stderr:\n%s", p.code, p.stderr.String())
	}
}

// The database replaced while audit-ack runs (removed, and a copy put in
// its place): the cursor is committed to the file at the path, not to the
// old one nobody reads any more.
func TestDatabaseReplaced(t *testing.T) {
	db := sampleDB(t, 50)
	const ex = "file:x"
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	p := startAck(t, nil, "--db", db, "--exporter", ex, "--fifo", fifo, "--commit-interval", "10ms")
	waitFor(t, "the FIFO", 5*time.Second, func() bool { _, err := os.Stat(fifo); return err == nil })
	writeFIFO(t, fifo, realAck(t, db, ex, 1, 10, 10))
	waitFor(t, "seq 10", 5*time.Second, func() bool { return cursorOf(t, db, ex) == 10 })

	// A copy of the database (checkpointed first) renamed over it.
	d, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	d.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	d.Close()
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	// Removed with its -wal and -shm, and the copy put in its place.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(db + suffix)
	}
	tmp := db + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, db); err != nil {
		t.Fatal(err)
	}
	writeFIFO(t, fifo, realAck(t, db, ex, 11, 50, 40))
	waitFor(t, "seq 50 in the file at the path", 5*time.Second, func() bool { return cursorOf(t, db, ex) == 50 })
	p.stop(t, syscall.SIGTERM, 5*time.Second)
	// After audit-ack has closed the database (a connection still on the
	// old file would checkpoint the cursor into that file at close, and
	// remove the -wal the new file was read through).
	if cur := cursorOf(t, db, ex); cur != 50 {
		t.Errorf("after exit, the file at the path has cursor %d, want 50", cur)
	}
	if p.code != 0 || !strings.Contains(p.stderr.String(), "was replaced") {
		t.Errorf("exit %d; stderr:\n%s", p.code, p.stderr.String())
	}
}

// A healthy database with another database's -wal beside it (the one it
// replaced, its daemon killed without a checkpoint): audit-ack refuses to
// open it for writing, which would apply that -wal to it for good.
func TestForeignWALNotWritten(t *testing.T) {
	old := sampleDB(t, 60)
	db := sampleDB(t, 80) // the healthy replacement, another chain
	d, err := sql.Open("sqlite", "file:"+old+"?_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	d.SetMaxOpenConns(1)
	if _, err := d.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(`UPDATE audit_export_cursor SET updated_at = 1; INSERT INTO audit_export_cursor VALUES('x', 1, 1)`); err != nil {
		t.Fatal(err)
	}
	wal, err := os.ReadFile(old + "-wal")
	if err != nil || len(wal) == 0 {
		t.Fatalf("no -wal: %v", err)
	}
	shm, _ := os.ReadFile(old + "-shm")
	d.Close()
	os.WriteFile(db+"-wal", wal, 0o600)
	os.WriteFile(db+"-shm", shm, 0o600)
	before, _ := os.ReadFile(db)

	var stderr bytes.Buffer
	err = Run(context.Background(), []string{"--db", db, "--exporter", "file:x"}, strings.NewReader(""), io.Discard, &stderr)
	if exitcode.Of(err) != exitcode.Database || !strings.Contains(fmt.Sprint(err), "-wal beside it belongs to another database") {
		t.Fatalf("err %v (exit %d), want exit 5 naming the -wal\n%s", err, exitcode.Of(err), stderr.String())
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Errorf("the file was written")
	}
}
