// Package stagemetrics is what every auditpipe stage adds to expose its
// metrics: the shared flags (--metrics-listen, --metrics-file,
// --metrics-exporter, --metrics-linger), starting and stopping the HTTP
// endpoint and the node_exporter textfile, the back-pressure wrapper around
// stdout (Stdout) and the record counters of a filter stage (Flow). The
// names are lib/metrics' table; lib/ship registers its own counters
// (ship.Metrics.Register); the progress line is lib/progress.
//
// A stage wires it in a few lines:
//
//	var mf stagemetrics.Flags
//	mf.Register(fs)                        // with the stage's other flags
//	...
//	st, err := mf.Start(ctx, prog, metrics.Labels{Exporter: cursor}, stderr)
//	if err != nil {
//		return err
//	}
//	defer st.Close()                       // final textfile, linger, stop serving
//	stdout = st.Stdout(stdout)             // after ndjson.SetPipeSize, which needs the *os.File
//
// and then counts with st.RecordsIn() and friends (lib/metrics' Set
// accessors: take each counter once, before the loop, not per record).
//
// Metrics never fail a stage that is running: once Start has succeeded,
// errors writing the textfile or serving a scrape go to stderr and the
// stage's exit code is its own. Start itself fails (exit 2) when the
// address cannot be listened on or the textfile cannot be written, since
// both are flag values the operator must fix.
package stagemetrics

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/metrics"
)

// TextfileEvery is how often --metrics-file is rewritten while the stage
// runs; it is also written once more at exit, with the final counts.
const TextfileEvery = 5 * time.Second

// Flags are the metrics flags every stage shares.
type Flags struct {
	// Listen is --metrics-listen: serve /metrics on this address
	// (host:port; port 0 picks a free one, printed on stderr).
	Listen string
	// File is --metrics-file: write a node_exporter textfile here
	// (atomically, every TextfileEvery and at exit). The name should end
	// in .prom.
	File string
	// Exporter is --metrics-exporter: the exporter label, for a stage
	// that has no --exporter or --from-cursor of its own (audit-batch,
	// audit-verify reading a file). A stage's own exporter flag is the
	// default.
	Exporter string
	// Linger is --metrics-linger: after the stage's work is done, keep
	// serving /metrics this long so that the final values (a chain break
	// that made audit-verify exit, the last records counted) are scraped
	// before the process goes away. Stdout is closed before the linger,
	// so the next stage is not held up. 0: stop at once.
	Linger time.Duration
}

// Register adds the flags to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Listen, "metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks one and prints it)")
	fs.StringVar(&f.File, "metrics-file", "", "write metrics to this node_exporter textfile (.prom), atomically, every 5s and at exit")
	fs.StringVar(&f.Exporter, "metrics-exporter", "", "exporter label of the metrics (default: the stage's --exporter or --from-cursor)")
	fs.DurationVar(&f.Linger, "metrics-linger", 0, "after the work is done, keep serving --metrics-listen this long so the last values are scraped (stdout is closed first)")
}

// Enabled reports whether the metrics are exposed at all. Stages use it to
// skip work that only feeds a metric (polling the head of the log).
func (f *Flags) Enabled() bool { return f.Listen != "" || f.File != "" }

// Labels returns the constant labels for a stage whose own exporter name
// (its --exporter or --from-cursor) is exporter and whose sink kind, if it
// knows it, is vendor. --metrics-exporter overrides exporter. Without a
// vendor, it is taken from the exporter name when that follows the
// "<kind>:<instance>" convention with a known kind (splunk, elastic,
// datadog, file), so that every stage of one pipeline carries the same
// labels.
func (f *Flags) Labels(exporter, vendor string) metrics.Labels {
	if f.Exporter != "" {
		exporter = f.Exporter
	}
	if vendor == "" {
		vendor = VendorOf(exporter)
	}
	return metrics.Labels{Exporter: exporter, Vendor: vendor}
}

// VendorOf returns the sink kind an exporter name starts with
// ("splunk:prod" -> "splunk"), or "" if it names none.
func VendorOf(exporter string) string {
	kind, _, ok := strings.Cut(exporter, ":")
	if !ok {
		return ""
	}
	switch kind {
	case "splunk", "elastic", "datadog", "file":
		return kind
	}
	return ""
}

// Stage is one stage's metrics while it runs. The embedded Set gives the
// metric accessors. Its methods are safe on a Stage whose metrics are not
// exposed (no flag given): the counters still count, nobody reads them.
type Stage struct {
	*metrics.Set
	// Addr is the address /metrics is served on, "" if not serving.
	Addr string

	prog   string
	flags  Flags
	stderr io.Writer
	cancel context.CancelFunc
	done   chan error // TextfileLoop's result; nil without --metrics-file
	once   sync.Once
	stdout io.Writer       // what Stdout wrapped
	stop   <-chan struct{} // the run's ctx: a stop signal cuts the linger short
}

// Start makes the stage's Set with labels and starts exposing it as the
// flags say: the HTTP endpoint (its address is printed on stderr) and the
// textfile (written once before Start returns, so a bad path fails now).
// The exposure outlives ctx: it ends with Close, so that the final values
// are served and written after a SIGTERM has stopped the work.
func (f *Flags) Start(ctx context.Context, prog string, labels metrics.Labels, stderr io.Writer) (*Stage, error) {
	st := &Stage{Set: metrics.New(prog, labels), prog: prog, flags: *f, stderr: stderr, stop: ctx.Done()}
	if !f.Enabled() {
		return st, nil
	}
	if f.Linger < 0 {
		return nil, exitcode.Errorf(exitcode.Usage, "--metrics-linger must not be negative")
	}
	st.Set.ErrorLog = log.New(stderr, prog+": metrics: ", 0)
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st.cancel = cancel
	if f.Listen != "" {
		addr, err := st.Set.Serve(mctx, f.Listen)
		if err != nil {
			cancel()
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("--metrics-listen %s: %w", f.Listen, err))
		}
		st.Addr = addr
		fmt.Fprintf(stderr, "%s: metrics at http://%s/metrics\n", prog, addr)
	}
	if f.File != "" {
		if err := st.Set.WriteTextfile(f.File); err != nil {
			cancel()
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("--metrics-file: %w", err))
		}
		st.done = make(chan error, 1)
		go func() { st.done <- st.Set.TextfileLoop(mctx, f.File, TextfileEvery) }()
	}
	return st, nil
}

// Stdout wraps a stage's stdout so that writes that block (the next stage,
// ultimately the SIEM, is slower) are counted: each write that took longer
// than metrics.DefaultBlockThreshold counts in
// declaragent_audit_backpressure_paused_total and its duration in
// auditpipe_backpressure_paused_seconds_total (lib/metrics'
// BlockingWriter). Those count a write when it returns, so a write that
// stays blocked (the SIEM is down, audit-ship retries) shows as no new
// pause at all; auditpipe_backpressure_blocked_seconds covers that: how
// long the write in progress has been blocked, 0 when none is blocked
// longer than the threshold. Call Stdout once, after anything that needs
// the *os.File itself (ndjson.SetPipeSize). Errors pass through unchanged,
// so a broken pipe is still recognised.
func (st *Stage) Stdout(w io.Writer) io.Writer {
	st.stdout = w
	sw := &stallWriter{w: w}
	st.GaugeFunc(metrics.NameBlockedSeconds, "", sw.blocked)
	return metrics.NewBlockingWriter(sw, 0, st.BackpressurePaused(), st.BackpressureSeconds())
}

// stallWriter remembers when the write in progress began.
type stallWriter struct {
	w     io.Writer
	since atomic.Int64 // UnixNano when the write in progress began; 0: none
}

func (s *stallWriter) Write(p []byte) (int, error) {
	s.since.Store(time.Now().UnixNano())
	n, err := s.w.Write(p)
	s.since.Store(0)
	return n, err
}

func (s *stallWriter) blocked() float64 {
	since := s.since.Load()
	if since == 0 {
		return 0
	}
	d := time.Duration(time.Now().UnixNano() - since)
	if d <= metrics.DefaultBlockThreshold {
		return 0
	}
	return d.Seconds()
}

// Close ends the exposure: it keeps serving for --metrics-linger (less if
// the run's ctx is done: a stop signal does not wait for a scrape), writes
// the textfile a last time, and stops the HTTP server. Call it when the
// stage's work is done and its output flushed (defer it right after
// Start). Before lingering it closes the stdout given to Stdout, if that
// can be closed (an *os.File), so that the next stage sees the end of its
// input now rather than after the linger. A textfile error is printed on
// stderr and returned; the stage should not fail because of it. Close may
// be called more than once.
func (st *Stage) Close() error {
	var err error
	st.once.Do(func() {
		if st.cancel == nil {
			return
		}
		if st.flags.Listen != "" && st.flags.Linger > 0 {
			if c, ok := st.stdout.(io.Closer); ok {
				_ = c.Close()
			}
			// The linger is for a stage that ends on its own (a failure
			// the scrape must see); a stop signal, before or during it,
			// ends it: a stopped service does not wait for the scrape.
			select {
			case <-time.After(st.flags.Linger):
			case <-st.stop:
			}
		}
		st.cancel()
		if st.done != nil {
			err = <-st.done
			if err != nil {
				fmt.Fprintf(st.stderr, "%s: metrics: %v\n", st.prog, err)
			}
		}
	})
	return err
}

// A Flow counts the records a filter stage reads and passes on, as plain
// atomics that the hot loop bumps and a scrape (or the progress line)
// reads. Bytes are record line bytes without the newline, as in a batch
// header. Seq is the seq of the last record passed on.
type Flow struct {
	In, InBytes, Out, OutBytes, Seq atomic.Int64
}

// Flow registers a new Flow's counters in the stage's Set and returns it:
// auditpipe_records_in_total, auditpipe_bytes_in_total,
// auditpipe_records_out_total, auditpipe_bytes_out_total and
// auditpipe_stage_last_seq. In audit-read --follow,
// declaragent_audit_last_seq minus auditpipe_stage_last_seq is how far
// reading lags the head of the log (back-pressure holding it back). Call
// it once.
func (st *Stage) Flow() *Flow {
	f := &Flow{}
	val := func(v *atomic.Int64) func() float64 { return func() float64 { return float64(v.Load()) } }
	st.CounterFunc(metrics.NameRecordsIn, "", val(&f.In))
	st.CounterFunc(metrics.NameBytesIn, "", val(&f.InBytes))
	st.CounterFunc(metrics.NameRecordsOut, "", val(&f.Out))
	st.CounterFunc(metrics.NameBytesOut, "", val(&f.OutBytes))
	st.GaugeFunc(metrics.NameStageLastSeq, "", val(&f.Seq))
	return f
}

// Read counts one record line read.
func (f *Flow) Read(n int) {
	f.In.Add(1)
	f.InBytes.Add(int64(n))
}

// Wrote counts one record line passed on, with its seq (0 if unknown:
// the last seq is then left as it was).
func (f *Flow) Wrote(n int, seq int64) {
	f.Out.Add(1)
	f.OutBytes.Add(int64(n))
	if seq > 0 {
		f.Seq.Store(seq)
	}
}
