package auditbatch

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/batcher"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/framing"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const ms = time.Millisecond

// fakeClock moves only when Advance is called. Its timers fire (a
// non-blocking send, like a runtime timer) when the clock passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	when   time.Time
	active bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer() Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.when, t.active = t.c.now.Add(d), true
	t.c.fire()
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.active = false
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// fire sends on every due timer. c.mu is held.
func (c *fakeClock) fire() {
	for _, t := range c.timers {
		if t.active && !t.when.After(c.now) {
			t.active = false
			select {
			case t.ch <- t.when:
			default:
			}
		}
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fire()
}

// armed reports whether a timer is waiting for exactly when.
func (c *fakeClock) armed(when time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.active && t.when.Equal(when) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds. It is a synchronisation point, not a
// timing assertion: the 20 s limit only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// rec returns a record line for seq, padded with filler to about size bytes
// (at least the fixed part).
func rec(seq int64, size int) string {
	h := fmt.Sprintf("%064x", seq)
	s := fmt.Sprintf(`{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":{"kind":"tool_call","ts":%d,"tenantId":"acme","tool":"http.get","pad":"%%s"},"prevHash":"%s","recordHash":"%s"}`,
		seq, 1764244800000+seq, 1764244800000+seq, h, h)
	pad := max(size-len(s)+2, 0)
	return fmt.Sprintf(s, strings.Repeat("x", pad))
}

// recs returns record lines for seqs from..to, each followed by "\n".
func recs(from, to int64, size int) string {
	var b strings.Builder
	for s := from; s <= to; s++ {
		b.WriteString(rec(s, size))
		b.WriteByte('\n')
	}
	return b.String()
}

// framed builds the expected output for groups of record lines given
// without their "\n", the interval of each batch in ms.
type group struct {
	iv    int64
	lines []string
}

func framed(groups ...group) string {
	var b bytes.Buffer
	for i, g := range groups {
		h := framing.Header{ID: int64(i + 1), Count: len(g.lines), IntervalMs: g.iv}
		for j, l := range g.lines {
			h.Bytes += int64(len(l))
			seq, err := batcher.RecordSeq(nil, []byte(l))
			if err != nil {
				panic(err)
			}
			if j == 0 {
				h.FirstSeq = seq
			}
			h.LastSeq = seq
		}
		b.Write(framing.AppendHeader(nil, h))
		b.WriteByte('\n')
		for _, l := range g.lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// lines splits s into its lines, without "\n".
func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// runFake runs audit-batch on stdin with a clock that never moves (so no
// batch ever closes by age) and returns stdout, stderr and the exit code.
func runFake(t testing.TB, args []string, stdin string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := RunWith(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, Options{Clock: newFakeClock()})
	code := cli.Report(prog, err, &stderr)
	return stdout.String(), stderr.String(), code
}
