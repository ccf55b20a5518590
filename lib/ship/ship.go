// Package ship is the delivery engine of audit-ship, shared by every sink:
// several requests in flight with acks still emitted in seq order, retries
// with capped exponential backoff and full jitter (honouring Retry-After),
// splitting on 413, bisecting a 400 down to the poison record, quarantine,
// and the self-pause after consecutive non-retryable failures.
//
// The at-least-once rule it keeps: an ack for a batch is emitted only after
// every record in it was delivered (or quarantined, and named in the ack),
// and only after the acks of all earlier batches. Whatever is not acked is
// read again from the cursor on the next start.
//
// A batch's memory is reused for a later batch once its outcome is
// settled; the ownership rule, and the one place it is released, are in
// pool.go (and docs/design.md, "Batch memory is reused").
package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Batch is a group of records shipped and acked together. Records alias
// the batch's own memory, which is reused for a later batch once the
// batch's outcome is settled (pool.go: the ownership rule).
type Batch struct {
	ID int64
	// Chain is the chain id of every record of the batch (the batch
	// header's "chain", or the chain mark before its records when
	// audit-ship batches itself); "" is the single chain of one database.
	// Its ack names it.
	Chain   string
	Records []sink.Record
	Status  []sink.Status
	Reason  []string
	handled []bool // poison already quarantined
	arena   []byte

	pooled bool          // made by newBatch: release pools its memory
	idx    []int         // positions 0..n-1, the first delivery's
	recs   []sink.Record // the records of one request (deliver's scratch)
}

// Options configure a Shipper.
type Options struct {
	Exporter     string        // cursor name, e.g. "splunk:prod"
	Inflight     int           // requests in flight at once (default 4)
	PauseAfter   int           // consecutive non-retryable failures before self-pause (default 5)
	MinBackoff   time.Duration // first retry delay before jitter (default 250ms)
	MaxBackoff   time.Duration // cap of the retry delay (default 30s)
	DrainTimeout time.Duration // after a stop request, how long in-flight batches may still try (default 30s)
	// RefusedBackoff is the least wait after a non-retryable refusal of our
	// configuration (401/403) before the next attempt (default 1m): with
	// PauseAfter 5 a rotated token has (5-1) x 1m = 4 minutes to land
	// before the shipper stops.
	RefusedBackoff time.Duration
	// GiveUpAfter, if positive, stops the shipper (ErrGaveUp, exit code
	// exitcode.Incomplete) once deliveries have failed for that long without
	// one success: the bound of a one-shot drain or a cron run.
	GiveUpAfter time.Duration
	// LogEvery is the longest a failing SIEM goes without a log line
	// (default 1m).
	LogEvery   time.Duration
	Quarantine *Quarantine // where poison records go; nil: a poison record pauses the shipper
	Acks       AckSink     // where acks go
	Log        io.Writer   // diagnostics (stderr)
	Metrics    *Metrics    // counters; may be nil

	// For tests: the jitter source and the sleep function.
	Rand  func() float64
	Sleep func(ctx context.Context, d time.Duration) error
}

// AckSink receives the ack of each delivered batch, in seq order.
type AckSink interface {
	Ack(ctx context.Context, a ack.Ack) error
	// Close flushes acks still pending, waiting at most until ctx is done.
	Close(ctx context.Context) error
}

// ErrPaused is returned (wrapped, with exit code exitcode.Paused, or
// exitcode.Config when the SIEM refused our configuration) when the shipper
// paused itself.
var ErrPaused = errors.New("shipper paused")

// ErrGaveUp is returned (wrapped, with exit code exitcode.Incomplete) when
// deliveries failed for Options.GiveUpAfter without a success.
var ErrGaveUp = errors.New("gave up")

// Shipper delivers batches through one sink.
type Shipper struct {
	sink sink.Sink
	opt  Options

	consecutive atomic.Int64 // non-retryable failures since the last delivery
	lastCounted atomic.Int64 // UnixNano when the last config failure was counted
	pauseOnce   sync.Once
	pauseErr    error
	pauseCancel context.CancelFunc
	sleepCtx    context.Context // done at a stop request: retry waits end at once
	lastLog     atomic.Int64    // UnixNano of the last failure log line
	countsAcks  bool            // the AckSink counts what it hands over
	rmu         sync.Mutex
	rng         *rand.Rand
}

// New returns a Shipper.
func New(s sink.Sink, opt Options) *Shipper {
	if opt.Inflight <= 0 {
		opt.Inflight = 4
	}
	if opt.PauseAfter <= 0 {
		opt.PauseAfter = 5
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = 250 * time.Millisecond
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 30 * time.Second
	}
	if opt.DrainTimeout <= 0 {
		opt.DrainTimeout = 30 * time.Second
	}
	if opt.RefusedBackoff <= 0 {
		opt.RefusedBackoff = time.Minute
	}
	if opt.LogEvery <= 0 {
		opt.LogEvery = time.Minute
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if opt.Metrics == nil {
		opt.Metrics = &Metrics{}
	}
	sh := &Shipper{sink: s, opt: opt, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	if sh.opt.Rand == nil {
		sh.opt.Rand = func() float64 { sh.rmu.Lock(); defer sh.rmu.Unlock(); return sh.rng.Float64() }
	}
	if sh.opt.Sleep == nil {
		sh.opt.Sleep = sleep
	}
	if c, ok := opt.Acks.(countsHandover); ok {
		c.Count(countersOf(opt.Metrics))
		sh.countsAcks = true
	}
	return sh
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type job struct {
	b    *Batch
	done chan error
}

// Run ships every batch received from in until in is closed or ctx is
// done, then waits for the batches in flight (at most DrainTimeout after ctx
// is done) and emits their acks. It returns nil after a clean end, an error
// wrapping ErrPaused (exit code 6) after a self-pause, or the first ack
// failure.
func (sh *Shipper) Run(ctx context.Context, in <-chan *Batch) error {
	// sendCtx outlives ctx by DrainTimeout, so a graceful stop lets the
	// requests in flight finish; a pause cancels it at once.
	sendCtx, cancelSend := context.WithCancel(context.Background())
	defer cancelSend()
	sh.pauseCancel = cancelSend
	// A stop request ends retry waits at once: only requests in flight
	// may use the drain time, a batch waiting to retry is given up (it was
	// not acked: it is read again from the cursor).
	sleepCtx, stopSleeps := context.WithCancel(sendCtx)
	defer stopSleeps()
	sh.sleepCtx = sleepCtx
	stopDrain := context.AfterFunc(ctx, func() {
		stopSleeps()
		t := time.AfterFunc(sh.opt.DrainTimeout, cancelSend)
		_ = t
	})
	defer stopDrain()

	window := make(chan struct{}, sh.opt.Inflight)
	order := make(chan *job, sh.opt.Inflight)
	work := make(chan *job)
	var wg sync.WaitGroup
	for i := 0; i < sh.opt.Inflight; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				j.done <- sh.ship(sendCtx, j.b)
			}
		}()
	}

	seqErr := make(chan error, 1)
	go func() { seqErr <- sh.sequence(sendCtx, order, window) }()

dispatch:
	for {
		select {
		case <-ctx.Done():
			break dispatch
		case <-sendCtx.Done():
			break dispatch
		case b, ok := <-in:
			if !ok {
				break dispatch
			}
			select { // wait for room in the in-flight window
			case window <- struct{}{}:
			case <-sendCtx.Done():
				break dispatch
			}
			j := &job{b: b, done: make(chan error, 1)}
			order <- j
			work <- j
		}
	}
	close(work)
	close(order)
	err := <-seqErr
	wg.Wait()
	if sh.pauseErr != nil {
		return sh.pauseErr
	}
	return err
}

// sequence hands the acks over in batch order: which ack may go, and
// the run's claim it carries, is ack.Sequencer's rule.
func (sh *Shipper) sequence(ctx context.Context, order <-chan *job, window <-chan struct{}) error {
	var failed error
	var rel ack.Sequencers
	for j := range order {
		err := <-j.done
		<-window
		failed = sh.settle(j.b, err, failed, &rel)
		// The batch's outcome is settled: its worker returned and its ack
		// (a copy of what it needs) was handed over, dropped or never
		// made. Its memory goes back to the pool here, and only here.
		j.b.release()
	}
	if errors.Is(failed, context.Canceled) {
		return nil
	}
	return failed
}

// settle hands over the ack of b, whose delivery returned err, if the
// order allows it, and returns the run's failure so far (failed, or the
// ack's).
func (sh *Shipper) settle(b *Batch, err, failed error, rel *ack.Sequencers) error {
	if err != nil {
		if !rel.Stopped() {
			failed = err
		}
		rel.Stop(b.Chain)
		return failed
	}
	a, ok := ackOf(sh.opt.Exporter, b)
	if !ok {
		return failed
	}
	if a, ok = rel.Release(a, b.seqs()); !ok {
		// Delivered, but its ack may not pass the failure.
		sh.opt.Metrics.AcksDropped.Add(int64(a.Count))
		return failed
	}
	// The ack context is not ctx: a paused or draining shipper still
	// hands over what was delivered.
	if err := sh.opt.Acks.Ack(context.Background(), a); err != nil {
		sh.opt.Metrics.AcksDropped.Add(int64(a.Count))
		failed = fmt.Errorf("emit ack: %w", err)
		rel.StopAll()
		if errors.Is(err, exitcode.ErrStopped) || exitcode.IsBrokenPipe(err) {
			// audit-ack (the reader of --acks -) is gone: a stop, or
			// its failure; no pause, the stage reports the dropped acks.
			return failed
		}
		sh.pause(exitcode.Paused, failed)
		return failed
	}
	if !sh.countsAcks {
		sh.opt.Metrics.AckedRecords.Add(int64(a.Count))
		sh.opt.Metrics.LastAckedSeq.Store(a.LastSeq)
	}
	return failed
}

// SetChain sets the chain of b and of each of its records.
func (b *Batch) SetChain(id string) {
	b.Chain = id
	for i := range b.Records {
		b.Records[i].Chain = id
	}
}

// seqs yields the seqs of b's records, in order.
func (b *Batch) seqs() iter.Seq[int64] {
	return func(yield func(int64) bool) {
		for _, r := range b.Records {
			if r.Checkpoint != nil {
				continue // not a record: acks cover records only
			}
			if !yield(r.Seq) {
				return
			}
		}
	}
}

func ackOf(exporter string, b *Batch) (ack.Ack, bool) {
	if hasCheckpoints(b) {
		b = recordsOnly(b)
	}
	if len(b.Records) == 0 {
		return ack.Ack{}, false
	}
	// LastHash is copied: the record's string is the batch's memory, which
	// is reused after the ack is handed over, and an AckSink may hold the
	// ack longer (ack.FIFOWriter, while audit-ack does not read).
	a := ack.Ack{Exporter: exporter, Chain: b.Chain, FirstSeq: b.Records[0].Seq, LastSeq: b.Records[len(b.Records)-1].Seq,
		LastHash: strings.Clone(b.Records[len(b.Records)-1].Hash), Count: len(b.Records)}
	for i, s := range b.Status {
		if s == sink.Poison {
			a.Quarantined = append(a.Quarantined, b.Records[i].Seq)
		}
	}
	return a, true
}

// ship delivers one batch completely, or returns why it could not.
func (sh *Shipper) ship(ctx context.Context, b *Batch) error {
	n := len(b.Records)
	if len(b.Status) != n {
		b.Status = grow(b.Status, n)
		b.Reason = grow(b.Reason, n)
	}
	b.handled = grow(b.handled, n)
	b.idx = resize(b.idx, n) // set below
	idx := b.idx
	for i := range idx {
		idx[i] = i
	}
	start := time.Now()
	err := sh.deliver(ctx, b, idx)
	sh.opt.Metrics.observeBatch(time.Since(start))
	return err
}

// deliver sends the records of b at positions idx until each is Delivered,
// Duplicate or Poison (and quarantined).
func (sh *Shipper) deliver(ctx context.Context, b *Batch, idx []int) error {
	attempt := 0
	for {
		pending := idx // all of them, as on a first attempt: read only
		for k, i := range idx {
			if b.Status[i] != sink.Pending {
				pending = make([]int, k, len(idx))
				copy(pending, idx[:k])
				for _, i := range idx[k+1:] {
					if b.Status[i] == sink.Pending {
						pending = append(pending, i)
					}
				}
				break
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// The batch's scratch: a split or bisection (deliver for a
		// part) refills it for its own requests, and this call sends no
		// more after one.
		recs := b.recs[:0]
		for _, i := range pending {
			recs = append(recs, b.Records[i])
		}
		b.recs = recs
		sh.opt.Metrics.Inflight.Add(1)
		sent := time.Now().UnixNano()
		res, err := sh.sink.Send(ctx, recs)
		sh.opt.Metrics.Inflight.Add(-1)
		sh.opt.Metrics.Requests.Add(1)
		if done := sh.opt.Metrics.RequestDone; done != nil {
			done(time.Duration(time.Now().UnixNano() - sent))
		}

		progress, delivered := false, 0
		for k, i := range pending {
			if k < len(res.Status) && res.Status[k] != sink.Pending {
				b.Status[i] = res.Status[k]
				if k < len(res.Reason) {
					b.Reason[i] = res.Reason[k]
				}
				progress = true
				switch res.Status[k] {
				case sink.Delivered:
					delivered++
				case sink.Duplicate:
					delivered++
					sh.opt.Metrics.Duplicates.Add(1)
				}
			}
		}
		if delivered > 0 {
			sh.consecutive.Store(0)
			sh.opt.Metrics.DeliveredRecords.Add(int64(delivered))
			sh.recovered()
		}
		if perr := sh.handlePoison(ctx, b, pending); perr != nil {
			return perr
		}
		if err == nil {
			if progress {
				attempt = 0
				continue
			}
			err = &sink.Error{Class: sink.Retryable, Code: -1, Msg: "the sink reported no outcome for the records sent"}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var se *sink.Error
		if !errors.As(err, &se) {
			se = &sink.Error{Class: sink.Retryable, Code: -1, Msg: err.Error()}
		}
		still := make([]int, 0, len(pending))
		for _, i := range pending {
			if b.Status[i] == sink.Pending {
				still = append(still, i)
			}
		}
		switch se.Class {
		case sink.TooLarge, sink.BadRequest:
			if len(still) == 1 {
				i := still[0]
				b.Status[i] = sink.Poison
				b.Reason[i] = se.Error()
				if se.Class == sink.TooLarge {
					b.Reason[i] = sink.TooLargeReason(se.Error())
				}
				if perr := sh.handlePoison(ctx, b, still); perr != nil {
					return perr
				}
				continue
			}
			if se.Class == sink.TooLarge {
				sh.opt.Metrics.Splits.Add(1)
			} else {
				sh.opt.Metrics.Bisects.Add(1)
			}
			half := len(still) / 2
			if err := sh.deliver(ctx, b, still[:half:half]); err != nil {
				return err
			}
			if err := sh.deliver(ctx, b, still[half:]); err != nil {
				return err
			}
			return nil
		case sink.Conflict:
			sh.opt.Metrics.failure(false, "conflict")
			return sh.pause(exitcode.Paused, se)
		case sink.Config:
			sh.opt.Metrics.failure(false, "config")
			since := sh.failing()
			// Requests in flight together fail together (a rotated token
			// fails all of them at once): only a request sent after the
			// last counted failure counts again, so the self-pause needs
			// PauseAfter rounds of backoff, not one burst.
			if !sh.countConfigFailure(sent) {
				break
			}
			n := sh.consecutive.Load()
			if n >= int64(sh.opt.PauseAfter) {
				return sh.pause(exitcode.Config, fmt.Errorf("the SIEM refused our configuration %d times in a row since %s, the last: %v; fix the credential or the setting it names, then restart", n, since.Format(time.RFC3339), se))
			}
			sh.lastLog.Store(time.Now().UnixNano())
			fmt.Fprintf(sh.opt.Log, "audit-ship: %s: %v (refusal %d of %d before stopping with exit 7; next attempt in %v: a rotated credential is picked up then, no restart needed)\n",
				sh.opt.Exporter, se, n, sh.opt.PauseAfter, sh.opt.RefusedBackoff.Round(time.Second))
		default:
			sh.opt.Metrics.failure(true, reasonOf(se))
			since := sh.failing()
			if attempt == 0 || time.Since(time.Unix(0, sh.lastLog.Load())) >= sh.opt.LogEvery {
				sh.lastLog.Store(time.Now().UnixNano())
				msg := fmt.Sprintf("audit-ship: %s: %v; failing since %s (%v, %d failed requests); retrying", sh.opt.Exporter, se,
					since.Format(time.RFC3339), time.Since(since).Round(time.Second), sh.opt.Metrics.FailedRequests.Load())
				if sh.opt.GiveUpAfter > 0 {
					msg += fmt.Sprintf("; giving up at %s (--give-up-after %v)", since.Add(sh.opt.GiveUpAfter).Format(time.RFC3339), sh.opt.GiveUpAfter)
				}
				fmt.Fprintln(sh.opt.Log, msg)
			}
		}
		if sh.opt.GiveUpAfter > 0 {
			since := time.Unix(0, sh.opt.Metrics.FailingSince.Load())
			if time.Since(since) >= sh.opt.GiveUpAfter {
				return sh.pauseWith(ErrGaveUp, exitcode.Incomplete, fmt.Errorf("deliveries to the SIEM failed for %v (since %s, --give-up-after %v) without a success, the last: %v",
					time.Since(since).Round(time.Second), since.Format(time.RFC3339), sh.opt.GiveUpAfter, se))
			}
		}
		d := sh.backoff(attempt, se.RetryAfter)
		if se.Class == sink.Config && d < sh.opt.RefusedBackoff {
			d = sh.opt.RefusedBackoff
		}
		if sh.opt.GiveUpAfter > 0 { // wake up to give up on time
			left := sh.opt.GiveUpAfter - time.Since(time.Unix(0, sh.opt.Metrics.FailingSince.Load()))
			d = max(min(d, left), 0)
		}
		attempt++
		sh.opt.Metrics.Retries.Add(1)
		sleepCtx := sh.sleepCtx
		if sleepCtx == nil {
			sleepCtx = ctx
		}
		if err := sh.opt.Sleep(sleepCtx, d); err != nil {
			return err
		}
	}
}

func reasonOf(se *sink.Error) string {
	switch {
	case se.HTTPStatus == 0:
		return "network"
	case se.HTTPStatus == 429:
		return "throttled"
	case se.HTTPStatus >= 500:
		return "server"
	}
	return "other"
}

// countConfigFailure counts a configuration failure of a request sent at
// sent (UnixNano) toward the self-pause, unless an earlier failure was
// counted after it was sent (then both answered the same condition).
func (sh *Shipper) countConfigFailure(sent int64) bool {
	for {
		last := sh.lastCounted.Load()
		if sent < last {
			return false
		}
		if sh.lastCounted.CompareAndSwap(last, time.Now().UnixNano()) {
			sh.consecutive.Add(1)
			return true
		}
	}
}

// handlePoison quarantines the records of b at idx newly marked Poison.
func (sh *Shipper) handlePoison(ctx context.Context, b *Batch, idx []int) error {
	for _, i := range idx {
		if b.Status[i] != sink.Poison || b.handled[i] {
			continue
		}
		b.handled[i] = true
		r := &b.Records[i]
		if r.Checkpoint != nil {
			if err := sh.checkpointPoison(r, b.Reason[i]); err != nil {
				return err
			}
			continue
		}
		what, reason := "rejected by the SIEM", "poison"
		if sink.IsTooLarge(b.Reason[i]) {
			what, reason = "is too large for the SIEM", "too_large"
		}
		if sink.IsNotSent(b.Reason[i]) {
			what = "was not sent, refused here for its size (over the SIEM's per-record limit)"
		}
		sh.opt.Metrics.failure(false, reason)
		if sh.opt.Quarantine == nil {
			if sink.IsNotSent(b.Reason[i]) {
				return sh.pause(exitcode.Paused, fmt.Errorf("record seq %d (%s, %d bytes) was not sent, refused here for its size: %s; set --quarantine FILE to set such records aside and go on", r.Seq, r.Hash, len(r.Line), b.Reason[i]))
			}
			if sink.IsTooLarge(b.Reason[i]) {
				return sh.pause(exitcode.Paused, fmt.Errorf("record seq %d (%s, %d bytes) is too large for the SIEM: %s; set --quarantine FILE to set such records aside and go on", r.Seq, r.Hash, len(r.Line), b.Reason[i]))
			}
			return sh.pause(exitcode.Paused, fmt.Errorf("the SIEM rejected record seq %d (%s): %s; set --quarantine FILE to set such records aside and go on", r.Seq, r.Hash, b.Reason[i]))
		}
		if err := sh.opt.Quarantine.Put(sh.opt.Exporter, r, b.Reason[i]); err != nil {
			return sh.pause(exitcode.Paused, fmt.Errorf("quarantine seq %d: %w", r.Seq, err))
		}
		sh.opt.Metrics.Quarantined.Add(1)
		fmt.Fprintf(sh.opt.Log, "audit-ship: %s: record seq %d %s, quarantined in %s: %s\n", sh.opt.Exporter, r.Seq, what, sh.opt.Quarantine.Path(), b.Reason[i])
		n := sh.consecutive.Add(1)
		if n >= int64(sh.opt.PauseAfter) {
			return sh.pause(exitcode.Paused, fmt.Errorf("%d consecutive non-retryable failures (the last: record seq %d %s)", n, r.Seq, what))
		}
	}
	return nil
}

// pause stops the shipper: no more sends, no more acks after the last
// complete batch. code is the exit code: exitcode.Paused, or
// exitcode.Config for a refused configuration.
func (sh *Shipper) pause(code int, cause error) error {
	return sh.pauseWith(ErrPaused, code, cause)
}

func (sh *Shipper) pauseWith(kind error, code int, cause error) error {
	sh.pauseOnce.Do(func() {
		if kind == ErrPaused { // the gauge of the self-pause, not of a give-up
			sh.opt.Metrics.Paused.Store(1)
		}
		sh.pauseErr = exitcode.New(code, fmt.Errorf("%w: %v; records from the last ack on were not acked and will be re-sent from the cursor on the next start", kind, cause))
		if sh.pauseCancel != nil {
			sh.pauseCancel()
		}
	})
	return sh.pauseErr
}

// failing records a failed request and returns since when deliveries have
// been failing (the first failure after the last success).
func (sh *Shipper) failing() time.Time {
	m := sh.opt.Metrics
	m.FailedRequests.Add(1)
	now := time.Now().UnixNano()
	m.FailingSince.CompareAndSwap(0, now)
	return time.Unix(0, m.FailingSince.Load())
}

// recovered ends a failing streak (a delivery went through), and says so
// if the streak was logged.
func (sh *Shipper) recovered() {
	m := sh.opt.Metrics
	since := m.FailingSince.Swap(0)
	n := m.FailedRequests.Swap(0)
	if since != 0 && n > 0 {
		fmt.Fprintf(sh.opt.Log, "audit-ship: %s: delivering again after %v of failures (%d failed requests)\n",
			sh.opt.Exporter, time.Since(time.Unix(0, since)).Round(time.Second), n)
	}
}

// MaxRetryAfter caps a server's Retry-After: a broken or hostile value must
// not park the shipper for hours without a word.
const MaxRetryAfter = 5 * time.Minute

// backoff is capped exponential backoff with full jitter, never shorter
// than the server's Retry-After.
func (sh *Shipper) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceil := sh.opt.MinBackoff
	for i := 0; i < attempt && ceil < sh.opt.MaxBackoff; i++ {
		ceil *= 2
	}
	if ceil > sh.opt.MaxBackoff {
		ceil = sh.opt.MaxBackoff
	}
	d := time.Duration(sh.opt.Rand() * float64(ceil))
	if retryAfter > MaxRetryAfter {
		retryAfter = MaxRetryAfter
	}
	if retryAfter > d {
		d = retryAfter
	}
	return d
}
