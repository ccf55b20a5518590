// Package auditbatch is audit-batch: a filter that groups record lines into
// batches, each a header line followed by its record lines byte for byte,
// closing a batch by count, by bytes or by age under an adaptive interval.
// The man page is cmd/audit-batch/doc.go.
package auditbatch

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditpipe/auditpipe/lib/agentconfig"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
)

const (
	prog      = "audit-batch"
	envPrefix = "AUDIT_BATCH"
)

const synopsis = `usage: audit-batch [flags] < records.ndjson > batches.ndjson

Reads record lines on stdin (plain, gzip or zstd) and writes batches on
stdout: a header line {"batch":{"id":..,"count":N,"bytes":..,"firstSeq":..,
"lastSeq":..,"intervalMs":..}} followed by N record lines, bytes unchanged.
A batch closes when it holds --max-count records, when the next record would
take it over --max-bytes, or when its first record has waited the current
interval, which doubles after a full batch (up to --max-interval) and falls
back to --min-interval when a batch closes by age under half full or the
input is quiet for --min-interval. See "go doc ./cmd/audit-batch".

Examples:
  audit-read --db audit.db | audit-verify | audit-batch --siem splunk | audit-ship --kind splunk --acks ack.fifo ...
  audit-batch --max-count 100 --max-interval 1s < records.ndjson > batches.ndjson`

// Main is the entry point of the audit-batch binary.
func Main() int { return cli.Main(prog, Run) }

// Run is audit-batch with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return RunWith(ctx, args, stdin, stdout, stderr, Options{})
}

// Options are what RunWith adds to Run. The zero value is Run.
type Options struct {
	// Clock is the time source of the batch loop; nil is the system clock.
	// Tests pass a fake one to decide exactly when batches age.
	Clock Clock
	// Batcher, if set, is called with the Batcher once it exists and before
	// any input is read, e.g. for a test or an embedding program to read
	// Batcher.Interval or Batcher.Stats from another goroutine. (The
	// stage's own metrics, -metrics-listen and -metrics-file, already
	// expose both.)
	Batcher func(*Batcher)
	// Marks, if set, counts the mark lines dropped (audit-ship's in-process
	// batcher counts them in the shipper's metrics).
	Marks *atomic.Int64
}

// RunWith is Run with Options.
func RunWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, opt Options) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	clock := opt.Clock
	if clock == nil {
		clock = realClock{}
	}
	if f, ok := stdin.(*os.File); ok {
		ndjson.SetPipeSize(f, 1<<20)
	}
	if f, ok := stdout.(*os.File); ok {
		ndjson.SetPipeSize(f, 1<<20)
	}
	ms, err := c.metrics.Start(ctx, prog, c.metrics.Labels("", c.siem), stderr)
	if err != nil {
		return err
	}
	defer ms.Close()
	out := ndjson.NewWriter(ms.Stdout(stdout), 0)
	b, err := NewBatcher(out, c.lim)
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	in := exposeBatcher(ms, b, c.lim)
	if opt.Batcher != nil {
		opt.Batcher(b)
	}
	marks := opt.Marks
	if marks == nil {
		marks = new(atomic.Int64)
	}
	ms.CounterFunc(stagemetrics.NameMarksDropped, "Mark lines (audit-read's control lines for audit-verify) dropped: never batched.",
		func() float64 { return float64(marks.Load()) })
	h := newHandoff(handoffLimit)
	go readLoop(h, stdin, c.maxLine, marks)
	err = loop(ctx, h, b, clock, in)
	h.stop()
	if !c.quiet && !exitcode.IsBrokenPipe(err) {
		s := summary(b)
		if n := marks.Load(); n > 0 {
			s += "; " + cli.Count(n, "mark line", "") + " dropped"
		}
		fmt.Fprintf(stderr, "%s: %s\n", prog, s)
	}
	return err
}

// A preset holds a SIEM's default caps and its hard per-request limits
// (0: none). The byte figures are of record lines before compression.
type preset struct {
	count     int
	bytes     int64
	hardCount int
	hardBytes int64
	limit     string // the hard limit in words, for the usage error
}

// presetFor returns the caps of --siem name. See cmd/audit-batch/doc.go for
// where each figure comes from.
func presetFor(name string) (preset, bool) {
	switch name {
	case "":
		return preset{count: 500, bytes: 800_000}, true
	case "splunk":
		return preset{count: 500, bytes: 800_000, hardBytes: 1_000_000,
			limit: "Splunk Cloud's HEC request limit of 1 MB"}, true
	case "datadog":
		return preset{count: 1000, bytes: 4_000_000, hardCount: 1000, hardBytes: 5_000_000,
			limit: "Datadog Logs' request limit of 1000 logs and 5 MB uncompressed"}, true
	case "elastic":
		return preset{count: 10_000, bytes: 5_000_000, hardBytes: 100 << 20,
			limit: "Elasticsearch's default http.max_content_length of 100 MiB"}, true
	case "file":
		return preset{count: 10_000, bytes: 8 << 20}, true
	}
	return preset{}, false
}

type config struct {
	siem    string
	lim     Limits
	maxLine int
	quiet   bool
	metrics stagemetrics.Flags
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := cli.NewFlagSet(prog, envPrefix, synopsis, stderr)
	var c config
	def, _ := presetFor("")
	fs.StringVar(&c.siem, "siem", "", "caps preset for the SIEM audit-ship sends to, records/bytes (hard limit): splunk 500/800000 (bytes <= 1000000), datadog 1000/4000000 (1000, 5000000), elastic 10000/5000000 (bytes <= 100 MiB), file 10000/8 MiB (none)")
	fs.IntVar(&c.lim.MaxCount, "max-count", def.count, "records per batch; overrides the -siem preset, up to its hard limit")
	fs.Int64Var(&c.lim.MaxBytes, "max-bytes", def.bytes, "bytes of record lines per batch (no '\\n', before compression); overrides the -siem preset, up to its hard limit")
	fs.DurationVar(&c.lim.MinInterval, "min-interval", 50*time.Millisecond, "the batch interval after a collapse (quiet input, or a batch under half full closed by age)")
	fs.DurationVar(&c.lim.MaxInterval, "max-interval", 5*time.Second, "the widest batch interval: no record waits longer for its batch to close")
	fs.IntVar(&c.maxLine, "max-line", ndjson.DefaultMaxLine, "maximum input line length in bytes")
	fs.BoolVar(&c.quiet, "quiet", false, "no summary line on stderr at exit")
	c.metrics.Register(fs)
	agentConfig := fs.String("agent-config", "", "Declaragent agent.yaml, as audit-ship's --agent-config: audit.export.kind is the --siem preset, batchSize --max-count, intervalMs --max-interval (flags and env vars win)")
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, envPrefix); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, cli.Usagef("unexpected argument %q: audit-batch reads stdin only", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	countFrom := "-max-count"
	if *agentConfig != "" {
		e, err := agentconfig.Load(*agentConfig)
		if err != nil {
			return c, exitcode.New(exitcode.Usage, fmt.Errorf("--agent-config: %w", err))
		}
		switch {
		case !set["siem"]:
			c.siem = e.Kind
		case c.siem != e.Kind:
			return c, cli.Usagef("--siem %s, but %s's audit.export.kind is %s: drop --siem or use another file", c.siem, *agentConfig, e.Kind)
		}
		if e.Set["batchSize"] && !set["max-count"] {
			c.lim.MaxCount = e.BatchSize
			set["max-count"] = true
			countFrom = "--agent-config " + *agentConfig + ": " + e.Where("batchSize")
		}
		if e.Set["intervalMs"] && !set["max-interval"] {
			c.lim.MaxInterval = time.Duration(e.IntervalMs) * time.Millisecond
			if !set["min-interval"] && c.lim.MaxInterval < c.lim.MinInterval {
				c.lim.MinInterval = c.lim.MaxInterval
			}
		}
	}
	p, ok := presetFor(c.siem)
	if !ok {
		return c, cli.Usagef("-siem %q: must be splunk, elastic, datadog or file", c.siem)
	}
	if !set["max-count"] {
		c.lim.MaxCount = p.count
	}
	if !set["max-bytes"] {
		c.lim.MaxBytes = p.bytes
	}
	if p.hardCount > 0 && c.lim.MaxCount > p.hardCount {
		return c, cli.Usagef("%s %d is above %s", countFrom, c.lim.MaxCount, p.limit)
	}
	if p.hardBytes > 0 && c.lim.MaxBytes > p.hardBytes {
		return c, cli.Usagef("-max-bytes %d is above %s", c.lim.MaxBytes, p.limit)
	}
	if c.maxLine < 1 {
		return c, cli.Usagef("-max-line %d: must be >= 1", c.maxLine)
	}
	if err := c.lim.validate(); err != nil {
		return c, cli.Usagef("%s", flagNames(err.Error()))
	}
	return c, nil
}

// flagNames turns "max count 0: ..." into "-max-count 0: ...".
func flagNames(s string) string {
	return strings.NewReplacer("max count", "-max-count", "max bytes", "-max-bytes",
		"min interval", "-min-interval", "max interval", "-max-interval").Replace(s)
}

// loop moves lines from the handoff into the Batcher and calls Tick when
// the Batcher's deadline comes, until the input ends (flush, then nil or
// the input's error) or ctx is cancelled (take what was read, flush, return
// ctx.Err()).
func loop(ctx context.Context, h *handoff, b *Batcher, clock Clock, in inCounters) error {
	timer := clock.NewTimer()
	defer timer.Stop()
	var c chunk
	for {
		if d, ok := b.Deadline(); ok {
			timer.Reset(max(d.Sub(clock.Now()), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			h.take(&c)
			if err := feed(b, clock, &c, in); err != nil {
				return err
			}
			if err := b.Flush(); err != nil {
				return err
			}
			return ctx.Err()
		case <-h.wake:
		case <-timer.C():
		}
		h.take(&c)
		if len(c.ends) == 0 && c.err == nil {
			// Nothing was waiting: the time-driven rules.
			if err := b.Tick(clock.Now()); err != nil {
				return err
			}
			continue
		}
		if err := feed(b, clock, &c, in); err != nil {
			return err
		}
		if c.err != nil {
			// Everything before the end (or the bad line) goes out first.
			if err := b.Flush(); err != nil {
				return err
			}
			if c.err == io.EOF {
				return nil
			}
			return c.err
		}
	}
}

// feed adds the lines of c to b. They arrived now; after a batch was
// written (which may have blocked on a full pipe) the clock is read again.
func feed(b *Batcher, clock Clock, c *chunk, in inCounters) error {
	in.records.Add(float64(len(c.ends)))
	in.bytes.Add(float64(len(c.buf)))
	now := clock.Now()
	start := 0
	for i, end := range c.ends {
		id := b.id.Load()
		if err := b.Add(now, c.buf[start:end], c.seqs[i]); err != nil {
			return err
		}
		if b.id.Load() != id {
			now = clock.Now()
		}
		start = end
	}
	return nil
}

// inCounters count the record lines the batch loop takes in.
type inCounters struct{ records, bytes prometheus.Counter }

// NameBatchMaxIntervalMs is the gauge of -max-interval: the ceiling that
// declaragent_audit_batch_interval_ms is "stuck at" under sustained load.
const NameBatchMaxIntervalMs = "auditpipe_batch_max_interval_ms"

// NameBatchesClosed is the counter of batches by why they closed.
const NameBatchesClosed = "auditpipe_batches_closed_total"

// exposeBatcher registers audit-batch's metrics, read from the Batcher at
// scrape time (its interval and Stats are atomics), and returns the
// counters of the input side.
func exposeBatcher(ms *stagemetrics.Stage, b *Batcher, lim Limits) inCounters {
	ms.GaugeFunc(metrics.NameBatchIntervalMs, "", func() float64 {
		return float64(b.Interval()) / float64(time.Millisecond)
	})
	ms.GaugeFunc(NameBatchMaxIntervalMs, "The widest batch interval (-max-interval) in milliseconds: "+
		metrics.NameBatchIntervalMs+" at this value means sustained load.", func() float64 {
		return float64(lim.MaxInterval) / float64(time.Millisecond)
	})
	ms.CounterFunc(metrics.NameRecordsOut, "", func() float64 { return float64(b.Stats().Records) })
	ms.CounterFunc(metrics.NameBytesOut, "", func() float64 { return float64(b.Stats().Bytes) })
	ms.CounterFunc(metrics.NameBatches, "", func() float64 { return float64(b.Stats().Batches) })
	ms.CounterVecFunc(NameBatchesClosed, "Batches written, by why they closed: full (count or bytes: the interval doubles), "+
		"age (below half full: it collapses), seq, flush.", []string{metrics.LabelReason},
		func(emit func(float64, ...string)) {
			s := b.Stats()
			for r := ClosedFull; r < numReasons; r++ {
				emit(float64(s.Closed[r]), r.String())
			}
		})
	return inCounters{records: ms.RecordsIn(), bytes: ms.BytesIn()}
}

func summary(b *Batcher) string {
	s := b.Stats()
	return fmt.Sprintf("%s in %s (%d full, %d by age, %d at a seq drop, %d at end); interval %v",
		cli.Count(s.Records, "record", ""), cli.Count(s.Batches, "batch", "batches"), s.Closed[ClosedFull], s.Closed[ClosedAge], s.Closed[ClosedSeq], s.Closed[ClosedFlush], b.Interval())
}
