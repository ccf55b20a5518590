package progress

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// On a terminal the progress line is drawn.
func TestProgressOnATerminal(t *testing.T) {
	master, slave := openPTY(t)
	if !isTerminal(slave) {
		t.Fatal("a pty slave is not a terminal")
	}
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := master.Read(buf)
		got <- string(buf[:n])
	}()
	p := Start("audit-read", slave, func() Status { return Status{Records: 3, Seq: 3} })
	if p == nil {
		t.Fatal("no progress on a terminal")
	}
	defer p.Stop()
	if s := <-got; s != "\raudit-read: 3 records, 0/s, seq 3" {
		t.Errorf("terminal got %q", s)
	}
}

// One line per terminal: while a stage that takes the terminal (audit-ship)
// draws, a stage that yields it (audit-read, audit-verify) does not draw
// over it; before and after, it draws.
func TestProgressYieldsTheTerminal(t *testing.T) {
	_, slave := openPTY(t)
	// Each stage has its own stderr on the same terminal, as the stages of
	// a pipeline do.
	name := slave.Name()
	openTTY := func() *os.File {
		f, err := os.OpenFile(name, os.O_WRONLY|unix.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	var readOut, shipOut lockedBuf
	read := startProgressOn("audit-read", &readOut, openTTY(), func() Status { return Status{Records: 1} }, 10*time.Millisecond, false)
	defer read.Stop()
	waitFor(t, func() bool { return strings.Contains(readOut.String(), "audit-read: 1 record") }, "audit-read draws while it is alone")
	ship := startProgressOn("audit-ship", &shipOut, openTTY(), func() Status { return Status{Records: 2, Verb: "delivered"} }, 10*time.Millisecond, true)
	waitFor(t, func() bool { return strings.Contains(shipOut.String(), "audit-ship: 2 records delivered") }, "audit-ship takes the terminal")
	time.Sleep(50 * time.Millisecond)
	n := len(readOut.String())
	time.Sleep(100 * time.Millisecond)
	if after := readOut.String(); len(after) != n {
		t.Errorf("audit-read drew while audit-ship held the terminal: %q", after[n:])
	}
	ship.Stop()
	waitFor(t, func() bool { return len(readOut.String()) > n }, "audit-read draws again once audit-ship is done")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
