package auditdb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// Issue 12 item 3d: the database replaced under Follow (removed and
// recreated, or a copy renamed over it, with or without an old -wal left
// beside it). Follow notices that the path names another file, and goes on
// with the new one only if it holds the last row read with the same hash;
// otherwise it stops with a *ReplacedError (exit 3). A -wal left over from
// the old database, which SQLite applies to the new file (reading it as
// malformed), does not make a healthy file unreadable.
func TestFollowReplacedDatabase(t *testing.T) {
	var staleDaemon interface{ Close() error }
	chain := chainRows(150, 1, []string{"a"}, []string{"k"}, 40)
	other := chainRows(200, 7, []string{"b"}, []string{"k"}, 40) // another database's chain
	for _, c := range []struct {
		name     string
		staleWAL bool // the old database is held open with a -wal (a daemon on it)
		replace  func(t *testing.T, path string)
		want     int64  // the last seq delivered
		err      string // in the ReplacedError; "" for none
		log      string // in what Follow logs
	}{
		{name: "copy renamed over, same chain", want: 150, log: "was replaced",
			replace: func(t *testing.T, path string) { renameOver(t, path, chain[:150]) }},
		{name: "removed and recreated, same chain", want: 120, log: "was replaced",
			replace: func(t *testing.T, path string) {
				for _, p := range []string{path, path + "-wal", path + "-shm"} {
					os.Remove(p)
				}
				time.Sleep(300 * time.Millisecond) // Follow sees no file for a while
				renameOver(t, path, chain[:120])
			}},
		{name: "another chain", want: 100, err: "seq 100 had recordHash " + chain[99].Hash + " in the file read so far, and the new one has record_hash \"" + other[99].Hash + "\" there",
			replace: func(t *testing.T, path string) { renameOver(t, path, other) }},
		{name: "a shorter copy", want: 100, err: "the new one has no seq 100 (its last is 50)",
			replace: func(t *testing.T, path string) { renameOver(t, path, chain[:50]) }},
		{name: "old -wal left beside a healthy copy", staleWAL: true, want: 140, log: "-wal beside it belongs to the old one",
			replace: func(t *testing.T, path string) {
				// The daemon killed without a checkpoint: its -wal and -shm
				// stay. (Closing it would checkpoint and remove them, so they
				// are copied before and put back after.)
				wal, shm := fileBytes(t, path+"-wal"), fileBytes(t, path+"-shm")
				if len(wal) == 0 {
					t.Fatal("no -wal to leave behind")
				}
				staleDaemon.Close()
				renameOver(t, path, chain[:140])
				os.WriteFile(path+"-wal", wal, 0o644)
				os.WriteFile(path+"-shm", shm, 0o644)
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := tempDB(t)
			insertRows(t, path, chain[:60])
			if c.staleWAL {
				// The daemon's connection: no automatic checkpoint, so rows
				// 61..100 stay in the -wal, which outlives the rename.
				d := rawDB(t, path, "_txlock=immediate&_pragma=wal_autocheckpoint(0)")
				staleDaemon = d
				d.SetMaxOpenConns(1)
				mustExec(t, d, `PRAGMA wal_checkpoint(TRUNCATE)`)
				tx, _ := d.Begin()
				for _, r := range chain[60:100] {
					if _, err := tx.Exec(`INSERT INTO audit_records(seq, ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(?,?,?,?,?,?,?)`,
						r.Seq, r.TS, r.Tenant, r.Kind, r.Rec, r.Prev, r.Hash); err != nil {
						t.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			} else {
				insertRows(t, path, chain[60:100])
			}
			var logMu sync.Mutex
			var logged strings.Builder
			db := openReader(t, path, ReaderOptions{Log: func(msg string) {
				logMu.Lock()
				logged.WriteString(msg + "\n")
				logMu.Unlock()
			}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			seqs := make(chan int64, 1000)
			done := make(chan error, 1)
			go func() {
				prev := ""
				done <- db.Follow(ctx, Filter{}, 20*time.Millisecond, func(r *Row) error {
					if r.PrevHash != prev {
						t.Errorf("seq %d does not link", r.Seq)
					}
					prev = r.RecordHash
					seqs <- r.Seq
					return nil
				})
			}()
			var last int64
			wait := func(seq int64) {
				deadline := time.After(10 * time.Second)
				for last < seq {
					select {
					case last = <-seqs:
					case err := <-done:
						done <- err
						t.Logf("Follow ended: %v", err)
						return
					case <-deadline:
						return
					}
				}
			}
			wait(100)
			if last != 100 {
				t.Fatalf("before the replacement: last seq %d", last)
			}
			c.replace(t, path)
			if c.err == "" {
				wait(c.want)
				if last != c.want {
					t.Fatalf("after the replacement: last seq %d, want %d; logged:\n%s", last, c.want, logged.String())
				}
				select {
				case err := <-done:
					t.Fatalf("Follow ended: %v", err)
				default:
				}
				// The head of the log (the lag gauges) is the new file's too.
				var head int64
				for deadline := time.Now().Add(5 * time.Second); head != c.want && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					head, _ = db.HeadSeq(ctx)
				}
				if head != c.want && !c.staleWAL {
					t.Errorf("HeadSeq %d after the replacement, want %d", head, c.want)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			} else {
				var err error
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatalf("Follow still running after the replacement (last seq %d)", last)
				}
				var re *ReplacedError
				if !errors.As(err, &re) || exitcode.Of(err) != exitcode.Verify {
					t.Fatalf("err %v (exit %d), want a ReplacedError with exit 3", err, exitcode.Of(err))
				}
				for _, want := range []string{path, c.err, "replaced"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("message lacks %q:\n%v", want, err)
					}
				}
				for len(seqs) > 0 {
					last = <-seqs
				}
				if last != c.want {
					t.Errorf("delivered up to %d, want %d", last, c.want)
				}
			}
			logMu.Lock()
			defer logMu.Unlock()
			if c.log != "" && !strings.Contains(logged.String(), c.log) {
				t.Errorf("log lacks %q:\n%s", c.log, logged.String())
			}
		})
	}
}

// renameOver writes rows into a new file beside path, closed (so it has no
// -wal of its own), and renames it over path.
func renameOver(t *testing.T, path string, rows []testRow) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "copy.tmp")
	insertRows(t, tmp, rows)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// A healthy file with a -wal of the database it replaced beside it (the
// daemon killed without a checkpoint, a copy put in place) was reported as
// "malformed, restore from a backup". OpenReader reads the file without
// that -wal, and says so.
func TestOpenWithForeignWAL(t *testing.T) {
	chain := chainRows(140, 1, []string{"a"}, []string{"k"}, 40)
	path := tempDB(t)
	insertRows(t, path, chain[:60])
	d := rawDB(t, path, "_txlock=immediate&_pragma=wal_autocheckpoint(0)")
	d.SetMaxOpenConns(1)
	mustExec(t, d, `PRAGMA wal_checkpoint(TRUNCATE)`)
	for _, r := range chain[60:100] {
		if _, err := d.Exec(`INSERT INTO audit_records(seq, ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(?,?,?,?,?,?,?)`,
			r.Seq, r.TS, r.Tenant, r.Kind, r.Rec, r.Prev, r.Hash); err != nil {
			t.Fatal(err)
		}
	}
	wal, shm := fileBytes(t, path+"-wal"), fileBytes(t, path+"-shm")
	d.Close()
	renameOver(t, path, chain[:140])
	os.WriteFile(path+"-wal", wal, 0o644)
	os.WriteFile(path+"-shm", shm, 0o644)

	var logged strings.Builder
	db, err := OpenReader(context.Background(), path, ReaderOptions{Log: func(m string) { logged.WriteString(m) }})
	if err != nil {
		t.Fatalf("OpenReader: %v", err)
	}
	defer db.Close()
	rows := collect(t, db, Filter{})
	if len(rows) != 140 || rows[139].Hash != chain[139].Hash {
		t.Errorf("read %d rows, want the file's 140", len(rows))
	}
	if !strings.Contains(logged.String(), "the -wal belongs to another database") {
		t.Errorf("log: %s", logged.String())
	}
}
