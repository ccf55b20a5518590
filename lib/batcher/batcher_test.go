package batcher

import (
	"bytes"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

const ms = time.Millisecond

// machine is a Batcher on a buffer, driven by explicit times.
type machine struct {
	t   *testing.T
	b   *Batcher
	out *bytes.Buffer
	pos int // bytes of out already returned by batches
}

func newMachine(t *testing.T, lim Limits) *machine {
	t.Helper()
	out := new(bytes.Buffer)
	b, err := NewBatcher(TextOut(ndjson.NewWriter(out, 0)), lim)
	if err != nil {
		t.Fatal(err)
	}
	return &machine{t: t, b: b, out: out}
}

func (m *machine) add(at time.Duration, seq int64) {
	m.t.Helper()
	if err := m.b.Add(t0.Add(at), []byte(rec(seq, 0)), seq); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) tick(at time.Duration) {
	m.t.Helper()
	if err := m.b.Tick(t0.Add(at)); err != nil {
		m.t.Fatal(err)
	}
}

// batches returns the headers written since the last call.
func (m *machine) batches() []framing.Header {
	m.t.Helper()
	var hs []framing.Header
	for _, l := range bytes.Split(m.out.Bytes()[m.pos:], []byte("\n")) {
		if h, ok, err := framing.ParseHeader(nil, l); ok {
			if err != nil {
				m.t.Fatal(err)
			}
			hs = append(hs, h)
		}
	}
	m.pos = m.out.Len()
	return hs
}

func (m *machine) wantInterval(want time.Duration) {
	m.t.Helper()
	if got := m.b.Interval(); got != want {
		m.t.Fatalf("interval %v, want %v", got, want)
	}
}

func (m *machine) wantDeadline(want time.Duration, ok bool) {
	m.t.Helper()
	d, got := m.b.Deadline()
	if got != ok || ok && !d.Equal(t0.Add(want)) {
		m.t.Fatalf("deadline %v (%v), want t0+%v (%v)", d.Sub(t0), got, want, ok)
	}
}

var lim10 = Limits{MaxCount: 10, MaxBytes: 1 << 20, MinInterval: 50 * ms, MaxInterval: 5 * time.Second}

// A steady fast stream (a record every ms, batches of 10 fill in 10 ms,
// well within the interval) closes every batch full: the interval doubles
// each time up to the max, and every header carries the interval in force.
func TestIntervalWidensUnderSteadyLoad(t *testing.T) {
	m := newMachine(t, lim10)
	want := []int64{50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000}
	for i := range int64(100) {
		m.add(time.Duration(i)*ms, i+1)
	}
	hs := m.batches()
	if len(hs) != len(want) {
		t.Fatalf("%d batches, want %d", len(hs), len(want))
	}
	for i, h := range hs {
		if h.IntervalMs != want[i] || h.Count != 10 || h.FirstSeq != int64(10*i+1) || h.LastSeq != int64(10*i+10) {
			t.Errorf("batch %d: %+v, want 10 records from seq %d at interval %d", i+1, h, 10*i+1, want[i])
		}
	}
	m.wantInterval(5 * time.Second)
	if s := m.b.Stats(); s.Closed[ClosedFull] != 10 || s.Records != 100 || s.Batches != 10 {
		t.Errorf("stats %+v", s)
	}
}

// When the input drains, the interval collapses once it has been quiet for
// min-interval, and the open batch then closes at its first record's age
// of min-interval instead of waiting out the wide interval.
func TestIntervalCollapsesWhenQueueDrains(t *testing.T) {
	m := newMachine(t, lim10)
	for i := range int64(30) {
		m.add(time.Duration(i)*ms, i+1)
	}
	m.batches()
	m.wantInterval(400 * ms)
	m.add(30*ms, 31) // a batch opens at t0+30ms; input quiet from then on
	m.wantDeadline(80*ms, true)
	m.tick(79 * ms)
	m.wantInterval(400 * ms) // not quiet long enough yet
	if hs := m.batches(); len(hs) != 0 {
		t.Fatalf("closed early: %+v", hs)
	}
	m.tick(80 * ms) // quiet for 50ms: collapse; the batch is 50ms old: close by age
	m.wantInterval(50 * ms)
	hs := m.batches()
	if len(hs) != 1 || hs[0].Count != 1 || hs[0].IntervalMs != 50 {
		t.Fatalf("batches %+v, want the lone record at interval 50", hs)
	}
	m.wantDeadline(0, false) // nothing open, interval at min: no timer
	if s := m.b.Stats(); s.Closed[ClosedAge] != 1 {
		t.Errorf("stats %+v", s)
	}
}

// Idle with no batch open still collapses the interval (so the gauge does
// not claim sustained load while nothing happens).
func TestIntervalCollapsesWhenIdleWithoutBatch(t *testing.T) {
	m := newMachine(t, lim10)
	for i := range int64(20) {
		m.add(0, i+1)
	}
	m.wantInterval(200 * ms)
	m.wantDeadline(50*ms, true)
	m.tick(50 * ms)
	m.wantInterval(50 * ms)
	m.wantDeadline(0, false)
}

// A batch closed by age less than half full means light traffic: collapse.
// One at least half full keeps the interval. (The records trickle in less
// than min-interval apart, or the quiet rule would collapse the interval
// first.)
func TestAgeCloseHalfCapacityRule(t *testing.T) {
	m := newMachine(t, Limits{MaxCount: 10, MaxBytes: 1 << 20, MinInterval: 50 * ms, MaxInterval: 5 * time.Second})
	for i := range int64(20) { // two full batches: interval 200ms
		m.add(0, i+1)
	}
	m.batches()
	// Five records of ten (half) over 200ms: the batch closes by age at
	// 200ms and the interval stays.
	for i := range int64(5) {
		m.add(time.Duration(i)*40*ms, 21+i)
		m.tick(time.Duration(i)*40*ms + 39*ms)
	}
	m.wantDeadline(200*ms, true)
	m.tick(199 * ms)
	m.wantDeadline(200*ms, true)
	m.tick(200 * ms)
	hs := m.batches()
	if len(hs) != 1 || hs[0].Count != 5 || hs[0].IntervalMs != 200 {
		t.Fatalf("batches %+v", hs)
	}
	m.wantInterval(200 * ms)

	// Five records of a hundred: under half, collapse.
	m = newMachine(t, Limits{MaxCount: 100, MaxBytes: 1 << 20, MinInterval: 50 * ms, MaxInterval: 5 * time.Second})
	for i := range int64(200) {
		m.add(0, i+1)
	}
	m.batches()
	m.wantInterval(200 * ms)
	for i := range int64(5) {
		m.add(200*ms+time.Duration(i)*40*ms, 201+i)
		m.tick(200*ms + time.Duration(i)*40*ms + 39*ms)
	}
	m.tick(400 * ms)
	hs = m.batches()
	if len(hs) != 1 || hs[0].Count != 5 || hs[0].IntervalMs != 200 {
		t.Fatalf("batches %+v", hs)
	}
	m.wantInterval(50 * ms)
}

// Capacity is count and bytes: a batch under half by count but at least
// half by bytes is not "less than half its capacity", and keeps the
// interval.
func TestAgeCloseHalfBytes(t *testing.T) {
	L := int64(len(rec(1, 0)))
	m := newMachine(t, Limits{MaxCount: 100, MaxBytes: 4 * L, MinInterval: 50 * ms, MaxInterval: time.Second})
	for i := range int64(4) { // full by bytes: 100ms
		m.add(0, i+1)
	}
	m.add(200*ms, 5)
	m.add(240*ms, 6)
	m.add(280*ms, 7) // 3 of 100 records, 3L of 4L bytes
	m.tick(299 * ms)
	m.wantInterval(100 * ms)
	m.tick(300 * ms)
	hs := m.batches()
	if len(hs) != 2 || hs[1].Count != 3 || hs[1].IntervalMs != 100 {
		t.Fatalf("batches %+v", hs)
	}
	m.wantInterval(100 * ms)
}

// When the quiet rule and the age of the open batch fall due together, the
// collapse comes first and the batch closes under the new interval.
func TestQuietThenAge(t *testing.T) {
	L := int64(len(rec(1, 0)))
	m := newMachine(t, Limits{MaxCount: 100, MaxBytes: 2 * L, MinInterval: 50 * ms, MaxInterval: time.Second})
	m.add(0, 1)
	m.add(0, 2) // full by bytes: 100ms
	m.add(0, 3)
	m.wantDeadline(50*ms, true) // quiet rule
	m.tick(50 * ms)
	hs := m.batches()
	if len(hs) != 2 || hs[1].Count != 1 || hs[1].IntervalMs != 50 {
		t.Fatalf("batches %+v", hs)
	}
	m.wantInterval(50 * ms)
}

// Add closes a batch whose age is up before adding to it, even if Tick was
// not called in time (the loop was busy).
func TestAddClosesAgedBatch(t *testing.T) {
	m := newMachine(t, lim10)
	m.add(0, 1)
	m.add(60*ms, 2)
	hs := m.batches()
	if len(hs) != 1 || hs[0].Count != 1 || hs[0].LastSeq != 1 {
		t.Fatalf("batches %+v", hs)
	}
	m.wantDeadline(110*ms, true)
}

// A record longer than MaxBytes goes alone, closing the batch before it.
func TestOversizeRecord(t *testing.T) {
	L := int64(len(rec(1, 0)))
	m := newMachine(t, Limits{MaxCount: 10, MaxBytes: L, MinInterval: 50 * ms, MaxInterval: time.Second})
	if err := m.b.Add(t0, []byte(rec(1, 0)[:L-1]+"}"), 1); err != nil { // just under
		t.Fatal(err)
	}
	if err := m.b.Add(t0, []byte(rec(2, int(3*L))), 2); err != nil {
		t.Fatal(err)
	}
	hs := m.batches()
	if len(hs) != 2 || hs[0].Count != 1 || hs[1].Count != 1 || hs[1].Bytes <= L {
		t.Fatalf("batches %+v", hs)
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, l := range []Limits{
		{MaxCount: 0, MaxBytes: 1, MinInterval: ms, MaxInterval: ms},
		{MaxCount: 1, MaxBytes: 0, MinInterval: ms, MaxInterval: ms},
		{MaxCount: 1, MaxBytes: 1, MinInterval: ms / 2, MaxInterval: ms},
		{MaxCount: 1, MaxBytes: 1, MinInterval: 2 * ms, MaxInterval: ms},
	} {
		if _, err := NewBatcher(nil, l); err == nil {
			t.Errorf("NewBatcher(%+v) accepted", l)
		}
	}
}
