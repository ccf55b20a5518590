// Package backpressure shows the pipeline's back-pressure end to end with
// real processes: audit-read --follow | audit-verify | audit-batch |
// audit-ship into a Splunk HEC that is slow for a while, with a live
// appender writing to the database and audit-ack committing the cursor.
//
// While the SIEM is slow the pipes fill, every stage blocks on its stdout
// in turn, and audit-read stops reading: its back-pressure counter rises
// and what it has read falls behind the head of the log, instead of the
// backlog piling up in memory. Each stage's resident memory stays bounded
// (sampled from /proc/PID/status). When the SIEM recovers the pipeline
// catches up, and every seq arrives.
package backpressure

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/internal/metricstest"
	"github.com/auditpipe/auditpipe/lib/metrics"
)

const (
	token    = "backpressure-test-token"
	exporter = "splunk:bp"
	seedRows = 2000
	total    = 30000 // records in the log at the end
	slowFor  = 300 * time.Millisecond
	rssLimit = 64 << 20 // bytes
)

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

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() < 1<<16 {
		s.b.Write(p)
	}
	return len(p), nil
}
func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuf
	done   chan error
}

func start(t *testing.T, stdin io.Reader, stdout io.Writer, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(filepath.Join(bin, name), args...), stderr: &syncBuf{}, done: make(chan error, 1)}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = stdin, stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL, time.Second) })
	return p
}

func (p *proc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

func (p *proc) stop(sig syscall.Signal, d time.Duration) error {
	if !p.exited() {
		p.cmd.Process.Signal(sig)
	}
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		p.cmd.Process.Kill()
		return fmt.Errorf("%s did not exit within %v", p.name, d)
	}
}

func (p *proc) metricsURL(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if a := metricstest.Addr(p.stderr.String()); a != "" {
			return "http://" + a + "/metrics"
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s printed no metrics address:\n%s", p.name, p.stderr.String())
	return ""
}

// rss returns the resident and peak resident memory of pid, in bytes,
// from /proc/PID/status.
func rss(pid int) (cur, peak int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return cur, peak, cur > 0
}

func cursor(db string) int64 {
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(2000)")
	if err != nil {
		return 0
	}
	defer d.Close()
	var n int64
	if d.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?`, exporter).Scan(&n) != nil {
		return 0
	}
	return n
}

// appendRecords appends n generated events to db, paced at about rate
// records/s when rate > 0, and returns when done.
func appendRecords(t *testing.T, bin, db string, n int, seed, rate int) {
	t.Helper()
	gen := exec.Command(filepath.Join(bin, "audit-sample"), "--count", strconv.Itoa(n), "--seed", strconv.Itoa(seed), "--size", "500")
	out, err := gen.Output()
	if err != nil {
		t.Errorf("audit-sample: %v", err)
		return
	}
	app := exec.Command(filepath.Join(bin, "audit-append"), "--db", db, "--quiet", "--batch", "200")
	in, _ := app.StdinPipe()
	var stderr bytes.Buffer
	app.Stderr = &stderr
	if err := app.Start(); err != nil {
		t.Errorf("audit-append: %v", err)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	const chunk = 100
	i := 0
	begin := time.Now()
	for sc.Scan() {
		in.Write(append(sc.Bytes(), '\n'))
		if i++; rate > 0 && i%chunk == 0 {
			if ahead := time.Duration(i)*time.Second/time.Duration(rate) - time.Since(begin); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	in.Close()
	if err := app.Wait(); err != nil {
		t.Errorf("audit-append: %v\n%s", err, stderr.String())
	}
}

type sampleT struct {
	at                   time.Duration
	head, read, verified float64 // declaragent_audit_last_seq, seq read, seq verified
	paused               float64 // audit-read's back-pressure pauses
	blocked              float64 // how long audit-read's write in progress has been blocked
	cursor               float64 // audit-ack's committed cursor
	delivered            int     // events the HEC holds
}

func TestBackpressureSlowSIEM(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build(t, bin)
	db := filepath.Join(dir, "audit.db")
	fifo := filepath.Join(dir, "acks.fifo")
	testStart := time.Now()

	// The SIEM: slow (every event request waits slowFor) until told otherwise.
	var slow atomic.Bool
	slow.Store(true)
	hec := hecfake.New(hecfake.Options{Tokens: []string{token}, Fault: func(r *hecfake.Request) hecfake.Fault {
		if r.Path == "/services/collector/event" && slow.Load() {
			return hecfake.Fault{Delay: slowFor}
		}
		return hecfake.Fault{}
	}})
	defer hec.Close()

	appendRecords(t, bin, db, seedRows, 1, 0) // the table exists before the pipeline starts

	ack := start(t, nil, nil, bin, "audit-ack", "--fifo", fifo, "--db", db, "--exporter", exporter,
		"--commit-interval", "100ms", "--metrics-listen", "127.0.0.1:0", "--quiet")
	ackURL := ack.metricsURL(t)

	os.Setenv("BP_HEC_TOKEN", token)
	stages := []struct {
		name string
		args []string
	}{
		{"audit-read", []string{"--db", db, "--from-cursor", exporter, "--follow", "--quiet", "--metrics-listen", "127.0.0.1:0"}},
		{"audit-verify", []string{"--db", db, "--from-cursor", exporter, "--quiet", "--metrics-listen", "127.0.0.1:0"}},
		{"audit-batch", []string{"--siem", "splunk", "--max-count", "100", "--quiet", "--metrics-listen", "127.0.0.1:0", "--metrics-exporter", exporter}},
		{"audit-ship", []string{"--kind", "splunk", "--url", hec.URL, "--token", "env:BP_HEC_TOKEN", "--exporter", exporter,
			"--acks", fifo, "--inflight", "2", "--quiet"}},
	}
	var procs []*proc
	var in io.Reader
	for i, s := range stages {
		var out io.Writer
		var r, w *os.File
		if i < len(stages)-1 {
			var err error
			if r, w, err = os.Pipe(); err != nil {
				t.Fatal(err)
			}
			out = w
		}
		p := start(t, in, out, bin, s.name, s.args...)
		if w != nil {
			w.Close()
		}
		if f, ok := in.(*os.File); ok {
			f.Close()
		}
		in = r
		procs = append(procs, p)
	}
	readURL, verifyURL := procs[0].metricsURL(t), procs[1].metricsURL(t)

	// Sample every stage's memory, and the metrics, until the end.
	all := append([]*proc{ack}, procs...)
	peakRSS := map[string]int64{}
	var samples []sampleT
	var smu sync.Mutex
	stopSampling := make(chan struct{})
	samplingDone := make(chan struct{})
	go func() {
		defer close(samplingDone)
		for {
			for _, p := range all {
				if cur, peak, ok := rss(p.cmd.Process.Pid); ok {
					smu.Lock()
					peakRSS[p.name] = max(peakRSS[p.name], cur, peak)
					smu.Unlock()
				}
			}
			r, err1 := metricstest.Scrape(readURL)
			v, err2 := metricstest.Scrape(verifyURL)
			a, err3 := metricstest.Scrape(ackURL)
			if err1 == nil && err2 == nil && err3 == nil {
				smu.Lock()
				samples = append(samples, sampleT{
					at:   time.Since(testStart),
					head: r.Get(metrics.NameLastSeq), read: r.Get(metrics.NameStageLastSeq),
					verified: v.Get(metrics.NameStageLastSeq), paused: r.Get(metrics.NameBackpressurePaused),
					blocked: r.Get(metrics.NameBlockedSeconds),
					cursor:  a.Get(metrics.NameExportLastSeq), delivered: len(hec.Events()),
				})
				smu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()

	// The live log: 28000 more records at about 5000/s while the SIEM
	// takes about 600 records/s (2 requests of 100 in flight, 300 ms each).
	appendRecords(t, bin, db, total-seedRows, 2, 5000)
	time.Sleep(2 * time.Second) // a little longer at the slow SIEM
	smu.Lock()
	slowEnd := samples[len(samples)-1]
	slowSamples := append([]sampleT(nil), samples...)
	smu.Unlock()
	slowDelivered := len(hec.Events())
	slow.Store(false) // the SIEM recovers
	recovered := time.Now()

	deadline := time.Now().Add(40 * time.Second)
	for cursor(db) < total {
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d after 40s of a healthy SIEM, want %d\n%s", cursor(db), total, stderrs(all))
		}
		for _, p := range all {
			if p.exited() {
				t.Fatalf("%s exited early: %v\n%s", p.name, <-p.done, stderrs(all))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	catchUp := time.Since(recovered)
	close(stopSampling)
	<-samplingDone

	// Stop: audit-read on SIGTERM, the rest on EOF, then the acker.
	procs[0].stop(syscall.SIGTERM, 10*time.Second)
	for _, p := range procs {
		if err := p.stop(syscall.SIGTERM, 15*time.Second); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.stderr.String())
		}
	}
	if err := ack.stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Errorf("audit-ack: %v", err)
	}

	// What happened while the SIEM was slow.
	var maxLag, maxBlocked float64
	for _, s := range slowSamples {
		maxLag = max(maxLag, s.head-s.read)
		maxBlocked = max(maxBlocked, s.blocked)
	}
	t.Logf("slow SIEM until %v: head %v, read %v, verified %v, cursor %v, delivered %d; audit-read blocked %v times, once for %.1fs at a stretch; read lag up to %v records",
		slowEnd.at.Round(time.Millisecond), slowEnd.head, slowEnd.read, slowEnd.verified, slowEnd.cursor, slowDelivered, slowEnd.paused, maxBlocked, maxLag)
	t.Logf("caught up %d records in %v after the SIEM recovered; whole test %v", total-int(slowEnd.cursor), catchUp.Round(time.Millisecond), time.Since(testStart).Round(time.Millisecond))
	for _, s := range slowSamples[max(0, len(slowSamples)-6):] {
		t.Logf("  t=%-6v head %6.0f read %6.0f verified %6.0f cursor %6.0f delivered %6d paused %3.0f blocked %4.1fs",
			s.at.Round(100*time.Millisecond), s.head, s.read, s.verified, s.cursor, s.delivered, s.paused, s.blocked)
	}
	if slowEnd.paused < 1 {
		t.Errorf("audit-read's %s stayed at %v while the SIEM was slow", metrics.NameBackpressurePaused, slowEnd.paused)
	}
	// A write held for seconds shows in the blocked gauge while it lasts.
	if maxBlocked < 1 {
		t.Errorf("audit-read's %s never passed 1s while the SIEM was slow (max %v)", metrics.NameBlockedSeconds, maxBlocked)
	}
	if slowEnd.head != total {
		t.Errorf("head %v at the end of the slow phase, want %d (the appender is done)", slowEnd.head, total)
	}
	// Intake slowed: reading was held well behind the head (more than the
	// pipes and buffers between the stages can hold, about 10k records).
	if maxLag < 10000 {
		t.Errorf("audit-read was at most %v records behind the head: intake did not slow down", maxLag)
	}
	if float64(slowDelivered) >= slowEnd.head {
		t.Errorf("the slow SIEM got %d of %v records: it was not the bottleneck", slowDelivered, slowEnd.head)
	}

	// Memory stayed bounded in every stage.
	names := []string{"audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack"}
	var report []string
	for _, n := range names {
		report = append(report, fmt.Sprintf("%s %.1f MiB", n, float64(peakRSS[n])/(1<<20)))
		if peakRSS[n] == 0 {
			t.Errorf("no RSS sample of %s", n)
		}
		if peakRSS[n] > rssLimit {
			t.Errorf("%s peaked at %.1f MiB resident, above %d MiB", n, float64(peakRSS[n])/(1<<20), rssLimit>>20)
		}
	}
	t.Logf("peak RSS: %s", strings.Join(report, ", "))

	// Nothing lost: every seq arrived.
	got := map[int64]int{}
	for _, e := range hec.Events() {
		s, _ := e.Fields["seq"].(string)
		seq, _ := strconv.ParseInt(s, 10, 64)
		got[seq]++
	}
	var missing []int64
	dups := 0
	for s := int64(1); s <= total; s++ {
		if got[s] == 0 {
			missing = append(missing, s)
		}
		dups += max(got[s]-1, 0)
	}
	t.Logf("%d events delivered, %d distinct seqs, %d duplicates", len(hec.Events()), len(got), dups)
	if len(missing) > 0 {
		t.Errorf("%d seqs never delivered, first %v", len(missing), missing[:min(10, len(missing))])
	}
	if c := cursor(db); c != total {
		t.Errorf("cursor %d, want %d", c, total)
	}
	if d := time.Since(testStart); d > 60*time.Second {
		t.Errorf("took %v (without the build), want under 60s", d)
	}
}

func stderrs(ps []*proc) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s: %s\n", p.name, p.stderr.String())
	}
	return b.String()
}
