package security

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

// notWorldReadable fails for a file that others may read or write. The
// test process runs with umask 022: privacy is auditpipe's doing.
func notWorldReadable(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s was not created: %v", filepath.Base(path), err)
		return
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("%s is %v: readable or writable by every user", filepath.Base(path), fi.Mode().Perm())
	}
}

// The files auditpipe creates hold audit records, cursors or what was
// rejected: none may be world-readable. The database audit-append creates
// (with its -wal and -shm), the ack FIFOs (audit-ack and audit-ship),
// quarantine files, metrics textfiles, audit-verify's report and the file
// sink's archive.
func TestCreatedFilesNotWorldReadable(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	db, recs := records(t, dir, 30)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if _, err := os.Stat(db + suffix); err == nil || suffix == "" {
			notWorldReadable(t, db+suffix)
		}
	}

	// audit-ship: its FIFO, quarantine file and metrics textfile.
	hec := hecfake.New(hecfake.Options{Tokens: []string{secret}, Poison: func(e *hecfake.Event) bool {
		return strings.Contains(e.Event, `"seq":5,`)
	}})
	defer hec.Close()
	fifo := filepath.Join(dir, "acks.fifo")
	q := filepath.Join(dir, "poison.ndjson")
	shipProm := filepath.Join(dir, "ship.prom")
	ackProm := filepath.Join(dir, "ack.prom")
	env := []string{"SEC_TEST_CRED=" + secret}
	r := exe(t, env, recs, time.Minute, "audit-ship", "--kind", "splunk", "--url", hec.URL, "--token", "env:SEC_TEST_CRED",
		"--exporter", "splunk:sec", "--acks", fifo, "--quarantine", q, "--metrics-file", shipProm, "--quiet", "--drain-timeout", "1s")
	// Nobody reads the FIFO here: the acks are not handed over (exit 8).
	if r.code != 8 {
		t.Fatalf("audit-ship: exit %d, want 8 (no audit-ack on the FIFO)\n%s", r.code, r.stderr)
	}
	notWorldReadable(t, fifo)
	notWorldReadable(t, q)
	notWorldReadable(t, shipProm)

	// audit-ack: its own FIFO and textfile.
	ackFIFO := filepath.Join(dir, "ack2.fifo")
	r = exe(t, nil, "", 2*time.Second, "audit-ack", "--db", db, "--exporter", "splunk:sec", "--fifo", ackFIFO, "--metrics-file", ackProm, "--quiet")
	_ = r // it reads the FIFO until stopped: the timeout ends it; the files exist from the start
	notWorldReadable(t, ackFIFO)

	// audit-ack from stdin, with a metrics textfile.
	r = exe(t, nil, "", 30*time.Second, "audit-ack", "--db", db, "--exporter", "splunk:sec", "--metrics-file", ackProm, "--quiet")
	if r.code != 0 {
		t.Fatalf("audit-ack: exit %d\n%s", r.code, r.stderr)
	}
	notWorldReadable(t, ackProm)

	// audit-read and audit-verify textfiles, audit-verify's report.
	readProm := filepath.Join(dir, "read.prom")
	if r := exe(t, nil, "", time.Minute, "audit-read", "--db", db, "--metrics-file", readProm, "--quiet"); r.code != 0 {
		t.Fatalf("audit-read: exit %d\n%s", r.code, r.stderr)
	}
	notWorldReadable(t, readProm)
	report := filepath.Join(dir, "verify.json")
	verifyProm := filepath.Join(dir, "verify.prom")
	if r := exe(t, nil, recs, time.Minute, "audit-verify", "--report", report, "--metrics-file", verifyProm, "--quiet"); r.code != 0 {
		t.Fatalf("audit-verify: exit %d\n%s", r.code, r.stderr)
	}
	notWorldReadable(t, report)
	notWorldReadable(t, verifyProm)

	// The file sink: a file, and a directory of per-day files.
	archive := filepath.Join(dir, "archive.ndjson")
	if r := exe(t, nil, recs, time.Minute, "audit-ship", "--kind", "file", "--path", archive, "--acks", "-", "--quiet"); r.code != 0 {
		t.Fatalf("audit-ship --kind file: exit %d\n%s", r.code, r.stderr)
	}
	notWorldReadable(t, archive)
	adir := filepath.Join(dir, "archive")
	if r := exe(t, nil, recs, time.Minute, "audit-ship", "--kind", "file", "--path", adir, "--dir", "--acks", "-", "--quiet"); r.code != 0 {
		t.Fatalf("audit-ship --kind file --dir: exit %d\n%s", r.code, r.stderr)
	}
	filepath.WalkDir(adir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && path != adir {
			notWorldReadable(t, path)
		}
		return nil
	})
}
