package signals

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

type stage struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuf
	done   chan struct{}
	err    error
	at     time.Time // when it exited
}

// startPipeline starts the stages connected by pipes, all in one new
// process group (as a shell job is), and returns them with the group id.
// The last stage's stdout is drained.
func startPipeline(t *testing.T, env []string, stages ...[]string) ([]*stage, int) {
	t.Helper()
	var ps []*stage
	var prevR *os.File
	pgid := 0
	for i, args := range stages {
		cmd := exec.Command(filepath.Join(bin, args[0]), args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		st := &stage{name: args[0], cmd: cmd, stderr: &syncBuf{}, done: make(chan struct{})}
		cmd.Stderr = st.stderr
		if prevR != nil {
			cmd.Stdin = prevR
		}
		var r, w *os.File
		var err error
		r, w, err = os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if pgid == 0 {
			pgid = cmd.Process.Pid
		}
		w.Close()
		if prevR != nil {
			prevR.Close()
		}
		prevR = r
		if i == len(stages)-1 {
			go io.Copy(io.Discard, r)
		}
		go func() { st.err = cmd.Wait(); st.at = time.Now(); close(st.done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-st.done })
		ps = append(ps, st)
	}
	return ps, pgid
}

func waitAll(t *testing.T, ps []*stage, from time.Time) {
	t.Helper()
	deadline := time.After(limit)
	for _, p := range ps {
		select {
		case <-p.done:
		case <-deadline:
			for _, q := range ps {
				select {
				case <-q.done:
				default:
					t.Errorf("%s still running %v after the action\n%s", q.name, limit, q.stderr.String())
				}
			}
			t.FailNow()
		}
	}
	for _, p := range ps {
		t.Logf("%s: exit %d after %v", p.name, exitCode(p.err), p.at.Sub(from).Round(time.Millisecond))
	}
}

func copyDB(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	b, err := os.ReadFile(fx("audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestPipelineCtrlCBusy (3b): as TestPipelineCtrlC, while the pipes are
// full (the SIEM does not answer): each stage stops although its
// downstream does not read, and the broken pipe left by a downstream that
// stopped first is part of the clean stop: exit 0 and the summary.
func TestPipelineCtrlCBusy(t *testing.T) {
	db := copyDB(t)
	ps, pgid := startPipeline(t, []string{"SIG_TOKEN=sig-token"},
		[]string{"audit-read", "--db", db, "--follow", "--poll", "100ms"},
		[]string{"audit-verify"},
		[]string{"audit-batch", "--max-count", "10"},
		[]string{"audit-ship", "--kind", "splunk", "--url", stalledServer(t), "--token", "env:SIG_TOKEN", "--exporter", "splunk:sig",
			"--acks", "-", "--drain-timeout", "1s", "--inflight", "1"},
	)
	time.Sleep(2 * time.Second) // the pipes fill
	start := time.Now()
	syscall.Kill(-pgid, syscall.SIGINT)
	waitAll(t, ps, start)
	summaries := map[string]string{"audit-read": "audit-read: ", "audit-verify": "audit-verify: ", "audit-batch": "audit-batch: ",
		"audit-ship": "audit-ship: splunk:sig"}
	for _, p := range ps {
		if c := exitCode(p.err); c != 0 {
			t.Errorf("%s: exit %d, want 0\n%s", p.name, c, p.stderr.String())
		}
		if !strings.Contains(p.stderr.String(), summaries[p.name]) {
			t.Errorf("%s: no summary:\n%s", p.name, p.stderr.String())
		}
	}
}

// TestPipelineCtrlC (3b): SIGINT to the whole pipeline's process group, as
// Ctrl-C in a shell sends it, while the log is quiet: every stage exits 0
// with its summary; none reports the broken pipe its downstream's exit
// made (it used to be 141 from read, verify and batch, with no summary).
func TestPipelineCtrlC(t *testing.T) {
	db := copyDB(t)
	dir := t.TempDir()
	ps, pgid := startPipeline(t, nil,
		[]string{"audit-read", "--db", db, "--follow", "--poll", "100ms"},
		[]string{"audit-verify"},
		[]string{"audit-batch", "--max-interval", "200ms"},
		[]string{"audit-ship", "--kind", "file", "--path", filepath.Join(dir, "out.ndjson"), "--gzip=false", "--exporter", exporter, "--acks", "-"},
		[]string{"audit-ack", "--db", db, "--exporter", exporter},
	)
	// Wait until everything was shipped and acked: the log is quiet then.
	deadline := time.Now().Add(30 * time.Second)
	for fileLines(filepath.Join(dir, "out.ndjson")) < rows {
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline did not ship %d records in 30s", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	start := time.Now()
	syscall.Kill(-pgid, syscall.SIGINT)
	waitAll(t, ps, start)
	summaries := map[string]string{"audit-read": "audit-read: ", "audit-verify": "audit-verify: ", "audit-batch": "audit-batch: ",
		"audit-ship": "audit-ship: " + exporter, "audit-ack": "audit-ack: "}
	for _, p := range ps {
		if c := exitCode(p.err); c != 0 {
			t.Errorf("%s: exit %d, want 0\n%s", p.name, c, p.stderr.String())
		}
		if !strings.Contains(p.stderr.String(), summaries[p.name]) {
			t.Errorf("%s: no summary:\n%s", p.name, p.stderr.String())
		}
	}
}

func fileLines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// TestUpstreamExitsWhenShipStops (3a): audit-ship stops (the SIEM refuses
// the token: exit 7) while the log is quiet; the stages before it notice
// their closed output at once and exit 141, instead of at the next rows
// written to the database.
func TestUpstreamExitsWhenShipStops(t *testing.T) {
	db := copyDB(t)
	hec := hecfake.New(hecfake.Options{Tokens: []string{"the-right-token"}})
	defer hec.Close()
	ps, _ := startPipeline(t, []string{"SIG_TOKEN=a-wrong-token"},
		[]string{"audit-read", "--db", db, "--follow", "--poll", "100ms", "--from-seq", strconv.Itoa(rows - 9)},
		[]string{"audit-verify"},
		[]string{"audit-batch", "--max-interval", "100ms"},
		[]string{"audit-ship", "--kind", "splunk", "--url", hec.URL, "--token", "env:SIG_TOKEN", "--gzip=false",
			"--exporter", "splunk:sig", "--acks", "-", "--pause-after", "2", "--refused-backoff", "300ms"},
	)
	select {
	case <-ps[3].done:
	case <-time.After(30 * time.Second):
		t.Fatalf("audit-ship did not stop\n%s", ps[3].stderr.String())
	}
	if c := exitCode(ps[3].err); c != 7 {
		t.Fatalf("audit-ship: exit %d, want 7 (token refused)\n%s", c, ps[3].stderr.String())
	}
	waitAll(t, ps, ps[3].at)
	for _, p := range ps[:3] {
		if c := exitCode(p.err); c != 141 {
			t.Errorf("%s: exit %d, want 141\n%s", p.name, c, p.stderr.String())
		}
	}
}

// TestUpstreamExitsWhenVerifyFails (3a): audit-verify fails closed (exit
// 3) at a record that does not link to its anchor, while the log is quiet:
// audit-read exits 141 at once.
func TestUpstreamExitsWhenVerifyFails(t *testing.T) {
	db := copyDB(t)
	ps, _ := startPipeline(t, nil,
		// Two rows: audit-read has written them all and is quiet when
		// audit-verify fails.
		[]string{"audit-read", "--db", db, "--follow", "--poll", "100ms", "--from-seq", strconv.Itoa(rows - 1)},
		[]string{"audit-verify", "--anchor", strconv.Itoa(rows-2) + ":" + strings.Repeat("0", 64)},
	)
	select {
	case <-ps[1].done:
	case <-time.After(30 * time.Second):
		t.Fatalf("audit-verify did not stop\n%s", ps[1].stderr.String())
	}
	if c := exitCode(ps[1].err); c != 3 {
		t.Fatalf("audit-verify: exit %d, want 3\n%s", c, ps[1].stderr.String())
	}
	waitAll(t, ps, ps[1].at)
	if c := exitCode(ps[0].err); c != 141 {
		t.Errorf("audit-read: exit %d, want 141\n%s", c, ps[0].stderr.String())
	}
}

// TestShipUnusedStdoutClosed: audit-ship with --acks FIFO does not use
// stdout; its reader going away is no reason to stop.
func TestShipUnusedStdoutClosed(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "acks.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	hold, err := os.OpenFile(fifo, os.O_RDWR, 0) // a reader: the few acks fit
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	inR, inW, _ := os.Pipe()
	defer inW.Close()
	outR, outW, _ := os.Pipe()
	cmd := exec.Command(filepath.Join(bin, "audit-ship"), "--kind", "file", "--path", filepath.Join(dir, "out.ndjson"),
		"--exporter", exporter, "--acks", fifo)
	cmd.Stdin, cmd.Stdout = inR, outW
	stderr := &syncBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	b, _ := os.ReadFile(fx("few.ndjson"))
	inW.Write(b)
	time.Sleep(300 * time.Millisecond)
	outR.Close()
	select {
	case err := <-done:
		t.Fatalf("audit-ship exited (%v) when its unused stdout closed\n%s", err, stderr.String())
	case <-time.After(time.Second):
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if c := exitCode(err); c != 0 {
			t.Fatalf("exit %d\n%s", c, stderr.String())
		}
	case <-time.After(limit):
		t.Fatal("no exit after SIGTERM")
	}
}
