package exportlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

func TestFileName(t *testing.T) {
	for _, c := range []struct{ base, exp, want string }{
		{"audit.db", "splunk:prod", "audit.db.splunk:prod.lock"},
		{"audit.db", "file:a/b c", "audit.db.file:a%2Fb%20c.lock"},
		{"audit.db", "../x", "audit.db.%2E.%2Fx.lock"},
		{"a.db", "é", "a.db.%C3%A9.lock"},
	} {
		if got := FileName(c.base, c.exp); got != c.want {
			t.Errorf("FileName(%q, %q) = %q, want %q", c.base, c.exp, got, c.want)
		}
	}
}

// The same role twice is refused with the usage code, naming the holder's
// pid and the lock file; other roles, other exporters and other databases
// coexist; a released lock is free again.
func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	os.WriteFile(db, nil, 0o600)
	os.WriteFile(filepath.Join(dir, "other.db"), nil, 0o600)
	l1, err := Acquire(db, "", "splunk:prod", Read, "audit-read")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(db, "", "splunk:prod", Read, "audit-read")
	var he *HeldError
	if !errors.As(err, &he) || exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("second Read lock: %v (code %d), want a HeldError with code 2", err, exitcode.Of(err))
	}
	for _, want := range []string{fmt.Sprintf("pid %d audit-read", os.Getpid()), filepath.Join(dir, "audit.db.splunk:prod.lock"), "splunk:prod"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message does not name %q:\n%v", want, err)
		}
	}
	others := []*Lock{}
	for _, c := range []struct {
		db, exp string
		role    Role
	}{
		{db, "splunk:prod", Verify},
		{db, "splunk:prod", Ack},
		{db, "splunk:dev", Read},
		{filepath.Join(dir, "other.db"), "splunk:prod", Read},
	} {
		l, err := Acquire(c.db, "", c.exp, c.role, "x")
		if err != nil {
			t.Errorf("%v: %v", c, err)
			continue
		}
		others = append(others, l)
	}
	l1.Close()
	l2, err := Acquire(db, "", "splunk:prod", Read, "audit-read")
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	l2.Close()
	for _, l := range others {
		l.Close()
	}
}

// A read-only directory is never a reason to run without the lock: the
// stage stops with the usage code and names --lock-dir; with --lock-dir the
// lock lives there.
func TestReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root writes into read-only directories: run this test again as
		// nobody, which is what a unit with a read-only directory runs as.
		runAsNobody(t, "TestReadOnlyDir")
		return
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	os.WriteFile(db, nil, 0o600)
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	_, err := Acquire(db, "", "splunk:prod", Ack, "audit-ack")
	if err == nil || exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--lock-dir") {
		t.Fatalf("read-only dir: %v (code %d), want code 2 naming --lock-dir", err, exitcode.Of(err))
	}
	ld := t.TempDir()
	l, err := Acquire(db, ld, "splunk:prod", Ack, "audit-ack")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Path != filepath.Join(ld, "audit.db.splunk:prod.lock") {
		t.Errorf("lock at %s", l.Path)
	}
	if l, err := Acquire(filepath.Join(ld, "none.db"), "", "splunk:prod", Ack, "audit-ack"); l != nil || err != nil {
		t.Errorf("no database: %v %v, want nothing locked and no error", l, err)
	}
	t.Setenv(EnvDir, ld)
	if _, err := Acquire(db, "", "splunk:prod", Ack, "audit-ack"); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "in use") {
		t.Errorf("%s=%s: %v, want the lock held there", EnvDir, ld, err)
	}
	t.Setenv(EnvDir, "")
	if _, err := Acquire(db, filepath.Join(ld, "missing"), "splunk:prod", Ack, "audit-ack"); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("missing --lock-dir: %v", err)
	}
}

// The kernel releases the lock of a process killed with SIGKILL.
func TestReleasedOnDeath(t *testing.T) {
	if os.Getenv("EXPORTLOCK_CHILD") != "" {
		if _, err := Acquire(os.Getenv("EXPORTLOCK_CHILD"), "", "e:x", Ack, "child"); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	db := filepath.Join(t.TempDir(), "audit.db")
	os.WriteFile(db, nil, 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^TestReleasedOnDeath$")
	cmd.Env = append(os.Environ(), "EXPORTLOCK_CHILD="+db)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.Contains(string(buf[:n]), "locked") {
		cmd.Process.Kill()
		t.Fatalf("child: %q", buf[:n])
	}
	_, err := Acquire(db, "", "e:x", Ack, "parent")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d child", cmd.Process.Pid)) {
		t.Errorf("while the child holds it: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(db, "", "e:x", Ack, "parent")
	if err != nil {
		t.Fatalf("after the holder's death: %v", err)
	}
	l.Close()
}

// AUDITPIPE_LOCK_DIR is the lock directory of a stage without --lock-dir,
// so that every pipeline on a host agrees on one.
func TestEnvDir(t *testing.T) {
	dir, ld := t.TempDir(), t.TempDir()
	db := filepath.Join(dir, "audit.db")
	os.WriteFile(db, nil, 0o600)
	t.Setenv(EnvDir, ld)
	l, err := Acquire(db, "", "splunk:prod", Read, "audit-read")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Path != filepath.Join(ld, "audit.db.splunk:prod.lock") {
		t.Errorf("lock at %s", l.Path)
	}
	if _, err := Acquire(db, "", "splunk:prod", Read, "audit-read"); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("second holder: %v", err)
	}
	t.Setenv(EnvDir, filepath.Join(ld, "missing"))
	if _, err := Acquire(db, "", "splunk:prod", Ack, "audit-ack"); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), EnvDir) {
		t.Errorf("missing %s: %v", EnvDir, err)
	}
}

// A lock file that cannot be opened read-write (here a directory in its
// place; for a user, a read-only directory) stops the stage: exit 2, naming
// the file and --lock-dir. (TestReadOnlyDir needs a non-root user.)
func TestCannotOpen(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	os.WriteFile(db, nil, 0o600)
	os.Mkdir(PathFor(db, "", "e:x"), 0o700)
	_, err := Acquire(db, "", "e:x", Read, "audit-read")
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--lock-dir") || !strings.Contains(err.Error(), PathFor(db, "", "e:x")) {
		t.Errorf("err %v (exit %d)", err, exitcode.Of(err))
	}
}

// Two pipelines started at once: the one whose audit-read lost lets go of
// the verify/ack locks it won within moments, and the winner's stages,
// waiting for them, then run. A lock held past the wait is still refused,
// and a stop signal ends the wait.
func TestAcquireFollower(t *testing.T) {
	db := filepath.Join(t.TempDir(), "audit.db")
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other, err := Acquire(db, "", "file:x", Ack, "audit-ack")
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); other.Close() }()
	var logs []string
	l, err := AcquireFollower(context.Background(), db, "", "file:x", Ack, "audit-ack", 5*time.Second, func(s string) { logs = append(logs, s) })
	if err != nil {
		t.Fatalf("released after 300ms, waited up to 5s: %v", err)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "waiting up to 5s") {
		t.Errorf("logs %q, want one line saying it waits", logs)
	}

	// Held past the wait: refused as Acquire refuses, naming the holder.
	start := time.Now()
	_, err = AcquireFollower(context.Background(), db, "", "file:x", Ack, "audit-ack", 200*time.Millisecond, nil)
	var held *HeldError
	if !errors.As(err, &held) || exitcode.Of(err) != exitcode.Usage || !strings.Contains(held.Holder, "audit-ack") {
		t.Fatalf("held past the wait: %v (exit %d), want a HeldError naming the holder", err, exitcode.Of(err))
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("refused after %v, before the wait of 200ms", d)
	}

	// A stop ends the wait at once.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	_, err = AcquireFollower(ctx, db, "", "file:x", Ack, "audit-ack", time.Minute, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("stopped while waiting: %v, want context.Canceled", err)
	}
	l.Close()
}

// runAsNobody runs the test named in a copy of this test binary as uid and
// gid 65534 and fails t if it does not pass there.
func runAsNobody(t *testing.T, name string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "exportlock-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "exportlock.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^"+name+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=/tmp"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("%s as nobody: %v\n%s", name, err, out)
	}
}

func TestHeld(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	os.WriteFile(db, nil, 0o600)
	r, err := Acquire(db, "", "splunk:prod", Read, "audit-read")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Held(Ack) || r.Held(Read) {
		t.Fatalf("Held before anyone else holds a role: Ack %v, Read (its own) %v", r.Held(Ack), r.Held(Read))
	}
	a, err := Acquire(db, "", "splunk:prod", Ack, "audit-ack")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Held(Ack) {
		t.Error("Held(Ack) = false while an audit-ack holds it")
	}
	if r.Held(Verify) {
		t.Error("Held(Verify) = true: nobody holds it")
	}
	a.Close()
	if r.Held(Ack) {
		t.Error("Held(Ack) = true after the holder closed it")
	}
	var none *Lock
	if none.Held(Ack) {
		t.Error("a nil Lock holds nothing")
	}
}
