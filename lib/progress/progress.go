// Package progress is the one-line status a stage draws on its terminal
// while it runs (records, records/s, seq, time left), only when stderr is a
// terminal, and the coordination that lets the stages of one pipeline share
// that terminal (terminal_*.go: a lock on the tty, taken by the stage whose
// line matters most). It counts nothing itself: a stage gives it a Status
// function reading the counters it keeps.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// FedByPipe reports whether r is a pipe (or socket): in a pipeline, the
// stage before feeds it. A pipeline's stages share one terminal, and two
// progress lines redrawn over each other flicker, so only the stage at the
// source draws one: audit-verify does when it reads files or a redirected
// file, not when audit-read feeds it (audit-read draws then).
func FedByPipe(r io.Reader) bool {
	f, ok := r.(interface{ Stat() (os.FileInfo, error) }) // *os.File, or cli's stdin
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0
}

// Every is how often the progress line is redrawn.
const Every = 500 * time.Millisecond

// Status is what the progress line shows: records so far, the seq of the
// last one, and the head of the log (the last seq there is to read), 0 if
// unknown.
type Status struct {
	Records int64
	Seq     int64
	Head    int64
	Verb    string // what became of the records, after "N records" ("delivered"); "" for none
	Note    string // the stage's state, at the end of the line ("2 requests in flight"); "" for none
}

// Line draws a one-line status on stderr while a stage runs, when, and
// only when, stderr is a terminal: records, records/s, the current seq and,
// when the head of the log is known, how far there is to go and the time
// left. Nothing is written when stderr is a pipe or a file, so logs and
// scripts see exactly what they saw before.
//
// The line is redrawn in place with a carriage return, padded with spaces
// (no escape sequences, so a dumb terminal shows it right). Other output
// must go through Writer, which clears the line first so that messages do
// not land in the middle of it. A nil *Line is valid and does nothing.
type Line struct {
	prog   string
	w      io.Writer
	status func() Status
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	drawn   int // length of the line on screen, 0 if none
	samples []sample

	// One line per terminal: lock is a descriptor of the terminal of its
	// own (-1 if none could be opened: no coordination), flocked while
	// drawing. A stage that takes the terminal (take: audit-ship, where
	// the records end) keeps the lock from its first draw to Stop; the
	// others (audit-read, audit-verify) take it only to draw and let it go
	// at once, and do not draw, clearing their line, while another holds
	// it. So in a pipeline audit-ship's line shows, and audit-read's
	// before audit-ship starts drawing and after it stops.
	lock int
	take bool
	held bool
}

type sample struct {
	t time.Time
	n int64
}

// Start starts drawing status() on stderr every Every if
// stderr is a terminal, and returns nil (which does nothing) if it is not.
// status is called from another goroutine and must be safe for that.
func Start(prog string, stderr io.Writer, status func() Status) *Line {
	return startOnTerminal(prog, stderr, status, false)
}

// StartTaking is Start for the stage whose line is the one
// to show when several stages of a pipeline share the terminal (audit-ship:
// what is delivered): the others' lines give way to it (see Line.lock).
func StartTaking(prog string, stderr io.Writer, status func() Status) *Line {
	return startOnTerminal(prog, stderr, status, true)
}

func startOnTerminal(prog string, stderr io.Writer, status func() Status, take bool) *Line {
	f, ok := stderr.(*os.File)
	if !ok || !isTerminal(f) {
		return nil
	}
	return startProgressOn(prog, stderr, f, status, Every, take)
}

func startProgress(prog string, w io.Writer, status func() Status, every time.Duration) *Line {
	return startProgressOn(prog, w, nil, status, every, false)
}

// startProgressOn draws on w; tty, if not nil, is the terminal w writes to,
// which the stages sharing it coordinate on.
func startProgressOn(prog string, w io.Writer, tty *os.File, status func() Status, every time.Duration, take bool) *Line {
	p := &Line{prog: prog, w: w, status: status, stop: make(chan struct{}), done: make(chan struct{}), lock: -1, take: take}
	if tty != nil {
		p.lock = openLock(tty)
	}
	p.samples = append(p.samples, sample{time.Now(), status().Records})
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				p.draw(now)
			}
		}
	}()
	return p
}

// rateWindow is how far back the records/s figure looks.
const rateWindow = 5 * time.Second

func (p *Line) draw(now time.Time) {
	s := p.status()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, sample{now, s.Records})
	for len(p.samples) > 2 && now.Sub(p.samples[1].t) >= rateWindow {
		p.samples = p.samples[1:]
	}
	first := p.samples[0]
	rate := 0.0
	if d := now.Sub(first.t).Seconds(); d > 0 {
		rate = float64(s.Records-first.n) / d
	}
	if !p.mayDraw() {
		p.clear()
		return
	}
	p.put(formatStatus(p.prog, s, rate))
	if !p.take && p.lock >= 0 {
		unlockTTY(p.lock)
	}
}

// mayDraw reports whether this line may be drawn now (see Line.lock);
// a stage that yields the terminal holds the lock until its draw is done.
// p.mu is held.
func (p *Line) mayDraw() bool {
	switch {
	case p.lock < 0:
		return true
	case p.take:
		if !p.held {
			p.held = tryLockTTY(p.lock)
		}
		return p.held
	}
	return tryLockTTY(p.lock)
}

// formatStatus is the progress line for s at rate records/s.
func formatStatus(prog string, s Status, rate float64) string {
	var b strings.Builder
	noun := "records"
	if s.Records == 1 {
		noun = "record"
	}
	fmt.Fprintf(&b, "%s: %s %s", prog, group(s.Records), noun)
	if s.Verb != "" {
		b.WriteString(" " + s.Verb)
	}
	fmt.Fprintf(&b, ", %s/s", group(int64(rate+0.5)))
	if s.Seq > 0 {
		fmt.Fprintf(&b, ", seq %d", s.Seq)
	}
	if s.Head > 0 {
		left := s.Head - s.Seq
		switch {
		case left <= 0:
			fmt.Fprintf(&b, " (at the head)")
		default:
			fmt.Fprintf(&b, " of %d", s.Head)
			if rate >= 1 {
				fmt.Fprintf(&b, ", %s left", roundDuration(time.Duration(float64(left)/rate*float64(time.Second))))
			}
		}
	}
	if s.Note != "" {
		b.WriteString(", " + s.Note)
	}
	return b.String()
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

// group writes n with thousands separators: 1234567 -> 1,234,567.
func group(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// put draws line over the one on screen. p.mu is held.
func (p *Line) put(line string) {
	pad := ""
	if n := p.drawn - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.drawn = len(line)
}

// clear removes the line on screen. p.mu is held.
func (p *Line) clear() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.drawn))
		p.drawn = 0
	}
}

// Writer returns the writer other stderr output must go through: each
// write clears the progress line first (it is redrawn at the next tick).
// On a nil Progress it returns stderr itself.
func (p *Line) Writer(stderr io.Writer) io.Writer {
	if p == nil {
		return stderr
	}
	return progressWriter{p}
}

type progressWriter struct{ p *Line }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.clear()
	return w.p.w.Write(b)
}

// Stop stops drawing and clears the line, before the stage prints its
// summary.
func (p *Line) Stop() {
	if p == nil {
		return
	}
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	<-p.done
	p.mu.Lock()
	p.clear()
	if p.lock >= 0 {
		closeLock(p.lock) // lets the lock go
		p.lock = -1
	}
	p.mu.Unlock()
}
