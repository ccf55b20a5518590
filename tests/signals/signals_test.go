// Package signals checks, with the real binaries as separate processes,
// that every stage stops promptly in every state it can wait in (quiet
// input, blocked output, a SIEM that does not answer, a full ack FIFO, a
// stalled store): on the first SIGTERM or SIGINT with exit 0 and its
// summary (a clean stop), and once its stdout's reader went away with exit
// 141, quietly, also while its input is quiet (issue 12, items 3a and 3b).
//
// AUDITPIPE_TEST_BIN=DIR runs the binaries in DIR instead of building them
// (to show a row failing on an older build).
package signals

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

const (
	rows     = 3000 // records in the test database: > 1 MiB, more than a pipe holds
	exporter = "file:sig"
	// limit is how long a stop may take. The target is well under 2 s;
	// the slack is for a shared, slow machine.
	limit = 5 * time.Second
)

var (
	bin      string // the binaries
	fixtures string // db, records, batches, keys
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "signals")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		bin = os.Getenv("AUDITPIPE_TEST_BIN")
		if bin == "" {
			bin = filepath.Join(dir, "bin")
			cmd := exec.Command("go", "build", "-o", bin+"/", "./cmd/...")
			cmd.Dir = "../.."
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
				return 1
			}
		}
		fixtures = filepath.Join(dir, "fx")
		if err := makeFixtures(fixtures); err != nil {
			fmt.Fprintln(os.Stderr, "fixtures:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func sh(script string) error {
	cmd := exec.Command("sh", "-ec", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return nil
}

func makeFixtures(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return sh(fmt.Sprintf(`cd %s
audit-sample --count %d --seed 7 --size 500 | audit-append --db audit.db --quiet
audit-read --db audit.db --quiet > records.ndjson
audit-batch --quiet --max-count 1 < records.ndjson > batches1.ndjson
audit-batch --quiet < records.ndjson > batches.ndjson
head -n 20 records.ndjson > few.ndjson
audit-checkpoint keygen --name example.com/audit/sig --signer seal.key --verifier seal.pub
`, dir, rows))
}

func fx(name string) string { return filepath.Join(fixtures, name) }

// Stdin shapes.
const (
	inNone  = iota // /dev/null
	inQuiet        // a pipe: the lines of pre, then nothing, never closed
)

// Stdout shapes.
const (
	outDrain   = iota // a pipe that is read
	outBlocked        // a pipe nobody reads: writes block once it is full
	outNull           // /dev/null
)

// The action that should stop the stage.
const (
	actSignal = iota // SIGTERM
	actSigint        // SIGINT
	actClose         // the reader of stdout goes away
	actNone          // the stage stops by itself
)

type row struct {
	name    string
	prog    string
	args    []string
	in      int
	pre     string // file whose bytes go to stdin first
	out     int
	settle  time.Duration // before the action
	act     int
	want    int    // exit code
	summary string // in stderr (a regexp would be overkill: a substring)
	setup   func(t *testing.T, dir string) []string
}

// stalledServer accepts requests and never answers until the test ends.
func stalledServer(t *testing.T) string {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

// deadPort is a 127.0.0.1 port nothing listens on.
func deadPort(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

func rowsMatrix() []row {
	db := fx("audit.db")
	seal := func(t *testing.T, dir string) []string {
		return []string{"seal", "--signer", fx("seal.key"), "--out", filepath.Join(dir, "ckpt.ndjson"), "--interval", "0"}
	}
	fileShip := func(extra ...string) func(t *testing.T, dir string) []string {
		return func(t *testing.T, dir string) []string {
			return append([]string{"--kind", "file", "--path", filepath.Join(dir, "out.ndjson"), "--no-fsync", "--exporter", exporter}, extra...)
		}
	}
	splunkShip := func(url func(t *testing.T) string, extra ...string) func(t *testing.T, dir string) []string {
		return func(t *testing.T, dir string) []string {
			return append([]string{"--kind", "splunk", "--url", url(t), "--token", "env:SIG_TOKEN", "--exporter", "splunk:sig",
				"--timeout", "60s", "--acks", "-"}, extra...)
		}
	}
	var rs []row
	// Every stage, every waiting state, stopped by SIGTERM (and SIGINT for
	// the quiet-input rows): exit 0 and the summary.
	for _, act := range []int{actSignal, actSigint} {
		sig := map[int]string{actSignal: "SIGTERM", actSigint: "SIGINT"}[act]
		rs = append(rs,
			row{name: "read/follow-quiet/" + sig, prog: "audit-read", args: []string{"--db", db, "--follow", "--poll", "100ms"}, out: outDrain, act: act, summary: "audit-read: "},
			row{name: "read/quiet-stdin/" + sig, prog: "audit-read", args: []string{"-"}, in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: act, summary: "audit-read: "},
			row{name: "verify/quiet-input/" + sig, prog: "audit-verify", in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: act, summary: "audit-verify: 20 records"},
			row{name: "batch/quiet-input/" + sig, prog: "audit-batch", in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: act, summary: "audit-batch: 20 records"},
			row{name: "seal/quiet-input/" + sig, prog: "audit-checkpoint", setup: seal, in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: act, summary: "audit-checkpoint: "},
			row{name: "ship/no-input-yet/" + sig, prog: "audit-ship", setup: fileShip("--acks", "-"), in: inQuiet, out: outDrain, act: act, summary: "audit-ship: " + exporter},
			row{name: "ship/quiet-records/" + sig, prog: "audit-ship", setup: fileShip("--acks", "-"), in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: act, summary: "audit-ship: " + exporter},
			row{name: "ship/quiet-batches/" + sig, prog: "audit-ship", setup: fileShip("--acks", "-"), in: inQuiet, pre: fx("batches.ndjson"), out: outDrain, act: act, summary: "audit-ship: " + exporter},
			row{name: "append/quiet-input/" + sig, prog: "audit-append", args: nil, setup: func(t *testing.T, dir string) []string {
				return []string{"--db", filepath.Join(dir, "new.db")}
			}, in: inQuiet, out: outDrain, act: act},
			row{name: "ack/quiet-fifo/" + sig, prog: "audit-ack", setup: func(t *testing.T, dir string) []string {
				return []string{"--db", db, "--exporter", "file:ackquiet", "--fifo", filepath.Join(dir, "acks.fifo")}
			}, in: inNone, out: outDrain, act: act, summary: "audit-ack: "},
		)
	}
	rs = append(rs,
		// Blocked output: the downstream does not read.
		row{name: "read/blocked-output", prog: "audit-read", args: []string{"--db", db}, out: outBlocked, settle: time.Second, act: actSignal, summary: "audit-read: "},
		row{name: "verify/blocked-output", prog: "audit-verify", in: inQuiet, pre: fx("records.ndjson"), out: outBlocked, settle: time.Second, act: actSignal, summary: "audit-verify: "},
		row{name: "batch/blocked-output", prog: "audit-batch", in: inQuiet, pre: fx("records.ndjson"), out: outBlocked, settle: time.Second, act: actSignal, summary: "audit-batch: "},
		row{name: "seal/blocked-output", prog: "audit-checkpoint", setup: seal, in: inQuiet, pre: fx("records.ndjson"), out: outBlocked, settle: time.Second, act: actSignal, summary: "audit-checkpoint: "},
		row{name: "sample/blocked-output", prog: "audit-sample", args: []string{"--count", "1000000"}, out: outBlocked, settle: time.Second, act: actSignal},
		// A SIEM that never answers (a request in flight past the stop):
		// the drain timeout bounds it.
		row{name: "ship/request-in-flight", prog: "audit-ship", setup: splunkShip(stalledServer, "--drain-timeout", "1s"), in: inQuiet, pre: fx("batches.ndjson"), out: outDrain, settle: time.Second, act: actSignal, summary: "audit-ship: splunk:sig"},
		// Retry backoff against a port nothing listens on.
		row{name: "ship/retry-backoff", prog: "audit-ship", setup: splunkShip(deadPort, "--min-backoff", "20s", "--max-backoff", "20s"), in: inQuiet, pre: fx("batches.ndjson"), out: outDrain, settle: time.Second, act: actSignal, summary: "audit-ship: splunk:sig"},
		// A full ack FIFO: a reader that holds it open and never reads.
		row{name: "ship/full-ack-fifo", prog: "audit-ship", setup: func(t *testing.T, dir string) []string {
			fifo := filepath.Join(dir, "acks.fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(fifo, os.O_RDWR, 0) // a reader that never reads
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return fileShip("--acks", fifo, "--drain-timeout", "1s")(t, dir)
		}, in: inQuiet, pre: fx("batches1.ndjson"), out: outDrain, settle: 2 * time.Second, act: actSignal, want: 8, summary: "audit-ship: " + exporter},
		// An unreachable SIEM with a bound: it gives up by itself (exit 8),
		// while its input is quiet.
		row{name: "ship/give-up-after", prog: "audit-ship", setup: splunkShip(deadPort, "--give-up-after", "1s", "--min-backoff", "50ms", "--max-backoff", "200ms"), in: inQuiet, pre: fx("batches.ndjson"), out: outDrain, settle: 10 * time.Millisecond, act: actNone, want: 8, summary: "audit-ship: splunk:sig"},
		// A self-pause (a poison record, --on-poison pause) while the input
		// is quiet: exit 6 at once, not at the next input.
		row{name: "ship/self-paused", prog: "audit-ship", setup: func(t *testing.T, dir string) []string {
			hec := hecfake.New(hecfake.Options{Poison: func(e *hecfake.Event) bool { return strings.Contains(e.Event, `"seq":5,`) }})
			t.Cleanup(hec.Close)
			return []string{"--kind", "splunk", "--url", hec.URL, "--token", "env:SIG_TOKEN", "--exporter", "splunk:sig", "--acks", "-", "--on-poison", "pause"}
		}, in: inQuiet, pre: fx("few.ndjson"), out: outDrain, settle: 10 * time.Millisecond, act: actNone, want: 6, summary: "audit-ship: splunk:sig"},
		// audit-ack reading acks from a quiet stdin.
		row{name: "ack/quiet-stdin", prog: "audit-ack", setup: func(t *testing.T, dir string) []string {
			return []string{"--db", db, "--exporter", "file:ackstdin"}
		}, in: inQuiet, out: outDrain, act: actSignal, summary: "audit-ack: "},
		// A store that does not answer.
		row{name: "fetch/stalled-store", prog: "audit-fetch", setup: func(t *testing.T, dir string) []string {
			return []string{"--url", stalledServer(t)}
		}, out: outDrain, act: actSignal},

		// The reader of stdout goes away while the input is quiet: 141 at once.
		row{name: "read/follow-quiet/output-closed", prog: "audit-read", args: []string{"--db", db, "--follow", "--poll", "100ms"}, out: outDrain, act: actClose, want: 141},
		row{name: "verify/quiet-input/output-closed", prog: "audit-verify", in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: actClose, want: 141},
		row{name: "batch/quiet-input/output-closed", prog: "audit-batch", in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: actClose, want: 141},
		row{name: "seal/quiet-input/output-closed", prog: "audit-checkpoint", setup: seal, in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: actClose, want: 141},
		row{name: "ship/quiet-records/output-closed", prog: "audit-ship", setup: fileShip("--acks", "-"), in: inQuiet, pre: fx("few.ndjson"), out: outDrain, act: actClose, want: 141},
		row{name: "ship/quiet-batches/output-closed", prog: "audit-ship", setup: fileShip("--acks", "-"), in: inQuiet, pre: fx("batches.ndjson"), out: outDrain, act: actClose, want: 141},
	)
	return rs
}

// syncBuf is a goroutine-safe stderr.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestStopPromptly(t *testing.T) {
	for _, r := range rowsMatrix() {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := r.args
			if r.setup != nil {
				args = append(args, r.setup(t, dir)...)
			}
			cmd := exec.Command(filepath.Join(bin, r.prog), args...)
			cmd.Env = append(os.Environ(), "SIG_TOKEN=sig-token")
			stderr := &syncBuf{}
			cmd.Stderr = stderr

			var inW *os.File
			switch r.in {
			case inQuiet:
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stdin, inW = pr, pw
				defer pr.Close()
				t.Cleanup(func() { pw.Close() })
			}
			outR, outW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = outW
			if r.out == outNull {
				cmd.Stdout = nil
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			outW.Close()
			if c, ok := cmd.Stdin.(*os.File); ok {
				c.Close()
			}
			t.Cleanup(func() { cmd.Process.Kill() })
			var drained sync.WaitGroup
			if r.out == outDrain {
				drained.Add(1)
				go func() { defer drained.Done(); io.Copy(io.Discard, outR) }()
			}
			if inW != nil && r.pre != "" {
				go func() {
					f, err := os.Open(r.pre)
					if err == nil {
						io.Copy(inW, f)
						f.Close()
					}
				}()
			}
			settle := r.settle
			if settle == 0 {
				settle = 700 * time.Millisecond
			}
			time.Sleep(settle)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if r.act != actNone {
				select {
				case err := <-done:
					t.Fatalf("exited before the action: %v\n%s", err, stderr.String())
				default:
				}
			}
			start := time.Now()
			switch r.act {
			case actSignal:
				cmd.Process.Signal(syscall.SIGTERM)
			case actSigint:
				cmd.Process.Signal(syscall.SIGINT)
			case actClose:
				outR.Close()
			}
			var werr error
			select {
			case werr = <-done:
			case <-time.After(limit):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still running %v after the action\nstderr:\n%s", limit, stderr.String())
			}
			took := time.Since(start)
			code := exitCode(werr)
			if code != r.want {
				t.Errorf("exit %d, want %d (after %v)\nstderr:\n%s", code, r.want, took, stderr.String())
			}
			if r.summary != "" && !strings.Contains(stderr.String(), r.summary) {
				t.Errorf("no summary %q on stderr:\n%s", r.summary, stderr.String())
			}
			if r.want == 141 && strings.Contains(stderr.String(), "broken pipe") {
				t.Errorf("exit 141 should be quiet, stderr:\n%s", stderr.String())
			}
			t.Logf("stopped in %v, exit %d", took.Round(time.Millisecond), code)
			if r.out != outDrain {
				outR.Close()
			}
			drained.Wait()
		})
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}
