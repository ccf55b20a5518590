package ship

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/sink"
)

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
			sh := New(fs, Options{Inflight: 1, Acks: ack.NewStreamWriter(stoppedWriter{tc.err}), Metrics: &m, Exporter: "test:x"})
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
