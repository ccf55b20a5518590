package auditbatch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/batcher"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
)

func TestRun(t *testing.T) {
	a := make([]string, 10) // a[1..9]: record lines of one length L
	for i := range a {
		a[i] = rec(int64(i), 0)
	}
	L := len(a[1])
	big := rec(2, 3*L)
	itoa := strconv.Itoa

	// Runs of many records for the presets: seqs 100..n, all the same length.
	many := func(n int, size int) (string, []string) {
		in := recs(100, int64(99+n), size)
		return in, lines(in)
	}
	in501, l501 := many(501, 0)
	in1001, l1001 := many(1001, 0)
	in300, l300 := many(300, 3000)
	perBatch := 800_000 / len(l300[0])

	odd := []string{
		`{"seq":1,"s":"é 😀 ` + "\u2028" + ` \u0000"}`,
		`  {"seq" : 2, "x": [1, 2.50, 1e3], "seq2": {"seq":9}}  `,
		`{"seq":3}`,
	}

	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		stdin      string
		wantStdout string
		wantStderr string // substring; "" means stderr must be empty
		wantCode   int
	}{
		{name: "one batch at EOF", args: []string{"-quiet"}, stdin: recs(1, 3, 0),
			wantStdout: framed(group{50, a[1:4]})},
		{name: "summary on stderr", stdin: recs(1, 3, 0),
			wantStdout: framed(group{50, a[1:4]}),
			wantStderr: "audit-batch: 3 records in 1 batch (0 full, 0 by age, 0 at a seq drop, 1 at end); interval 50ms"},
		{name: "empty input", args: []string{"-quiet"}, stdin: ""},
		// Mark lines (audit-read's control lines for audit-verify) are
		// dropped wherever they are: never in a batch, counted in the summary.
		{name: "mark lines dropped", stdin: `{"mark":{"type":"anchor","seq":0}}` + "\n" + recs(1, 2, 0) + `{"mark":{"type":"hole","from":3,"to":5}}` + "\n" + recs(3, 3, 0) + `{"mark":{}}` + "\n",
			wantStdout: framed(group{50, a[1:4]}),
			wantStderr: "audit-batch: 3 records in 1 batch (0 full, 0 by age, 0 at a seq drop, 1 at end); interval 50ms; 3 mark lines dropped"},
		{name: "only marks", args: []string{"-quiet"}, stdin: `{"mark":{"type":"anchor","seq":0}}` + "\n"},
		{name: "blank lines only", args: []string{"-quiet"}, stdin: "\n  \n\r\n"},
		{name: "count closes and doubles the interval", args: []string{"-quiet", "-max-count", "2"}, stdin: recs(1, 5, 0),
			wantStdout: framed(group{50, a[1:3]}, group{100, a[3:5]}, group{200, a[5:6]})},
		{name: "interval capped at max", args: []string{"-quiet", "-max-count", "1", "-max-interval", "120ms"}, stdin: recs(1, 4, 0),
			wantStdout: framed(group{50, a[1:2]}, group{100, a[2:3]}, group{120, a[3:4]}, group{120, a[4:5]})},
		{name: "bytes: the next record would overflow", args: []string{"-quiet", "-max-bytes", itoa(2*L + L/2)}, stdin: recs(1, 5, 0),
			wantStdout: framed(group{50, a[1:3]}, group{100, a[3:5]}, group{200, a[5:6]})},
		{name: "bytes: reached exactly", args: []string{"-quiet", "-max-bytes", itoa(2 * L)}, stdin: recs(1, 5, 0),
			wantStdout: framed(group{50, a[1:3]}, group{100, a[3:5]}, group{200, a[5:6]})},
		{name: "oversize record goes alone", args: []string{"-quiet", "-max-bytes", itoa(L + 10)}, stdin: a[1] + "\n" + big + "\n" + a[3] + "\n",
			wantStdout: framed(group{50, []string{a[1]}}, group{100, []string{big}}, group{200, []string{a[3]}})},
		{name: "oversize first record", args: []string{"-quiet", "-max-bytes", "10"}, stdin: a[1] + "\n",
			wantStdout: framed(group{50, []string{a[1]}})},
		{name: "bytes are exact: BOM, CRLF, blank lines, spacing, unicode", args: []string{"-quiet"},
			stdin:      "\ufeff" + odd[0] + "\r\n\n" + odd[1] + "\n \n" + odd[2] + "\n",
			wantStdout: framed(group{50, odd})},
		{name: "a seq drop closes the batch", args: []string{"-quiet"}, stdin: a[5] + "\n" + a[6] + "\n" + a[3] + "\n" + a[4] + "\n",
			wantStdout: framed(group{50, []string{a[5], a[6]}}, group{50, []string{a[3], a[4]}})},
		{name: "equal seqs stay together", args: []string{"-quiet"}, stdin: a[5] + "\n" + a[5] + "\n",
			wantStdout: framed(group{50, []string{a[5], a[5]}})},

		// Bad input: everything before the bad line is written, exit 4.
		{name: "bad line mid-stream", args: []string{"-quiet", "-max-count", "2"}, stdin: recs(1, 3, 0) + "not json\n" + recs(5, 6, 0),
			wantStdout: framed(group{50, a[1:3]}, group{100, a[3:4]}),
			wantStderr: "audit-batch: line 4: not a record: invalid JSON", wantCode: exitcode.Input},
		{name: "seq is a string", args: []string{"-quiet"}, stdin: a[1] + "\n" + `{"seq":"2"}` + "\n",
			wantStdout: framed(group{50, a[1:2]}), wantStderr: `line 2: not a record: "seq" is a string, not an integer`, wantCode: 4},
		{name: "no seq", args: []string{"-quiet"}, stdin: a[1] + "\n" + `{"ts":1}` + "\n",
			wantStdout: framed(group{50, a[1:2]}), wantStderr: `line 2: not a record: no "seq"`, wantCode: 4},
		{name: "negative seq", args: []string{"-quiet"}, stdin: `{"seq":-1}` + "\n",
			wantStderr: `line 1: not a record: "seq" -1 is negative`, wantCode: 4},
		{name: "fractional seq", args: []string{"-quiet"}, stdin: `{"seq":1.5,"a":1}` + "\n",
			wantStderr: `line 1: not a record: "seq" 1.5 is not a 64-bit integer`, wantCode: 4},
		{name: "not an object", args: []string{"-quiet"}, stdin: "\n[1]\n",
			wantStderr: `line 2: not a record: a JSON array, not an object`, wantCode: 4},
		{name: "NUL byte", args: []string{"-quiet"}, stdin: a[1] + "\n" + "{\"seq\":2,\"a\":\"\x00\"}\n",
			wantStdout: framed(group{50, a[1:2]}), wantStderr: "line 2: NUL byte at byte 15", wantCode: 4},
		{name: "invalid UTF-8", args: []string{"-quiet"}, stdin: a[1] + "\n" + "{\"seq\":2,\"a\":\"\xff\"}\n",
			wantStdout: framed(group{50, a[1:2]}), wantStderr: "line 2: invalid UTF-8 at byte 15", wantCode: 4},
		{name: "line too long", args: []string{"-quiet", "-max-line", itoa(L)}, stdin: a[1] + "\n" + big + "\n" + a[3] + "\n",
			wantStdout: framed(group{50, a[1:2]}), wantStderr: "line 2: line too long", wantCode: 4},
		{name: "truncated last line", args: []string{"-quiet"}, stdin: recs(1, 2, 0) + a[3],
			wantStdout: framed(group{50, a[1:3]}), wantStderr: "audit-batch: line 3: truncated record (no newline at end of input)", wantCode: 4},

		// Presets and their limits.
		{name: "default caps: 500 records", args: []string{"-quiet"}, stdin: in501,
			wantStdout: framed(group{50, l501[:500]}, group{100, l501[500:]})},
		{name: "splunk preset: 500 records", args: []string{"-quiet", "-siem", "splunk"}, stdin: in501,
			wantStdout: framed(group{50, l501[:500]}, group{100, l501[500:]})},
		{name: "splunk preset: 800000 bytes", args: []string{"-quiet", "-siem", "splunk"}, stdin: in300,
			wantStdout: framed(group{50, l300[:perBatch]}, group{100, l300[perBatch:]})},
		{name: "datadog preset: 1000 records", args: []string{"-quiet", "-siem", "datadog"}, stdin: in1001,
			wantStdout: framed(group{50, l1001[:1000]}, group{100, l1001[1000:]})},
		{name: "elastic preset: 10000 records", args: []string{"-quiet", "-siem", "elastic"}, stdin: in1001,
			wantStdout: framed(group{50, l1001})},
		{name: "flag overrides the preset", args: []string{"-quiet", "-siem", "datadog", "-max-count", "3"}, stdin: recs(1, 4, 0),
			wantStdout: framed(group{50, a[1:4]}, group{100, a[4:5]})},
		{name: "env overrides the preset", args: []string{"-quiet"}, env: map[string]string{"AUDIT_BATCH_SIEM": "datadog", "AUDIT_BATCH_MAX_COUNT": "2"},
			stdin: recs(1, 3, 0), wantStdout: framed(group{50, a[1:3]}, group{100, a[3:4]})},
		{name: "datadog count above its limit", args: []string{"-siem", "datadog", "-max-count", "1001"},
			wantStderr: "audit-batch: -max-count 1001 is above Datadog Logs' request limit of 1000 logs and 5 MB uncompressed", wantCode: exitcode.Usage},
		{name: "datadog bytes above its limit (env)", args: []string{"-siem", "datadog"}, env: map[string]string{"AUDIT_BATCH_MAX_BYTES": "5000001"},
			wantStderr: "-max-bytes 5000001 is above Datadog", wantCode: 2},
		{name: "splunk bytes above its limit", args: []string{"-siem", "splunk", "-max-bytes", "1000001"},
			wantStderr: "-max-bytes 1000001 is above Splunk Cloud's HEC request limit of 1 MB", wantCode: 2},
		{name: "splunk bytes at its limit", args: []string{"-quiet", "-siem", "splunk", "-max-bytes", "1000000"}},
		{name: "elastic bytes above its limit", args: []string{"-siem", "elastic", "-max-bytes", "104857601"},
			wantStderr: "above Elasticsearch's default http.max_content_length", wantCode: 2},
		{name: "file has no limit", args: []string{"-quiet", "-siem", "file", "-max-bytes", "1000000000", "-max-count", "10000000"}},
		{name: "no siem, no limit", args: []string{"-quiet", "-max-count", "100000", "-max-bytes", "100000000"}},
		{name: "unknown siem", args: []string{"-siem", "syslog"},
			wantStderr: `-siem "syslog": must be splunk, elastic, datadog, file or kafka`, wantCode: 2},
		{name: "zero count", args: []string{"-max-count", "0"}, wantStderr: "-max-count 0: must be >= 1", wantCode: 2},
		{name: "zero bytes", args: []string{"-max-bytes", "0"}, wantStderr: "-max-bytes 0: must be >= 1", wantCode: 2},
		{name: "intervals reversed", args: []string{"-min-interval", "10ms", "-max-interval", "5ms"},
			wantStderr: "-max-interval 5ms is below -min-interval 10ms", wantCode: 2},
		{name: "interval below 1ms", args: []string{"-min-interval", "100us"}, wantStderr: "-min-interval 100µs: must be >= 1ms", wantCode: 2},
		{name: "bad max-line", args: []string{"-max-line", "0"}, wantStderr: "-max-line 0: must be >= 1", wantCode: 2},
		{name: "positional argument", args: []string{"records.ndjson"}, wantStderr: `unexpected argument "records.ndjson"`, wantCode: 2},
		{name: "unknown flag", args: []string{"-bogus"}, wantStderr: "unknown flag -bogus", wantCode: 2},
		{name: "help", args: []string{"-h"}, wantStderr: "$AUDIT_BATCH_MAX_COUNT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			stdout, stderr, code := runFake(t, tt.args, tt.stdin)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if stdout != tt.wantStdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", clipOut(stdout), clipOut(tt.wantStdout))
			}
			if tt.wantStderr == "" && stderr != "" {
				t.Errorf("stderr %q, want none", stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantStderr)
			}
			checkFraming(t, stdout)
		})
	}
}

func clipOut(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}

// checkFraming parses stdout as batches and checks every header against the
// lines that follow it.
func checkFraming(t *testing.T, out string) {
	t.Helper()
	if out == "" {
		return
	}
	ls := lines(out)
	var id int64
	for i := 0; i < len(ls); {
		h, isHeader, err := framing.ParseHeader(nil, []byte(ls[i]))
		if !isHeader || err != nil {
			t.Fatalf("line %d: want a header, got %q (%v)", i+1, ls[i], err)
		}
		id++
		if h.ID != id {
			t.Errorf("batch id %d, want %d", h.ID, id)
		}
		if i+h.Count >= len(ls)+1 {
			t.Fatalf("batch %d: count %d but only %d lines follow", h.ID, h.Count, len(ls)-i-1)
		}
		var n int64
		for j, l := range ls[i+1 : i+1+h.Count] {
			if _, isHeader, _ := framing.ParseHeader(nil, []byte(l)); isHeader {
				t.Fatalf("batch %d: line %d of %d is a header", h.ID, j+1, h.Count)
			}
			n += int64(len(l))
			seq, err := batcher.RecordSeq(nil, []byte(l))
			if err != nil {
				t.Fatal(err)
			}
			if j == 0 && seq != h.FirstSeq || j == h.Count-1 && seq != h.LastSeq {
				t.Errorf("batch %d: record %d has seq %d, header says %d..%d", h.ID, j, seq, h.FirstSeq, h.LastSeq)
			}
		}
		if n != h.Bytes {
			t.Errorf("batch %d: bytes %d, header says %d", h.ID, n, h.Bytes)
		}
		i += 1 + h.Count
	}
}

// TestAgeCloseWhileStdinIdle: a lone record is written out when its batch's
// age is up although stdin stays open and silent.
func TestAgeCloseWhileStdinIdle(t *testing.T) {
	p := startPipeline(t, "-quiet")
	p.write(rec(1, 0) + "\n")
	p.waitArmed(t0.Add(50 * time.Millisecond)) // the batch is open
	p.clk.Advance(50 * time.Millisecond)
	p.expect(framed(group{50, []string{rec(1, 0)}}))
	waitFor(t, "the age close to be counted", func() bool { return p.b.Stats().Closed[batcher.ClosedAge] == 1 })
	p.closeStdin()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestIntervalWidensThenCollapsesWhenIdle: full batches widen the interval;
// when the input goes quiet for min-interval it collapses, and the next
// lone record waits only min-interval.
func TestIntervalWidensThenCollapsesWhenIdle(t *testing.T) {
	p := startPipeline(t, "-quiet", "-max-count", "2")
	p.write(recs(1, 8, 0))
	a := lines(recs(1, 8, 0))
	p.expect(framed(group{50, a[0:2]}, group{100, a[2:4]}, group{200, a[4:6]}, group{400, a[6:8]}))
	waitFor(t, "the interval to reach 800ms after 4 full batches", func() bool { return p.b.Interval() == 800*time.Millisecond })
	// Quiet since t0: the queue counts as drained at t0+50ms.
	p.waitArmed(t0.Add(50 * time.Millisecond))
	p.clk.Advance(50 * time.Millisecond)
	waitFor(t, "the interval to collapse", func() bool { return p.b.Interval() == 50*time.Millisecond })

	p.write(rec(9, 0) + "\n")
	p.waitArmed(t0.Add(100 * time.Millisecond))
	p.clk.Advance(50 * time.Millisecond)
	p.expect(`{"batch":{"id":5,"count":1,"bytes":` + strconv.Itoa(len(rec(9, 0))) + `,"firstSeq":9,"lastSeq":9,"intervalMs":50}}` + "\n" + rec(9, 0) + "\n")
	p.closeStdin()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestCancelFlushes: on SIGTERM (ctx cancelled) the batch in progress is
// written and the exit is clean although stdin is still open.
func TestCancelFlushes(t *testing.T) {
	p := startPipeline(t)
	p.write(rec(1, 0) + "\n")
	p.waitArmed(t0.Add(50 * time.Millisecond)) // the batch is open
	p.cancel()
	p.expect(framed(group{50, []string{rec(1, 0)}}))
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if !errors.Is(p.err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", p.err)
	}
	if !strings.Contains(p.stderr.String(), "1 record in 1 batch") {
		t.Errorf("stderr %q", p.stderr.String())
	}
}

// TestRealClock runs with the system clock: the age timer fires while stdin
// is open and idle. It asserts no timing, only that the batch arrives.
func TestRealClock(t *testing.T) {
	pr, pw := io.Pipe()
	or, ow := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"-quiet", "-min-interval", "5ms"}, pr, ow, io.Discard)
	}()
	if _, err := io.WriteString(pw, rec(1, 0)+"\n"); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, bufio.NewReader(or), 2)
	if want := framed(group{5, []string{rec(1, 0)}}); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBrokenPipe: a closed stdout is a quiet exit 141.
func TestBrokenPipe(t *testing.T) {
	var stderr bytes.Buffer
	err := RunWith(context.Background(), nil, strings.NewReader(recs(1, 3, 0)), epipeWriter{}, &stderr, Options{Clock: newFakeClock()})
	if code := cli.Report(prog, err, &stderr); code != exitcode.Pipe {
		t.Fatalf("exit code %d, want 141 (err %v)", code, err)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q, want nothing", stderr.String())
	}
}

type epipeWriter struct{}

func (epipeWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// pipeline is audit-batch running in a goroutine on pipes, with a fake clock.
type pipeline struct {
	t      *testing.T
	clk    *fakeClock
	b      *Batcher
	stdin  *io.PipeWriter
	out    *bufio.Reader
	stderr *bytes.Buffer
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startPipeline(t *testing.T, args ...string) *pipeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	or, ow := io.Pipe()
	p := &pipeline{t: t, clk: newFakeClock(), stdin: pw, out: bufio.NewReader(or), stderr: new(bytes.Buffer), cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		p.err = RunWith(ctx, args, pr, ow, p.stderr, Options{Clock: p.clk, Batcher: func(b *Batcher) { p.b = b; close(ready) }})
		ow.Close()
	}()
	t.Cleanup(func() { cancel(); pw.Close(); <-p.done })
	<-ready
	return p
}

func (p *pipeline) write(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pipeline) waitArmed(when time.Time) {
	p.t.Helper()
	waitFor(p.t, "a timer armed for "+when.Sub(t0).String(), func() bool { return p.clk.armed(when) })
}

// expect reads as many lines as want has and compares.
func (p *pipeline) expect(want string) {
	p.t.Helper()
	if got := readLines(p.t, p.out, len(lines(want))); got != want {
		p.t.Fatalf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

func (p *pipeline) closeStdin() { p.stdin.Close() }

func (p *pipeline) wait() int {
	<-p.done
	if rest, _ := io.ReadAll(p.out); len(rest) > 0 {
		p.t.Errorf("unexpected output at the end: %q", rest)
	}
	return cli.Report(prog, p.err, p.stderr)
}

// readLines reads n lines. The 20 s limit only turns a hang (a batch that
// never comes) into a failure; it is not a timing assertion.
func readLines(t *testing.T, r *bufio.Reader, n int) string {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var b strings.Builder
		for range n {
			l, err := r.ReadString('\n')
			b.WriteString(l)
			if err != nil {
				ch <- result{b.String(), err}
				return
			}
		}
		ch <- result{b.String(), nil}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("read stdout: %v (after %q)", res.err, res.s)
		}
		return res.s
	case <-time.After(20 * time.Second):
		t.Fatalf("no output: waited 20s for %d lines", n)
		return ""
	}
}
