package ship

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/sink"
)

func ackN(i int) ack.Ack {
	seq := int64(i + 1)
	q := []int64{seq} // not mergeable: one line per ack
	return ack.Ack{Exporter: "test:x", FirstSeq: seq, LastSeq: seq, LastHash: strings.Repeat("a", 64), Count: 1, Quarantined: q}
}

// TestFIFOAcksFullNeverBlocks: a reader that holds the FIFO open but does
// not read (audit-ack stuck) must not block the shipper; the acks that did
// not fit are held, counted apart from those handed over, and Close
// reports them with exit 8 once its deadline passes.
func TestFIFOAcksFullNeverBlocks(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	var m Metrics
	a, err := NewFIFOAcks(fifo, &syncLog{})
	if err != nil {
		t.Fatal(err)
	}
	a.countHandover(&m)
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
	if !errors.Is(err, ErrAcksNotHandedOver) || exitcode.Of(err) != exitcode.Incomplete {
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
		ack, err := ack.Parse(&p, sc.Bytes())
		if err != nil || ack.LastSeq != i+1 {
			t.Fatalf("line %d: %q: %v", i+1, sc.Text(), err)
		}
	}
}

// TestFIFOAcksNoReader: nobody ever opens the FIFO: Close waits for its
// deadline only, and says which records' acks were not handed over.
func TestFIFOAcksNoReader(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	var m Metrics
	a, err := NewFIFOAcks(fifo, &syncLog{})
	if err != nil {
		t.Fatal(err)
	}
	a.countHandover(&m)
	for i := 0; i < 3; i++ {
		a.Ack(context.Background(), ack.Ack{Exporter: "test:x", FirstSeq: int64(10*i + 1), LastSeq: int64(10*i + 10), LastHash: strings.Repeat("b", 64), Count: 10})
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

// TestReadBatchesDropsMarks: mark lines (audit-read's control lines for
// audit-verify) are dropped wherever they are, counted, never shipped and
// never counted into a batch.
func TestReadBatchesDropsMarks(t *testing.T) {
	rec := func(seq int) string {
		return `{"seq":` + strconv.Itoa(seq) + `,"ts":1,"tenantId":"a","kind":"k","prevHash":"` + strings.Repeat("0", 64) + `","recordHash":"` + strings.Repeat("1", 64) + `","record":{}}`
	}
	hdr := func(id, count int) string {
		return `{"batch":{"id":` + strconv.Itoa(id) + `,"count":` + strconv.Itoa(count) + `,"bytes":10,"firstSeq":1,"lastSeq":2,"intervalMs":5}}`
	}
	mark := `{"mark":{"type":"anchor","seq":0}}`
	for _, tc := range []struct {
		name  string
		lines []string
		marks int64
		recs  []int
	}{
		{"before the first batch", []string{mark, hdr(1, 2), rec(1), rec(2)}, 1, []int{2}},
		{"inside a batch", []string{hdr(1, 2), rec(1), mark, rec(2)}, 1, []int{2}},
		{"between batches", []string{hdr(1, 1), rec(1), mark, mark, hdr(2, 1), rec(2)}, 2, []int{1, 1}},
		{"at the end", []string{hdr(1, 1), rec(1), mark}, 1, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make(chan *Batch, 10)
			var marks atomic.Int64
			err := ReadBatchesMarks(context.Background(), strings.NewReader(strings.Join(tc.lines, "\n")+"\n"), out, 1<<20, &marks)
			close(out)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for b := range out {
				got = append(got, len(b.Records))
				for _, r := range b.Records {
					if framing.IsMark(r.Line) {
						t.Fatalf("a mark in a batch: %s", r.Line)
					}
				}
			}
			if marks.Load() != tc.marks || fmt.Sprint(got) != fmt.Sprint(tc.recs) {
				t.Fatalf("marks %d batches %v, want %d %v", marks.Load(), got, tc.marks, tc.recs)
			}
		})
	}
}

type stoppedWriter struct{ err error }

func (w stoppedWriter) Write(p []byte) (int, error) { return 0, w.err }

// TestAckReaderGoneIsNotAPause: audit-ack (the reader of --acks -) stopped
// first, as Ctrl-C to the whole pipeline does: the acks that could not be
// written are counted as dropped, and the shipper does not call it a pause
// (exit 6 would be a false alarm); after a stop it is a clean stop, after a
// plain broken pipe it is that pipe.
func TestAckReaderGoneIsNotAPause(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"stopped", exitcode.ErrStopped, exitcode.OK},
		{"broken pipe", &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}, exitcode.Pipe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) { return ok(recs), nil }}
			var m Metrics
			sh := New(fs, Options{Inflight: 1, Acks: NewWriterAcks(stoppedWriter{tc.err}), Metrics: &m, Exporter: "test:x"})
			in := make(chan *Batch, 3)
			for _, b := range mkBatches(3, 4) {
				in <- b
			}
			close(in)
			err := sh.Run(context.Background(), in)
			if exitcode.Of(err) != tc.code || errors.Is(err, ErrPaused) {
				t.Fatalf("err %v (exit %d), want exit %d and no pause", err, exitcode.Of(err), tc.code)
			}
			if m.AcksDropped.Load() != 12 || m.AckedRecords.Load() != 0 || m.Paused.Load() != 0 {
				t.Fatalf("dropped %d handed %d paused %d", m.AcksDropped.Load(), m.AckedRecords.Load(), m.Paused.Load())
			}
		})
	}
}

// TestFIFOAcksHandedOverWhenReaderComes: acks held while no audit-ack
// reads go out when one comes back, without waiting for the next ack (the
// log may be quiet).
func TestFIFOAcksHandedOverWhenReaderComes(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	var m Metrics
	a, err := NewFIFOAcks(fifo, &syncLog{})
	if err != nil {
		t.Fatal(err)
	}
	a.countHandover(&m)
	if err := a.Ack(context.Background(), ack.Ack{Exporter: "test:x", FirstSeq: 1, LastSeq: 5, LastHash: strings.Repeat("c", 64), Count: 5}); err != nil {
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

// TestAcksSayWhatTheRunDelivered: each ack carries "since" (the first seq
// the shipper received in this run, here 31: it started from cursor 30)
// and "sinceCount" (every record acked in the run so far), so that an
// audit-ack restarted after losing acks it had read (killed -9) can take
// the next ones without calling the gap forged.
func TestAcksSayWhatTheRunDelivered(t *testing.T) {
	bs := mkBatches(4, 5)
	for _, b := range bs {
		for i := range b.Records {
			b.Records[i].Seq += 30
		}
	}
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) { return ok(recs), nil }}
	acks, _, err := run(t, fs, Options{Inflight: 3}, bs)
	if err != nil {
		t.Fatal(err)
	}
	if len(acks.acks) != 4 {
		t.Fatalf("%d acks, want 4", len(acks.acks))
	}
	for i, a := range acks.acks {
		if a.FirstSeq != int64(31+5*i) || a.Since != 31 || a.SinceCount != int64(5*(i+1)) {
			t.Errorf("ack %d: firstSeq %d since %d sinceCount %d, want %d, 31, %d", i, a.FirstSeq, a.Since, a.SinceCount, 31+5*i, 5*(i+1))
		}
		if err := a.Validate(); err != nil {
			t.Errorf("ack %d: %v", i, err)
		}
	}
	// A batch given again (a replayed archive holding it twice) adds
	// nothing to the count: it never claims more distinct records.
	bs = mkBatches(3, 5)
	again := &Batch{ID: 9, Records: append([]sink.Record(nil), bs[0].Records...)}
	bs = []*Batch{bs[0], bs[1], again, bs[2]}
	acks, _, err = run(t, fs, Options{Inflight: 1}, bs)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, a := range acks.acks {
		got = append(got, a.Since, a.SinceCount)
	}
	if want := []int64{1, 5, 1, 10, 1, 10, 1, 15}; !reflect.DeepEqual(got, want) {
		t.Errorf("since, sinceCount of each ack: %v, want %v", got, want)
	}
}

// TestFIFOAcksMergedKeepSince: acks held while nobody reads are merged
// into one: it keeps the run's "since" and the latest "sinceCount".
func TestFIFOAcksMergedKeepSince(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	a, err := NewFIFOAcks(fifo, &syncLog{})
	if err != nil {
		t.Fatal(err)
	}
	h := strings.Repeat("c", 64)
	for _, ack := range []ack.Ack{
		{Exporter: "test:x", FirstSeq: 11, LastSeq: 15, LastHash: h, Count: 5, Since: 11, SinceCount: 5},
		{Exporter: "test:x", FirstSeq: 16, LastSeq: 20, LastHash: h, Count: 5, Since: 11, SinceCount: 10},
	} {
		if err := a.Ack(context.Background(), ack); err != nil {
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
	got, err := ack.Parse(nil, bytes.TrimSpace(buf[:n]))
	if err != nil {
		t.Fatal(err)
	}
	want := ack.Ack{Exporter: "test:x", FirstSeq: 11, LastSeq: 20, LastHash: h, Count: 10, Since: 11, SinceCount: 10}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged ack %+v, want %+v", got, want)
	}
}
