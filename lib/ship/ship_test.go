package ship

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// fakeSink is a func-field mock: each test decides per request.
type fakeSink struct {
	mu    sync.Mutex
	send  func(call int, recs []sink.Record) (sink.Result, error)
	calls int
	got   map[int64]int // seq -> times delivered
}

var _ sink.Sink = (*fakeSink)(nil)

func (f *fakeSink) Send(ctx context.Context, recs []sink.Record) (sink.Result, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	res, err := f.send(call, recs)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.got == nil {
		f.got = map[int64]int{}
	}
	for i, s := range res.Status {
		if s == sink.Delivered || s == sink.Duplicate {
			f.got[recs[i].Seq]++
		}
	}
	return res, err
}
func (f *fakeSink) Check(ctx context.Context) error { return nil }
func (f *fakeSink) Close() error                    { return nil }

func ok(recs []sink.Record) sink.Result { return sink.NewResult(len(recs)).All(sink.Delivered) }

type ackLog struct {
	mu   sync.Mutex
	acks []ack.Ack
}

func (a *ackLog) Ack(ctx context.Context, ack ack.Ack) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acks = append(a.acks, ack)
	return nil
}
func (a *ackLog) Close(ctx context.Context) error { return nil }

func mkBatches(nb, per int) []*Batch {
	var out []*Batch
	seq := int64(1)
	for i := 0; i < nb; i++ {
		b := &Batch{ID: int64(i + 1)}
		for j := 0; j < per; j++ {
			line := []byte(fmt.Sprintf(`{"seq":%d}`, seq))
			b.Records = append(b.Records, sink.Record{Seq: seq, Hash: fmt.Sprintf("%064x", seq), Line: line, Raw: line})
			seq++
		}
		out = append(out, b)
	}
	return out
}

type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func run(t *testing.T, fs *fakeSink, opt Options, bs []*Batch) (*ackLog, *sleeps, error) {
	t.Helper()
	acks := &ackLog{}
	sl := &sleeps{}
	opt.Acks = acks
	if opt.Sleep == nil {
		opt.Sleep = sl.sleep
	}
	opt.Rand = func() float64 { return 0.5 }
	if opt.Exporter == "" {
		opt.Exporter = "test:x"
	}
	sh := New(fs, opt)
	in := make(chan *Batch)
	go func() {
		for _, b := range bs {
			in <- b
		}
		close(in)
	}()
	done := make(chan error)
	go func() { done <- sh.Run(context.Background(), in) }()
	select {
	case err := <-done:
		return acks, sl, err
	case <-time.After(20 * time.Second):
		t.Fatal("shipper did not finish")
	}
	return nil, nil, nil
}

func TestAcksInOrderUnderConcurrency(t *testing.T) {
	// Early batches are slow, later ones fast: acks must still come in order.
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		if recs[0].Seq%20 == 1 {
			time.Sleep(20 * time.Millisecond)
		}
		return ok(recs), nil
	}}
	bs := mkBatches(40, 10)
	acks, _, err := run(t, fs, Options{Inflight: 8}, bs)
	if err != nil {
		t.Fatal(err)
	}
	if len(acks.acks) != 40 {
		t.Fatalf("%d acks, want 40", len(acks.acks))
	}
	for i, a := range acks.acks {
		if a.FirstSeq != int64(i*10+1) || a.LastSeq != int64(i*10+10) || a.Count != 10 || a.LastHash != fmt.Sprintf("%064x", a.LastSeq) {
			t.Fatalf("ack %d = %+v", i, a)
		}
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		if call <= 3 {
			return sink.Result{}, &sink.Error{Class: sink.Retryable, HTTPStatus: 503, Code: 9, RetryAfter: 7 * time.Second}
		}
		return ok(recs), nil
	}}
	acks, sl, err := run(t, fs, Options{Inflight: 1, MinBackoff: time.Second, MaxBackoff: 4 * time.Second}, mkBatches(1, 5))
	if err != nil {
		t.Fatal(err)
	}
	if len(acks.acks) != 1 || len(sl.d) != 3 {
		t.Fatalf("acks %v sleeps %v", acks.acks, sl.d)
	}
	for _, d := range sl.d {
		if d != 7*time.Second {
			t.Fatalf("slept %v, want the Retry-After of 7s", sl.d)
		}
	}
}

func TestBackoffCappedFullJitter(t *testing.T) {
	sh := New(&fakeSink{}, Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Rand: func() float64 { return 0.999999 }})
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		got := sh.backoff(i, 0)
		if got > w*time.Millisecond || got < w*time.Millisecond*99/100 {
			t.Errorf("attempt %d: %v, want just under %v", i, got, w*time.Millisecond)
		}
	}
	sh.opt.Rand = func() float64 { return 0 }
	if got := sh.backoff(5, 0); got != 0 {
		t.Errorf("full jitter must reach 0, got %v", got)
	}
}

func TestPartialResultQuarantinesAndResends(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQuarantine(filepath.Join(dir, "q.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	// HEC invalid-event-number 2: events 0,1 delivered, 2 poison, rest pending.
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		if call == 1 {
			r := sink.NewResult(len(recs))
			r.Status[0], r.Status[1], r.Status[2] = sink.Delivered, sink.Delivered, sink.Poison
			r.Reason[2] = "HTTP 400 code 6: Invalid data format"
			return r, nil
		}
		return ok(recs), nil
	}}
	acks, _, err := run(t, fs, Options{Quarantine: q}, mkBatches(1, 6))
	if err != nil {
		t.Fatal(err)
	}
	if len(acks.acks) != 1 || fmt.Sprint(acks.acks[0].Quarantined) != "[3]" || acks.acks[0].LastSeq != 6 {
		t.Fatalf("acks %+v", acks.acks)
	}
	for seq := int64(1); seq <= 6; seq++ {
		want := 1
		if seq == 3 {
			want = 0
		}
		if fs.got[seq] != want {
			t.Errorf("seq %d delivered %d times, want %d", seq, fs.got[seq], want)
		}
	}
	b, _ := os.ReadFile(q.Path())
	if !strings.Contains(string(b), `"seq":3,"recordHash":"`) || !strings.Contains(string(b), `"line":{"seq":3}`) || !strings.Contains(string(b), "code 6") {
		t.Fatalf("quarantine file: %s", b)
	}
	if fi, _ := os.Stat(q.Path()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("quarantine mode %v", fi.Mode())
	}
}

func TestTooLargeSplitsAndBadRequestBisects(t *testing.T) {
	for _, class := range []sink.Class{sink.TooLarge, sink.BadRequest} {
		t.Run(class.String(), func(t *testing.T) {
			dir := t.TempDir()
			q, _ := OpenQuarantine(filepath.Join(dir, "q"))
			// Any request holding seq 5, or of more than 3 records, fails.
			fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
				for _, r := range recs {
					if r.Seq == 5 || len(recs) > 3 {
						return sink.Result{}, &sink.Error{Class: class, HTTPStatus: 413, Code: -1}
					}
				}
				return ok(recs), nil
			}}
			acks, _, err := run(t, fs, Options{Quarantine: q}, mkBatches(1, 8))
			if err != nil {
				t.Fatal(err)
			}
			if len(acks.acks) != 1 || fmt.Sprint(acks.acks[0].Quarantined) != "[5]" {
				t.Fatalf("acks %+v", acks.acks)
			}
			for seq := int64(1); seq <= 8; seq++ {
				if want := map[bool]int{true: 0, false: 1}[seq == 5]; fs.got[seq] != want {
					t.Errorf("seq %d delivered %d times", seq, fs.got[seq])
				}
			}
		})
	}
}

func TestSelfPauseAfterConsecutiveConfigFailures(t *testing.T) {
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		if recs[0].Seq <= 20 {
			return ok(recs), nil
		}
		return sink.Result{}, &sink.Error{Class: sink.Config, HTTPStatus: 403, Code: 4, Msg: "Invalid token"}
	}}
	acks, sl, err := run(t, fs, Options{Inflight: 1, PauseAfter: 5}, mkBatches(5, 10))
	// A refused configuration stops with the code README gives it: 7.
	if !errors.Is(err, ErrPaused) || exitcode.Of(err) != exitcode.Config {
		t.Fatalf("err %v (code %d), want paused with exit 7", err, exitcode.Of(err))
	}
	// The refusals are spaced by RefusedBackoff (default 1m), so that a
	// rotated token has minutes to land, not the milliseconds of backoff.
	if len(sl.d) != 4 {
		t.Fatalf("%d waits between the 5 refusals, want 4: %v", len(sl.d), sl.d)
	}
	for _, d := range sl.d {
		if d < time.Minute {
			t.Fatalf("wait %v between refusals, want >= 1m: %v", d, sl.d)
		}
	}
	if len(acks.acks) != 2 || acks.acks[1].LastSeq != 20 {
		t.Fatalf("acks %+v: only the two delivered batches may be acked", acks.acks)
	}
	if fs.calls != 2+5 {
		t.Fatalf("%d sends, want 2 good + 5 failed", fs.calls)
	}
}

func TestPoisonWithoutQuarantinePauses(t *testing.T) {
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		r := ok(recs)
		for i := range recs {
			if recs[i].Seq == 13 {
				r.Status[i] = sink.Poison
				r.Reason[i] = "mapper_parsing_exception"
			}
		}
		return r, nil
	}}
	acks, _, err := run(t, fs, Options{Inflight: 1}, mkBatches(3, 5))
	if exitcode.Of(err) != exitcode.Paused || !strings.Contains(err.Error(), "seq 13") {
		t.Fatalf("err %v", err)
	}
	if len(acks.acks) != 2 || acks.acks[1].LastSeq != 10 {
		t.Fatalf("acks %+v", acks.acks)
	}
}

func TestDeliveryResetsConsecutiveCount(t *testing.T) {
	// Four config failures, a success, four more: never five in a row.
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		if call == 5 || call >= 10 {
			return ok(recs), nil
		}
		return sink.Result{}, &sink.Error{Class: sink.Config, HTTPStatus: 401, Code: 3}
	}}
	acks, _, err := run(t, fs, Options{Inflight: 1, PauseAfter: 5}, mkBatches(2, 3))
	if err != nil {
		t.Fatalf("paused too early: %v", err)
	}
	if len(acks.acks) != 2 {
		t.Fatalf("acks %+v", acks.acks)
	}
}

func TestDuplicateCountsAsDelivered(t *testing.T) {
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		return sink.NewResult(len(recs)).All(sink.Duplicate), nil
	}}
	acks, _, err := run(t, fs, Options{}, mkBatches(2, 4))
	if err != nil || len(acks.acks) != 2 {
		t.Fatalf("err %v acks %+v", err, acks.acks)
	}
}

func TestGracefulStopDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		<-release
		return ok(recs), nil
	}}
	acks := &ackLog{}
	sh := New(fs, Options{Exporter: "t:x", Inflight: 2, Acks: acks, DrainTimeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan *Batch, 2)
	for _, b := range mkBatches(2, 3) {
		in <- b
	}
	done := make(chan error)
	go func() { done <- sh.Run(ctx, in) }()
	time.Sleep(50 * time.Millisecond) // both batches are in flight
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(acks.acks) != 2 {
		t.Fatalf("in-flight batches must finish and be acked after a stop request: %+v", acks.acks)
	}
}

// TestConcurrentConfigFailuresCountOnce: a rotated token fails every request
// in flight at once; that is one failure toward the self-pause, not four.
func TestConcurrentConfigFailuresCountOnce(t *testing.T) {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		if call <= 4 {
			mu.Lock()
			arrived++
			if arrived == 4 {
				close(all)
			}
			mu.Unlock()
			<-all // the four fail together
			return sink.Result{}, &sink.Error{Class: sink.Config, HTTPStatus: 401, Code: 3, Msg: "Invalid authorization"}
		}
		return ok(recs), nil
	}}
	// A real (short) backoff, so that the four failures are all counted
	// before any retry succeeds and resets the count.
	pause := func(ctx context.Context, d time.Duration) error { return sleep(ctx, 20*time.Millisecond) }
	acks, _, err := run(t, fs, Options{Inflight: 4, PauseAfter: 3, Sleep: pause}, mkBatches(4, 5))
	if err != nil {
		t.Fatalf("paused after one round of failures: %v", err)
	}
	if len(acks.acks) != 4 {
		t.Fatalf("acks %+v", acks.acks)
	}
}

// Every request attempt, retries included, is timed through RequestDone.
func TestRequestDoneTimesEveryAttempt(t *testing.T) {
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		time.Sleep(15 * time.Millisecond)
		if call == 1 {
			return sink.Result{}, &sink.Error{Class: sink.Retryable, HTTPStatus: 503}
		}
		return ok(recs), nil
	}}
	m := &Metrics{}
	var mu sync.Mutex
	var ds []time.Duration
	m.RequestDone = func(d time.Duration) { mu.Lock(); ds = append(ds, d); mu.Unlock() }
	if _, _, err := run(t, fs, Options{Inflight: 2, Metrics: m}, mkBatches(3, 4)); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 || m.Requests.Load() != 4 {
		t.Fatalf("%d timings for %d requests, want 4 (3 batches, one retried)", len(ds), m.Requests.Load())
	}
	for _, d := range ds {
		if d < 15*time.Millisecond || d > 10*time.Second {
			t.Fatalf("request took %v by RequestDone; the sink slept 15ms", d)
		}
	}
}

// TestGiveUpAfter: an unreachable SIEM is not retried for ever when a
// bound is given: exit 8 (incomplete), the failure and its start named.
func TestGiveUpAfter(t *testing.T) {
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		return sink.Result{}, &sink.Error{Class: sink.Retryable, Code: -1, Msg: "dial tcp 127.0.0.1:1: connect: connection refused"}
	}}
	var log syncLog
	var m Metrics
	start := time.Now()
	_, _, err := run(t, fs, Options{Inflight: 1, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		GiveUpAfter: 100 * time.Millisecond, Sleep: sleep, Log: &log, Metrics: &m}, mkBatches(2, 3))
	if !errors.Is(err, ErrGaveUp) || exitcode.Of(err) != exitcode.Incomplete {
		t.Fatalf("err %v (code %d), want gave up with exit 8", err, exitcode.Of(err))
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "--give-up-after 100ms") {
		t.Fatalf("err %v: should name the failure and the flag", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	if m.Paused.Load() != 0 {
		t.Fatal("giving up is not a self-pause (declaragent_audit_export_paused stays 0)")
	}
	if !strings.Contains(log.String(), "failing since") || !strings.Contains(log.String(), "giving up at") {
		t.Fatalf("log:\n%s", log.String())
	}
}

// TestFailureLoggedEveryInterval: a failing SIEM is logged at least every
// LogEvery (not only at attempts 1, 11, 21), with since when, and
// FailingSince is set while it fails and cleared by a delivery.
func TestFailureLoggedEveryInterval(t *testing.T) {
	var m Metrics
	var since atomic.Int64
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		if call < 8 {
			if call > 1 {
				since.CompareAndSwap(0, m.FailingSince.Load())
			}
			return sink.Result{}, &sink.Error{Class: sink.Retryable, HTTPStatus: 503, Msg: "HTTP 503"}
		}
		return ok(recs), nil
	}}
	var log syncLog
	slow := func(ctx context.Context, d time.Duration) error { return sleep(ctx, 30*time.Millisecond) }
	_, _, err := run(t, fs, Options{Inflight: 1, LogEvery: 50 * time.Millisecond, Sleep: slow, Log: &log, Metrics: &m}, mkBatches(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "failing since"); n < 3 {
		t.Fatalf("%d failure lines over 7 failures 30ms apart with LogEvery 50ms, want >= 3:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), "delivering again after") {
		t.Fatalf("no recovery line:\n%s", log.String())
	}
	if since.Load() == 0 {
		t.Fatal("FailingSince was 0 while failing")
	}
	if m.FailingSince.Load() != 0 {
		t.Fatal("FailingSince not cleared by a delivery")
	}
}

// TestStopEndsRetryWait: a stop request ends a retry wait at once (the
// drain timeout is for requests in flight, not for backoff).
func TestStopEndsRetryWait(t *testing.T) {
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		return sink.Result{}, &sink.Error{Class: sink.Retryable, Code: -1, Msg: "connection refused"}
	}}
	sh := New(fs, Options{Inflight: 1, MinBackoff: time.Hour, MaxBackoff: time.Hour, Rand: func() float64 { return 1 }, Acks: &ackLog{}})
	in := make(chan *Batch, 1)
	in <- mkBatches(1, 2)[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx, in) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if exitcode.Of(err) != exitcode.OK {
			t.Fatalf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still waiting to retry 5s after the stop")
	}
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

// TestAcksPerChain: batches of interleaved chains are acked each under its
// chain (Ack.Chain) with its own claim, in order per chain; a batch of one
// chain that is not delivered holds back only that chain's later acks.
func TestAcksPerChain(t *testing.T) {
	mk := func(id int64, chain string, first, n int64) *Batch {
		b := &Batch{ID: id}
		for s := first; s < first+n; s++ {
			line := []byte(fmt.Sprintf(`{"seq":%d}`, s))
			b.Records = append(b.Records, sink.Record{Seq: s, Hash: fmt.Sprintf("%064x", s), Line: line, Raw: line})
		}
		b.SetChain(chain)
		return b
	}
	bs := []*Batch{mk(1, "A", 1, 3), mk(2, "B", 1, 2), mk(3, "A", 4, 2), mk(4, "B", 3, 1)}
	var seen sync.Map // chain of each record the sink got
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		for _, r := range recs {
			seen.Store(fmt.Sprint(r.Seq, r.Chain), true)
		}
		return ok(recs), nil
	}}
	acks, _, err := run(t, fs, Options{Inflight: 3}, bs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acks.acks {
		got = append(got, fmt.Sprintf("%s:%d-%d since %d/%d", a.Chain, a.FirstSeq, a.LastSeq, a.Since, a.SinceCount))
	}
	want := []string{"A:1-3 since 1/3", "B:1-2 since 1/2", "A:4-5 since 1/5", "B:3-3 since 1/3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("acks %v, want %v", got, want)
	}
	for _, k := range []string{"1A", "5A", "1B", "3B"} {
		if _, ok := seen.Load(k); !ok {
			t.Fatalf("the sink did not get record %s with its chain", k)
		}
	}
}

// TestReadBatchesChain: a batch header's "chain" names the batch and each
// of its records; a header without one leaves them unnamed.
func TestReadBatchesChain(t *testing.T) {
	rec := func(seq int64) string {
		return fmt.Sprintf(`{"seq":%d,"ts":1,"tenantId":"t","kind":"k","record":{},"prevHash":"","recordHash":"%064x"}`, seq, seq)
	}
	in := `{"batch":{"id":1,"count":1,"bytes":1,"firstSeq":1,"lastSeq":1,"intervalMs":1,"chain":"host-a"}}` + "\n" + rec(1) + "\n" +
		`{"batch":{"id":2,"count":1,"bytes":1,"firstSeq":2,"lastSeq":2,"intervalMs":1}}` + "\n" + rec(2) + "\n"
	out := make(chan *Batch, 2)
	if err := ReadBatches(context.Background(), strings.NewReader(in), out, 0); err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []string
	for b := range out {
		got = append(got, fmt.Sprintf("%s/%s", b.Chain, b.Records[0].Chain))
	}
	if want := "[host-a/host-a /]"; fmt.Sprint(got) != want {
		t.Fatalf("chains %v, want %s", got, want)
	}
}
