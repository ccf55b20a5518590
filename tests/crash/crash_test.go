// Package crash proves at-least-once delivery across crashes: it runs the
// whole pipeline as real processes (audit-read --follow | audit-verify |
// audit-batch | audit-ship, acks over a FIFO to audit-ack) into a HEC
// receiver while an appender writes to the database, kills -9 a random stage
// (or the acker, or takes the receiver down) again and again, restarts, and
// then checks that every seq arrived at least once, that the committed cursor
// never passed a record the receiver did not have, and that duplicates stay
// within what was in flight at each crash.
package crash

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/lib/chain"
)

const (
	token      = "crash-test-token"
	exporter   = "splunk:crash"
	maxCount   = 100 // records per batch
	inflight   = 4
	totalEvent = 12000
)

// build compiles the binaries once into dir.
func build(t *testing.T, dir string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

type receiver struct {
	srv    *hecfake.Server
	down   atomic.Bool
	faults atomic.Int64
	rng    *rand.Rand
	mu     sync.Mutex
}

func (r *receiver) seqs() map[int64]int {
	got := map[int64]int{}
	for _, e := range r.srv.Events() {
		var seq int64
		if s, ok := e.Fields["seq"].(string); ok {
			fmt.Sscan(s, &seq)
		}
		got[seq]++
	}
	return got
}

func TestCrashAtLeastOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build(t, bin)
	db := filepath.Join(dir, "audit.db")
	fifo := filepath.Join(dir, "acks.fifo")

	rcv := &receiver{rng: rand.New(rand.NewPCG(1, 2))}
	rcv.srv = hecfake.New(hecfake.Options{
		Tokens: []string{token},
		Fault: func(req *hecfake.Request) hecfake.Fault {
			if req.Path != "/services/collector/event" {
				return hecfake.Fault{}
			}
			if rcv.down.Load() {
				rcv.faults.Add(1)
				return hecfake.Fault{Drop: true}
			}
			rcv.mu.Lock()
			x := rcv.rng.IntN(100)
			rcv.mu.Unlock()
			if x < 3 {
				rcv.faults.Add(1)
				return hecfake.Fault{Status: 503, Code: 9, Text: "Server is busy", RetryAfter: "0"}
			}
			return hecfake.Fault{}
		},
	})
	defer rcv.srv.Close()

	// The live appender: events trickle into the database while we crash things.
	appendDone := startAppender(t, bin, db, totalEvent)

	// The invariant checker: the committed cursor never passes a record the
	// receiver does not hold.
	stopCheck := make(chan struct{})
	var violations []string
	var vmu sync.Mutex
	checkDone := make(chan struct{})
	go func() {
		defer close(checkDone)
		for {
			select {
			case <-stopCheck:
				return
			case <-time.After(40 * time.Millisecond):
			}
			cur := cursor(t, db)
			if cur == 0 {
				continue
			}
			got := rcv.seqs()
			for s := int64(1); s <= cur; s++ {
				if got[s] == 0 {
					vmu.Lock()
					violations = append(violations, fmt.Sprintf("cursor %d passed seq %d, which the receiver never got", cur, s))
					vmu.Unlock()
					break
				}
			}
		}
	}()

	rng := rand.New(rand.NewPCG(42, 7))
	kinds := []string{"audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack", "receiver"}
	killed := map[string]int{}
	rounds := 14
	var ack *proc
	for round := 0; round < rounds; round++ {
		if ack == nil {
			ack = start(t, bin, nil, nil, "audit-ack", "--fifo", fifo, "--db", db, "--exporter", exporter, "--commit-interval", "20ms", "--quiet")
		}
		p := startPipeline(t, bin, db, fifo, rcv.srv.URL, true)
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		victim := kinds[rng.IntN(len(kinds))]
		killed[victim]++
		switch victim {
		case "audit-ack":
			ack.kill()
			ack = nil
		case "receiver":
			rcv.down.Store(true)
			time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
			rcv.down.Store(false)
		default:
			p.byName[victim].kill()
		}
		// The rest of the pipeline dies of EOF or EPIPE; whatever lingers is
		// killed too, as a supervisor would before restarting.
		time.Sleep(150 * time.Millisecond)
		p.killAll()
	}
	if ack == nil {
		ack = start(t, bin, nil, nil, "audit-ack", "--fifo", fifo, "--db", db, "--exporter", exporter, "--commit-interval", "20ms", "--quiet")
	}
	<-appendDone

	// Final drain: no follow; ends at the head.
	p := startPipeline(t, bin, db, fifo, rcv.srv.URL, false)
	if err := p.wait(60 * time.Second); err != nil {
		t.Fatalf("final drain: %v\n%s", err, p.stderr())
	}
	// Let the acker commit, then stop it cleanly.
	deadline := time.Now().Add(10 * time.Second)
	for cursor(t, db) < totalEvent && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ack.signal(syscall.SIGTERM)
	ack.wait(10 * time.Second)
	close(stopCheck)
	<-checkDone

	got := rcv.seqs()
	var missing []int64
	dups := 0
	for s := int64(1); s <= totalEvent; s++ {
		if got[s] == 0 {
			missing = append(missing, s)
		}
		if got[s] > 1 {
			dups += got[s] - 1
		}
	}
	cur := cursor(t, db)
	t.Logf("rounds %d, kills %v, receiver faults %d, events stored %d, distinct %d, duplicates %d, cursor %d",
		rounds, killed, rcv.faults.Load(), len(rcv.srv.Events()), len(got), dups, cur)
	if len(missing) > 0 {
		t.Errorf("%d seqs never delivered (lost), first %v", len(missing), missing[:min(10, len(missing))])
	}
	if cur != totalEvent {
		t.Errorf("cursor %d after the final drain, want %d", cur, totalEvent)
	}
	vmu.Lock()
	if len(violations) > 0 {
		t.Errorf("cursor ran ahead of delivery: %v", violations[:min(5, len(violations))])
	}
	vmu.Unlock()
	// Each crash can re-send at most what was in flight or acked but not
	// yet committed: the batches in flight, the batches in the pipes, and
	// the acks of one commit interval. Bound it generously per crash.
	if bound := (rounds + 1) * (inflight + 8) * maxCount; dups > bound {
		t.Errorf("%d duplicates, more than the in-flight bound %d", dups, bound)
	}
	// What the receiver holds is the chain: the same bytes for every copy
	// of a seq, and it verifies end to end.
	verifyStored(t, rcv.srv.Events())
}

func verifyStored(t *testing.T, events []hecfake.Event) {
	t.Helper()
	bySeq := map[int64]string{}
	var p chain.LineParser
	for _, e := range events {
		r, err := p.Parse([]byte(e.Event))
		if err != nil {
			t.Fatalf("stored event is not a record line: %v", err)
		}
		if prev, ok := bySeq[r.Seq]; ok && prev != e.Event {
			t.Fatalf("seq %d stored twice with different bytes", r.Seq)
		}
		bySeq[r.Seq] = e.Event
	}
	v := chain.NewVerifier(chain.Options{})
	for s := int64(1); s <= int64(len(bySeq)); s++ {
		if _, f := v.Check(s, []byte(bySeq[s])); len(f) > 0 {
			t.Fatalf("stored chain breaks at seq %d: %v", s, f)
		}
	}
	if f := v.Finish(); len(f) > 0 || v.Failed() {
		t.Fatalf("stored chain: %v", f)
	}
}

func cursor(t *testing.T, db string) int64 {
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(2000)")
	if err != nil {
		return 0
	}
	defer d.Close()
	var n int64
	if err := d.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?`, exporter).Scan(&n); err != nil {
		return 0
	}
	return n
}

func startAppender(t *testing.T, bin, db string, n int) <-chan struct{} {
	t.Helper()
	// The first rows exist before the pipeline starts, so the table does.
	seed := exec.Command(filepath.Join(bin, "audit-sample"), "--count", "500", "--seed", "1")
	app := exec.Command(filepath.Join(bin, "audit-append"), "--db", db, "--quiet")
	pipe, _ := seed.StdoutPipe()
	app.Stdin = pipe
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	if err := seed.Run(); err != nil {
		t.Fatal(err)
	}
	if err := app.Wait(); err != nil {
		t.Fatalf("audit-append: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		gen := exec.Command(filepath.Join(bin, "audit-sample"), "--count", fmt.Sprint(n-500), "--seed", "2", "--start-ts", "0")
		out, err := gen.Output()
		if err != nil {
			t.Errorf("audit-sample: %v", err)
			return
		}
		app := exec.Command(filepath.Join(bin, "audit-append"), "--db", db, "--quiet", "--batch", "50")
		in, _ := app.StdinPipe()
		app.Stderr = os.Stderr
		if err := app.Start(); err != nil {
			t.Errorf("audit-append: %v", err)
			return
		}
		sc := bufio.NewScanner(bufioReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		i := 0
		for sc.Scan() {
			in.Write(append(sc.Bytes(), '\n'))
			if i++; i%100 == 0 {
				time.Sleep(25 * time.Millisecond) // ~4k events/s: a live log
			}
		}
		in.Close()
		if err := app.Wait(); err != nil {
			t.Errorf("audit-append: %v", err)
		}
	}()
	return done
}

func bufioReader(b []byte) io.Reader { return &byteReader{b: b} }

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

type proc struct {
	name string
	cmd  *exec.Cmd
	errb *syncBuf
	done chan error
}

type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.b) < 1<<16 {
		s.b = append(s.b, p...)
	}
	return len(p), nil
}

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return string(s.b) }

func start(t *testing.T, bin string, stdin io.Reader, stdout io.Writer, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	p := &proc{name: name, cmd: cmd, errb: &syncBuf{}, done: make(chan error, 1)}
	cmd.Stderr = p.errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- cmd.Wait() }()
	return p
}

func (p *proc) kill()                   { p.cmd.Process.Signal(syscall.SIGKILL) }
func (p *proc) signal(s syscall.Signal) { p.cmd.Process.Signal(s) }
func (p *proc) wait(d time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		p.kill()
		return fmt.Errorf("%s did not exit within %v", p.name, d)
	}
}

type pipeline struct {
	procs  []*proc
	byName map[string]*proc
}

// startPipeline wires the four stages with OS pipes, as a shell would.
func startPipeline(t *testing.T, bin, db, fifo, url string, follow bool) *pipeline {
	t.Helper()
	readArgs := []string{"--db", db, "--from-cursor", exporter, "--quiet"}
	if follow {
		readArgs = append(readArgs, "--follow")
	}
	stages := []struct {
		name string
		args []string
	}{
		{"audit-read", readArgs},
		{"audit-verify", []string{"--db", db, "--from-cursor", exporter, "--quiet"}},
		{"audit-batch", []string{"--siem", "splunk", "--max-count", fmt.Sprint(maxCount), "--quiet"}},
		{"audit-ship", []string{"--kind", "splunk", "--url", url, "--token", "env:CRASH_HEC_TOKEN", "--exporter", exporter,
			"--acks", fifo, "--inflight", fmt.Sprint(inflight), "--min-backoff", "10ms", "--max-backoff", "200ms", "--quiet"}},
	}
	os.Setenv("CRASH_HEC_TOKEN", token)
	p := &pipeline{byName: map[string]*proc{}}
	var in io.Reader
	for i, s := range stages {
		var out io.Writer
		var r, w *os.File
		if i < len(stages)-1 {
			var err error
			r, w, err = os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			out = w
		}
		pr := start(t, bin, in, out, s.name, s.args...)
		if w != nil {
			w.Close() // the child holds its own copy
		}
		if f, ok := in.(*os.File); ok {
			f.Close()
		}
		in = r
		p.procs = append(p.procs, pr)
		p.byName[s.name] = pr
	}
	return p
}

func (p *pipeline) killAll() {
	for _, pr := range p.procs {
		pr.kill()
	}
	for _, pr := range p.procs {
		pr.wait(5 * time.Second)
	}
}

func (p *pipeline) wait(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, pr := range p.procs {
		select {
		case err := <-pr.done:
			pr.done <- err
			if err != nil {
				return fmt.Errorf("%s: %v", pr.name, err)
			}
		case <-ctx.Done():
			p.killAll()
			return fmt.Errorf("pipeline did not finish within %v", d)
		}
	}
	return nil
}

func (p *pipeline) stderr() string {
	s := ""
	for _, pr := range p.procs {
		s += pr.name + ": " + pr.errb.String() + "\n"
	}
	return s
}
