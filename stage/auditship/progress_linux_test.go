package auditship

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestProgressOnATerminal: with stderr on a terminal, audit-ship redraws a
// progress line of the records delivered while it runs, and clears it
// before its summary.
func TestProgressOnATerminal(t *testing.T) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	defer slave.Close()
	var mu sync.Mutex
	var screen strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func(s string) bool { mu.Lock(); defer mu.Unlock(); return strings.Contains(screen.String(), s) }

	in := framed(t, ndjsonOf(makeChain(t, 3, 1_700_000_000_000)), "--siem", "file")
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"--kind", "file", "--path", filepath.Join(t.TempDir(), "a.ndjson"), "--acks", "-"}, pr, io.Discard, slave)
	}()
	pw.Write(in) // then the input stays open: audit-ship waits, its line shows
	deadline := time.Now().Add(5 * time.Second)
	for !seen("\raudit-ship: 3 records delivered, ") {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("no progress line within 5s; the terminal got %q", screen.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !seen("audit-ship: file:default: 3 records delivered") {
		if time.Now().After(deadline) {
			t.Fatalf("no summary")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
