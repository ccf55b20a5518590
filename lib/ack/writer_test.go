package ack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// TestEnsureFIFO: a FIFO is created 0600 where there is nothing, an
// existing FIFO is used, anything else is refused naming what it is and
// the fix.
func TestEnsureFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "made.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"absent: created", filepath.Join(dir, "new.fifo"), ""},
		{"a FIFO already", fifo, ""},
		{"a regular file", file, "is a regular file, not a FIFO (the channel audit-ack reads acks from): remove it or give a path that does not exist yet"},
		{"a directory", dir, "is a directory, not a FIFO"},
		{"a character device", "/dev/null", "is a character device, not a FIFO"},
		{"no parent", filepath.Join(dir, "no", "x.fifo"), "create FIFO " + filepath.Join(dir, "no", "x.fifo")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := EnsureFIFO(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if _, err := NewFIFOWriter(tt.path, io.Discard); err == nil {
					t.Fatalf("NewFIFOWriter took it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(tt.path)
			if err != nil || fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o600 {
				t.Fatalf("not a 0600 FIFO: %v %v", fi.Mode(), err)
			}
		})
	}
}

// TestFIFOWriterLines: what a reader finds in the FIFO, byte for byte,
// for acks written while it reads, and for acks held (no reader) then
// handed over: held acks merge into one when they may (same exporter and
// chain, none quarantined), and never otherwise.
func TestFIFOWriterLines(t *testing.T) {
	h1, h2, h3 := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)
	a := func(first, last int64, hash string, q ...int64) Ack {
		return Ack{Exporter: "s:p", FirstSeq: first, LastSeq: last, LastHash: hash, Count: int(last - first + 1), Quarantined: q}
	}
	withChain := func(k Ack, c string) Ack { k.Chain = c; return k }
	withExporter := func(k Ack, e string) Ack { k.Exporter = e; return k }
	line := func(k Ack) string { return string(Append(nil, k)) + "\n" }
	tests := []struct {
		name   string
		held   bool // written with no reader: held, then handed over at Close
		acks   []Ack
		want   string
		merged int // lines expected
	}{
		{"read as written", false, []Ack{a(1, 2, h1), a(3, 4, h2)}, line(a(1, 2, h1)) + line(a(3, 4, h2)), 2},
		{"held and merged", true, []Ack{a(1, 2, h1), a(3, 4, h2), a(5, 9, h3)}, line(a(1, 9, h3)), 1},
		{"quarantined never merged", true, []Ack{a(1, 2, h1), a(3, 4, h2, 4), a(5, 5, h3)}, line(a(1, 2, h1)) + line(a(3, 4, h2, 4)) + line(a(5, 5, h3)), 3},
		{"other exporter never merged", true, []Ack{a(1, 2, h1), withExporter(a(3, 4, h2), "s:q")}, line(a(1, 2, h1)) + line(withExporter(a(3, 4, h2), "s:q")), 2},
		{"other chain never merged", true, []Ack{withChain(a(1, 2, h1), "c1"), withChain(a(3, 4, h2), "c2"), withChain(a(5, 6, h3), "c2")},
			line(withChain(a(1, 2, h1), "c1")) + line(withChain(a(3, 6, h3), "c2")), 2},
		{"chain and no chain never merged", true, []Ack{a(1, 2, h1), withChain(a(3, 4, h2), "c")}, line(a(1, 2, h1)) + line(withChain(a(3, 4, h2), "c")), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "acks.fifo")
			var m counts
			w, err := NewFIFOWriter(fifo, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			w.Count(m.counters())
			var r *os.File
			open := func() {
				if r, err = os.OpenFile(fifo, os.O_RDWR, 0); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
			}
			if !tt.held {
				open()
			}
			var total int64
			for _, k := range tt.acks {
				if err := w.Ack(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				total += int64(k.Count)
			}
			if tt.held {
				if m.AcksHeld.Load() != total || m.AckedRecords.Load() != 0 {
					t.Fatalf("no reader: held %d handed %d, want %d held", m.AcksHeld.Load(), m.AckedRecords.Load(), total)
				}
				if w.Pending() != tt.merged {
					t.Fatalf("%d acks pending, want %d", w.Pending(), tt.merged)
				}
				open()
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1<<16)
			r.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := r.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:n]); got != tt.want {
				t.Fatalf("FIFO holds\n%s\nwant\n%s", got, tt.want)
			}
			if w.Written != int64(tt.merged) || m.AckedRecords.Load() != total || m.AcksHeld.Load() != 0 {
				t.Fatalf("written %d handed %d held %d, want %d lines, %d handed, 0 held", w.Written, m.AckedRecords.Load(), m.AcksHeld.Load(), tt.merged, total)
			}
			if m.LastAckedSeq.Load() != tt.acks[len(tt.acks)-1].LastSeq {
				t.Fatalf("last acked seq %d", m.LastAckedSeq.Load())
			}
		})
	}
}

// TestFIFOWriterLongLine: an ack over PIPE_BUF (thousands of quarantined
// seqs) may be cut by the FIFO; its end follows, so the reader gets it
// whole.
func TestFIFOWriterLongLine(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	w, err := NewFIFOWriter(fifo, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	q := make([]int64, 3000)
	for i := range q {
		q[i] = int64(i + 1)
	}
	k := Ack{Exporter: "s:p", FirstSeq: 1, LastSeq: 3000, LastHash: strings.Repeat("f", 64), Count: 3000, Quarantined: q}
	want := string(Append(nil, k)) + "\n"
	if len(want) <= 4096 {
		t.Fatalf("line of %d bytes is not over PIPE_BUF", len(want))
	}
	done := make(chan []byte)
	go func() {
		br := bufio.NewReader(r)
		b, _ := br.ReadBytes('\n')
		done <- b
	}()
	if err := w.Ack(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if string(got) != want {
			t.Fatalf("read %d bytes, want the %d-byte line whole", len(got), len(want))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long line never arrived whole")
	}
}
