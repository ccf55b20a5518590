//go:build linux

package ndjson

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func pipeSize(t *testing.T, f *os.File) int {
	t.Helper()
	n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSetPipeSize(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	before := pipeSize(t, pw)
	SetPipeSize(pw, 1<<20)
	after := pipeSize(t, pw)
	t.Logf("pipe size %d -> %d (pipe-max-size %d)", before, after, pipeMaxSize())
	want := 1 << 20
	if m := pipeMaxSize(); m > 0 && m < want && os.Geteuid() != 0 {
		want = m
	}
	if after < want {
		t.Errorf("pipe size %d after SetPipeSize(1 MiB), want >= %d", after, want)
	}

	// Above the maximum: falls back to the maximum (or more, as root).
	SetPipeSize(pr, 1<<30)
	if got := pipeSize(t, pr); got < min(pipeMaxSize(), 1<<30) {
		t.Errorf("pipe size %d after asking for 1 GiB, want at least pipe-max-size %d", got, pipeMaxSize())
	}

	// Not a pipe: nothing happens, nothing fails.
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	SetPipeSize(f, 1<<20)
	SetPipeSize(nil, 1<<20)
	if _, err := f.Write([]byte("ok")); err != nil {
		t.Errorf("file unusable after SetPipeSize: %v", err)
	}
}
