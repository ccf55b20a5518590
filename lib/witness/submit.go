package witness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Submitter asks witnesses to cosign a log's newest checkpoint, in the
// background: a witness that is down or slow never holds up the caller (the
// shipping pipeline). It keeps a Prover for the consistency proofs. Failures
// that a retry may cure are retried with exponential backoff, always with
// the newest checkpoint (cosigning it covers every older one). A refusal
// (the witness holds another tree: 422, or a 409 whose size is larger than
// the log's or smaller than what it cosigned before; 403, 404, 400; a
// cosignature that does not verify) is an alarm: that witness is not asked
// again by this run, and OnAlarm is told once.
type Submitter struct {
	Client    *Client
	Witnesses []Witness
	// OnCosigned is called (from Run's goroutine) with a checkpoint's size
	// and its note with every cosignature collected for it so far, after
	// each witness that cosigned it.
	OnCosigned func(size int64, cosigned []byte)
	// OnAlarm is called once per witness that refused.
	OnAlarm func(w Witness, err error)
	// OnBehind is called once per witness this run cannot prove
	// consistency to (ErrTooFarBehind).
	OnBehind func(w Witness, err error)
	// OnRetry is called after each failure that will be retried.
	OnRetry func(w Witness, err error, next time.Duration)
	// MinBackoff and MaxBackoff bound the retry delays (default 1s, 5m).
	MinBackoff, MaxBackoff time.Duration
	// MaxPending bounds the leaf hashes kept for proofs to a witness that
	// is behind (default 1Mi leaves, 32 MiB in memory and about 43 MiB in seal's state file). Past it, a witness that is
	// still behind can no longer be proven consistent by this run: that is
	// reported once through OnBehind (ErrTooFarBehind): not an alarm, a
	// limit; the witness is not asked again by this run.
	MaxPending int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Cosigned is, per witness vkey, the largest size it is known to have
	// cosigned before this run (from the checkpoint file): a witness that
	// answers with a smaller size was rolled back.
	Cosigned map[string]int64

	mu      sync.Mutex
	prover  *Prover
	latest  []byte    // the newest checkpoint's note
	size    int64     // its size
	sealed  time.Time // when the oldest checkpoint not yet cosigned by every witness was made
	ws      []*wstate
	wake    chan struct{}
	started bool
}

// ErrTooFarBehind: a witness fell further behind than MaxPending records.
var ErrTooFarBehind = errors.New("the witness is further behind than this run keeps the tree for")

type wstate struct {
	w        Witness
	size     int64     // the witness's size as last learnt (-1: unknown)
	best     int64     // the largest size it cosigned for this run
	when     time.Time // when it last cosigned
	next     time.Time // the earliest next try
	backoff  time.Duration
	refused  error // set: not asked again (an alarm, unless behind)
	behind   bool  // refused only because no proof is possible
	lastErr  error
	cosigned map[int64][]byte // cosignature lines for the newest checkpoint
	before   int64            // the largest size it cosigned before this run
}

// Status is one witness's state, for metrics and the summary.
type Status struct {
	Name      string
	Size      int64     // the largest size it cosigned in this run (0: none)
	Holds     int64     // the size it holds, as last learnt (at the start: the run's base)
	LastOK    time.Time // when (zero: never)
	LastError error     // the newest failure, if the newest try failed
	Refused   error     // the alarm, if it refused (or why it was given up, with Behind)
	Behind    bool      // given up: too far behind for this run to prove (not an alarm)
}

// Start begins at a tree of size base with that frontier (the seal state);
// the witnesses are assumed to hold base (a first answer of 409 tells the
// true size).
func (s *Submitter) Start(prover *Prover) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prover = prover
	s.size = prover.Size()
	s.wake = make(chan struct{}, 1)
	seen := map[string]bool{}
	for _, w := range s.Witnesses {
		if seen[w.String()] {
			continue // one witness given twice is asked once
		}
		seen[w.String()] = true
		ws := &wstate{w: w, size: prover.Base(), cosigned: map[int64][]byte{}}
		if n := s.Cosigned[w.String()]; n > 0 {
			ws.before = n
			if n >= prover.Base() && n <= prover.Size() {
				ws.size = n
			}
		}
		s.ws = append(s.ws, ws)
	}
	s.started = true
}

// AppendLeaf adds the next record's recordHash bytes to the tree.
func (s *Submitter) AppendLeaf(data []byte) {
	s.mu.Lock()
	s.prover.AppendLeaf(data)
	s.mu.Unlock()
}

// Checkpoint hands over a new checkpoint note of size n (the tree's size:
// AppendLeaf has been called up to it).
func (s *Submitter) Checkpoint(msg []byte, n int64) {
	s.mu.Lock()
	if s.sealed.IsZero() || s.allAt(s.size) {
		s.sealed = s.now()
	}
	s.latest, s.size = msg, n
	for _, w := range s.ws {
		w.next = time.Time{} // a new checkpoint is worth a try at once
		w.backoff = 0
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Submitter) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// allAt reports whether every witness (one that refused included: the log
// is not witnessed by it) cosigned size n.
func (s *Submitter) allAt(n int64) bool {
	for _, w := range s.ws {
		if w.best < n {
			return false
		}
	}
	return true
}

// Unwitnessed returns how long the log has gone without every witness
// cosigning its newest checkpoint: the time since the oldest checkpoint
// that some witness has not cosigned (directly or through a later one)
// was made; 0 if every witness cosigned the newest.
func (s *Submitter) Unwitnessed() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil || s.allAt(s.size) {
		return 0
	}
	return s.now().Sub(s.sealed)
}

// WitnessedSize is the largest size every witness cosigned in this run.
func (s *Submitter) WitnessedSize() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	min := int64(-1)
	for _, w := range s.ws {
		if min < 0 || w.best < min {
			min = w.best
		}
	}
	return max(min, 0)
}

// Statuses returns each witness's state.
func (s *Submitter) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, w := range s.ws {
		out = append(out, Status{Name: w.w.Name(), Size: w.best, Holds: max(w.size, w.best), LastOK: w.when, LastError: w.lastErr, Refused: w.refused, Behind: w.behind})
	}
	return out
}

// Refusals returns how many witnesses refused.
func (s *Submitter) Refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.ws {
		if w.refused != nil && !w.behind {
			n++
		}
	}
	return n
}

// Run submits until ctx is done. Call Flush before cancelling it to give
// the newest checkpoint a last try.
func (s *Submitter) Run(ctx context.Context) {
	for {
		wait := s.round(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Flush tries every witness that is behind once more now (within ctx),
// ignoring backoff: at the end of a run.
func (s *Submitter) Flush(ctx context.Context) {
	s.mu.Lock()
	for _, w := range s.ws {
		w.next = time.Time{}
	}
	s.mu.Unlock()
	s.round(ctx)
}

// round tries each due witness and returns how long to wait for the next.
func (s *Submitter) round(ctx context.Context) time.Duration {
	// The witnesses are asked in parallel: a slow one does not delay the
	// others' cosignatures.
	var wg sync.WaitGroup
	s.mu.Lock()
	msg, size := s.latest, s.size
	for _, w := range s.ws {
		if w.refused != nil || msg == nil || w.best >= size || s.now().Before(w.next) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.try(ctx, w, msg, size)
		}()
	}
	s.mu.Unlock()
	wg.Wait()
	s.trim()
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := time.Hour
	for _, w := range s.ws {
		if w.refused == nil && s.latest != nil && w.best < s.size {
			wait = min(wait, max(w.next.Sub(s.now()), 0))
		}
	}
	return wait
}

func (s *Submitter) try(ctx context.Context, w *wstate, msg []byte, size int64) {
	for attempt := 0; attempt < 3; attempt++ {
		s.mu.Lock()
		old := w.size
		proof, perr := s.prover.Prove(old, size)
		s.mu.Unlock()
		if perr != nil {
			s.giveUp(w, fmt.Errorf("witness %s holds size %d: %w (%v); the log stays unwitnessed by it until a run can prove consistency from size %d", w.w.Name(), old, ErrTooFarBehind, perr, old))
			return
		}
		lines, err := s.Client.AddCheckpoint(ctx, w.w, old, proof, msg)
		var ce *ConflictError
		var te *TransientError
		switch {
		case err == nil:
			s.mu.Lock()
			w.size, w.best, w.when, w.lastErr, w.backoff = size, size, s.now(), nil, 0
			w.cosigned = map[int64][]byte{size: lines}
			all := append([]byte(nil), msg...)
			for _, o := range s.ws {
				if l, ok := o.cosigned[size]; ok && o != w {
					all = AddCosignatures(all, l)
				}
			}
			all = AddCosignatures(all, lines)
			if s.allAt(s.size) {
				s.sealed = time.Time{}
			}
			cb := s.OnCosigned
			s.mu.Unlock()
			if cb != nil {
				cb(size, all)
			}
			return
		case errors.As(err, &ce) && ce.HasSize:
			switch {
			case ce.Size > size:
				s.refuse(w, fmt.Errorf("witness %s refused size %d: it already cosigned size %d of this log, larger than the log: the log (or its seal state) was rolled back, or the log's key signed a longer view that was shown to the witness", w.w.Name(), size, ce.Size))
				return
			case w.best > 0 && ce.Size < w.best:
				s.refuse(w, fmt.Errorf("witness %s was rolled back: it now holds size %d but cosigned size %d at %s in this run; a witness that forgets what it cosigned cannot stop a split view", w.w.Name(), ce.Size, w.best, w.when.UTC().Format(time.RFC3339)))
				return
			case ce.Size < w.before:
				s.refuse(w, fmt.Errorf("witness %s was rolled back: it now holds size %d but its cosignature of size %d is in the checkpoint file; a witness that forgets what it cosigned cannot stop a split view", w.w.Name(), ce.Size, w.before))
				return
			case ce.Size == old:
				// The same size twice: the witness holds another root at it.
				s.refuse(w, fmt.Errorf("witness %s refused size %d: it holds a different tree at size %d (409): the log's key signed another view", w.w.Name(), size, old))
				return
			}
			s.mu.Lock()
			w.size = ce.Size // learnt: resend with a proof from there
			s.mu.Unlock()
			continue
		case errors.As(err, &te):
			s.retry(w, err)
			return
		case ctx.Err() != nil:
			return
		default:
			if errors.As(err, &ce) {
				err = fmt.Errorf("witness %s: %v", w.w.Name(), err)
			}
			s.refuse(w, err)
			return
		}
	}
	s.retry(w, fmt.Errorf("witness %s: its size kept changing under the requests", w.w.Name()))
}

func (s *Submitter) retry(w *wstate, err error) {
	s.mu.Lock()
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = time.Second
	}
	if maxB <= 0 {
		maxB = 5 * time.Minute
	}
	if w.backoff == 0 {
		w.backoff = minB
	} else {
		w.backoff = min(2*w.backoff, maxB)
	}
	w.next = s.now().Add(w.backoff)
	w.lastErr = err
	cb, d := s.OnRetry, w.backoff
	s.mu.Unlock()
	if cb != nil {
		cb(w.w, err, d)
	}
}

// giveUp stops asking a witness this run cannot prove consistency to; it
// is not counted as a refusal.
func (s *Submitter) giveUp(w *wstate, err error) {
	s.mu.Lock()
	w.refused, w.behind, w.lastErr = err, true, err
	cb := s.OnBehind
	s.mu.Unlock()
	if cb != nil {
		cb(w.w, err)
	}
}

func (s *Submitter) refuse(w *wstate, err error) {
	s.mu.Lock()
	w.refused, w.lastErr = err, err
	cb := s.OnAlarm
	s.mu.Unlock()
	if cb != nil {
		cb(w.w, err)
	}
}

// trim drops the leaves every witness is past, and those past MaxPending.
func (s *Submitter) trim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	low := s.prover.Size()
	for _, w := range s.ws {
		if w.refused == nil && w.size < low {
			low = w.size
		}
	}
	limit := s.MaxPending
	if limit <= 0 {
		limit = 1 << 20
	}
	if over := s.prover.Size() - int64(limit); low < over {
		low = over
	}
	if low > s.prover.Base() {
		s.prover.Advance(low)
	}
}

// Snapshot returns the Prover's state (see Prover.Snapshot).
func (s *Submitter) Snapshot() (base int64, frontier, leaves []tlog.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prover.Snapshot()
}
