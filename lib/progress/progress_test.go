package progress

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFormatStatus(t *testing.T) {
	for _, c := range []struct {
		s    Status
		rate float64
		want string
	}{
		{Status{}, 0, "audit-read: 0 records, 0/s"},
		{Status{Records: 1234567, Seq: 1234567}, 98765.4, "audit-read: 1,234,567 records, 98,765/s, seq 1234567"},
		{Status{Records: 100, Seq: 100, Head: 1100}, 100, "audit-read: 100 records, 100/s, seq 100 of 1100, 10s left"},
		{Status{Records: 100, Seq: 100, Head: 601100}, 100, "audit-read: 100 records, 100/s, seq 100 of 601100, 1h40m0s left"},
		{Status{Records: 100, Seq: 100, Head: 150}, 1000, "audit-read: 100 records, 1,000/s, seq 100 of 150, <1s left"},
		{Status{Records: 100, Seq: 100, Head: 1100}, 0, "audit-read: 100 records, 0/s, seq 100 of 1100"},
		{Status{Records: 5, Seq: 205, Head: 205}, 3, "audit-read: 5 records, 3/s, seq 205 (at the head)"},
	} {
		if got := formatStatus("audit-read", c.s, c.rate); got != c.want {
			t.Errorf("formatStatus(%+v, %v)\n got %q\nwant %q", c.s, c.rate, got, c.want)
		}
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// The line is redrawn in place, other output clears it first, and Stop
// leaves nothing of it behind.
func TestProgressDrawsAndClears(t *testing.T) {
	var out lockedBuf
	var n atomic.Int64
	p := startProgress("audit-verify", &out, func() Status {
		v := n.Load()
		return Status{Records: v, Seq: v, Head: 1000}
	}, 20*time.Millisecond)
	for i := 0; i < 10; i++ {
		n.Add(50)
		time.Sleep(15 * time.Millisecond)
	}
	w := p.Writer(nil)
	fmt.Fprintf(w, "audit-verify: error prev_link: seq 7\n")
	time.Sleep(50 * time.Millisecond)
	p.Stop()
	p.Stop() // twice is fine
	s := out.String()
	if !strings.HasPrefix(s, "\raudit-verify: ") {
		t.Fatalf("output does not start with a progress line: %q", s)
	}
	if !strings.Contains(s, " of 1000") {
		t.Errorf("no head in %q", s)
	}
	// The message starts on a cleared line: "\r<spaces>\r" right before it.
	i := strings.Index(s, "audit-verify: error")
	if i < 1 || !clearedBefore(s, i) {
		t.Errorf("the message does not start at the beginning of a cleared line: %q", s)
	}
	// Stop cleared the line: the output ends with "\r<spaces>\r".
	if !clearedBefore(s, len(s)) {
		t.Errorf("Stop did not clear the line: %q", s[max(0, len(s)-120):])
	}
}

// clearedBefore reports whether s[:i] ends with "\r", one or more spaces, "\r".
func clearedBefore(s string, i int) bool {
	if i < 1 || s[i-1] != '\r' {
		return false
	}
	j := strings.LastIndex(s[:i-1], "\r")
	return j >= 0 && j+1 < i-1 && strings.Trim(s[j+1:i-1], " ") == ""
}

func TestNoProgressWithoutATerminal(t *testing.T) {
	status := func() Status { return Status{} }
	if p := Start("audit-read", &bytes.Buffer{}, status); p != nil {
		t.Error("progress on a bytes.Buffer")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if p := Start("audit-read", w, status); p != nil {
		p.Stop()
		t.Error("progress on a pipe")
	}
	f, err := os.Create(t.TempDir() + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := Start("audit-read", f, status); p != nil {
		p.Stop()
		t.Error("progress on a file")
	}
	// A nil Progress is harmless.
	var p *Line
	var buf bytes.Buffer
	if p.Writer(&buf) != &buf {
		t.Error("nil Progress: Writer is not stderr itself")
	}
	p.Stop()
}
