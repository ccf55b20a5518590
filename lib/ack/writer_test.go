package ack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// counts are the counters lib/ship keeps for a writer (Metrics).
type counts struct{ AckedRecords, LastAckedSeq, AcksHeld atomic.Int64 }

func (m *counts) counters() Counters {
	return Counters{Records: &m.AckedRecords, LastSeq: &m.LastAckedSeq, Held: &m.AcksHeld}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *syncLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func ackN(i int) Ack {
	seq := int64(i + 1)
	q := []int64{seq} // not mergeable: one line per ack
	return Ack{Exporter: "test:x", FirstSeq: seq, LastSeq: seq, LastHash: strings.Repeat("a", 64), Count: 1, Quarantined: q}
}

// TestFIFOWriterFullNeverBlocks: a reader that holds the FIFO open but does
// not read (audit-ack stuck) must not block the shipper; the acks that did
// not fit are held, counted apart from those handed over, and Close
// reports them with exit 8 once its deadline passes.
func TestFIFOWriterFullNeverBlocks(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	var m counts
	a, err := NewFIFOWriter(fifo, &syncLog{})
	if err != nil {
		t.Fatal(err)
	}
	a.Count(m.counters())
	r, err := os.OpenFile(fifo, os.O_RDWR, 0) // a reader that never reads
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const n = 3000 // ~150 bytes each: far more than a FIFO holds
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			if err := a.Ack(context.Background(), ackN(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Ack blocked on a full FIFO")
	}
	handed, held := m.AckedRecords.Load(), m.AcksHeld.Load()
	if handed+held != n || held == 0 || handed == 0 {
		t.Fatalf("handed over %d + held %d, want %d with some of each", handed, held, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = a.Close(ctx)
	if !errors.Is(err, ErrNotHandedOver) || exitcode.Of(err) != exitcode.Incomplete {
		t.Fatalf("Close: %v (exit %d), want acks not handed over, exit 8", err, exitcode.Of(err))
	}
	if !strings.Contains(err.Error(), "seq ") || !strings.Contains(err.Error(), "shipped again") {
		t.Fatalf("Close: %v", err)
	}
	// What was handed over is whole lines, in order.
	r.SetReadDeadline(time.Now().Add(time.Second))
	sc := bufio.NewScanner(r)
	for i := int64(0); i < handed; i++ {
		if !sc.Scan() {
			t.Fatalf("line %d: %v", i+1, sc.Err())
		}
		var p fastjson.Parser
		k, err := Parse(&p, sc.Bytes())
		if err != nil || k.LastSeq != i+1 {
			t.Fatalf("line %d: %q: %v", i+1, sc.Text(), err)
		}
	}
}

// TestFIFOWriterNoReader: nobody ever opens the FIFO: Close waits for its
// deadline only, and says which records' acks were not handed over.
func TestFIFOWriterNoReader(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	var m counts
	a, err := NewFIFOWriter(fifo, &syncLog{})
	if err != nil {
		t.Fatal(err)
	}
	a.Count(m.counters())
	for i := 0; i < 3; i++ {
		a.Ack(context.Background(), Ack{Exporter: "test:x", FirstSeq: int64(10*i + 1), LastSeq: int64(10*i + 10), LastHash: strings.Repeat("b", 64), Count: 10})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = a.Close(ctx)
	if exitcode.Of(err) != exitcode.Incomplete || !strings.Contains(err.Error(), "30 delivered record(s), seq 1..30") {
		t.Fatalf("Close: %v (exit %d)", err, exitcode.Of(err))
	}
	if m.AckedRecords.Load() != 0 || m.AcksHeld.Load() != 30 {
		t.Fatalf("handed %d held %d", m.AckedRecords.Load(), m.AcksHeld.Load())
	}
}

// TestFIFOWriterHandedOverWhenReaderComes: acks held while no audit-ack
// reads go out when one comes back, without waiting for the next ack (the
// log may be quiet).
func TestFIFOWriterHandedOverWhenReaderComes(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	var m counts
	a, err := NewFIFOWriter(fifo, &syncLog{})
	if err != nil {
		t.Fatal(err)
	}
	a.Count(m.counters())
	if err := a.Ack(context.Background(), Ack{Exporter: "test:x", FirstSeq: 1, LastSeq: 5, LastHash: strings.Repeat("c", 64), Count: 5}); err != nil {
		t.Fatal(err)
	}
	if m.AcksHeld.Load() != 5 {
		t.Fatalf("held %d", m.AcksHeld.Load())
	}
	r, err := os.OpenFile(fifo, os.O_RDWR, 0) // audit-ack comes back
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	deadline := time.Now().Add(5 * time.Second)
	for m.AckedRecords.Load() != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("held acks not handed over: handed %d held %d", m.AckedRecords.Load(), m.AcksHeld.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFIFOWriterMergedKeepSince: acks held while nobody reads are merged
// into one: it keeps the run's "since" and the latest "sinceCount".
func TestFIFOWriterMergedKeepSince(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	a, err := NewFIFOWriter(fifo, &syncLog{})
	if err != nil {
		t.Fatal(err)
	}
	h := strings.Repeat("c", 64)
	for _, k := range []Ack{
		{Exporter: "test:x", FirstSeq: 11, LastSeq: 15, LastHash: h, Count: 5, Since: 11, SinceCount: 5},
		{Exporter: "test:x", FirstSeq: 16, LastSeq: 20, LastHash: h, Count: 5, Since: 11, SinceCount: 10},
	} {
		if err := a.Ack(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	r, err := os.OpenFile(fifo, os.O_RDWR, 0) // audit-ack comes back
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := r.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(nil, bytes.TrimSpace(buf[:n]))
	if err != nil {
		t.Fatal(err)
	}
	want := Ack{Exporter: "test:x", FirstSeq: 11, LastSeq: 20, LastHash: h, Count: 10, Since: 11, SinceCount: 10}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged ack %+v, want %+v", got, want)
	}
}
