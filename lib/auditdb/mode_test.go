package auditdb

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A database the Writer creates is not world-readable, nor are its -wal
// and -shm files, whatever the umask (SQLite alone made them 0644: the
// security tests found every tenant's audit trail readable by any user).
// An existing database keeps its mode.
func TestCreatedDatabaseIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.db")
	ctx := context.Background()
	w, err := OpenWriter(ctx, path, WriterOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Append(ctx, [][]byte{[]byte(`{"kind":"k","tenantId":"t"}`)}, time.Now); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if err != nil {
			t.Fatalf("%s: %v", suffix, err)
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("audit.db%s is %v, want no access for group and others", suffix, m)
		}
	}
	w.Close()

	existing := filepath.Join(dir, "existing.db")
	w, err = OpenWriter(ctx, existing, WriterOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	os.Chmod(existing, 0o640)
	w, err = OpenWriter(ctx, existing, WriterOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if fi, _ := os.Stat(existing); fi.Mode().Perm() != 0o640 {
		t.Errorf("an existing database's mode changed to %v", fi.Mode().Perm())
	}
}
