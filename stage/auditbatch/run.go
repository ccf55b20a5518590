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
	"github.com/auditpipe/auditpipe/lib/batcher"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/sinks"
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
func Main() int { return cli.MainProcs(prog, 1, Run) }

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
	// Marks, if set, counts the mark lines dropped (an embedding program
	// counts them in its own metrics).
	Marks *atomic.Int64
}

// RunWith is Run with Options.
func RunWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, opt Options) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
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
	b, err := batcher.NewBatcher(batcher.TextOut(out), c.lim)
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
	ms.CounterFunc(metrics.NameMarksDropped, "Mark lines (audit-read's control lines for audit-verify) dropped: never batched.",
		func() float64 { return float64(marks.Load()) })
	err = batcher.Run(ctx, stdin, b, batcher.Config{Limits: c.lim, MaxLine: c.maxLine, Clock: opt.Clock, Marks: marks,
		In: func(records, bytes int) { in.records.Add(float64(records)); in.bytes.Add(float64(bytes)) }})
	if !c.quiet && !exitcode.IsBrokenPipe(err) {
		s := summary(b)
		if n := marks.Load(); n > 0 {
			s += "; " + cli.Count(n, "mark line", "") + " dropped"
		}
		fmt.Fprintf(stderr, "%s: %s\n", prog, s)
	}
	return err
}

// The batcher's types, for tests and embedding programs.
type (
	Batcher = batcher.Batcher
	Limits  = batcher.Limits
	Clock   = batcher.Clock
	Timer   = batcher.Timer
)

// siemHelp is the --siem help: each preset, records/bytes (hard limits).
func siemHelp() string {
	s := "caps preset for the SIEM audit-ship sends to, records/bytes (hard limit):"
	for i, d := range sinks.All {
		p, _ := batcher.PresetFor(d.Kind)
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(" %s %d/%d", d.Kind, p.Count, p.Bytes)
		var hard []string
		if p.HardCount > 0 {
			hard = append(hard, fmt.Sprintf("records <= %d", p.HardCount))
		}
		if p.HardBytes > 0 {
			hard = append(hard, fmt.Sprintf("bytes <= %d", p.HardBytes))
		}
		if len(hard) == 0 {
			hard = []string{"none"}
		}
		s += " (" + strings.Join(hard, ", ") + ")"
	}
	return s
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
	def := batcher.NoSIEM
	fs.StringVar(&c.siem, "siem", "", siemHelp())
	fs.IntVar(&c.lim.MaxCount, "max-count", def.Count, "records per batch; overrides the -siem preset, up to its hard limit")
	fs.Int64Var(&c.lim.MaxBytes, "max-bytes", def.Bytes, "bytes of record lines per batch (no '\\n', before compression); overrides the -siem preset, up to its hard limit")
	fs.DurationVar(&c.lim.MinInterval, "min-interval", batcher.DefaultMinInterval, "the batch interval after a collapse (quiet input, or a batch under half full closed by age)")
	fs.DurationVar(&c.lim.MaxInterval, "max-interval", batcher.DefaultMaxInterval, "the widest batch interval: no record waits longer for its batch to close")
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
	p, ok := batcher.PresetFor(c.siem)
	if !ok {
		return c, cli.Usagef("-siem %q: must be %s", c.siem, sink.Kinds(sinks.All))
	}
	if !set["max-count"] {
		c.lim.MaxCount = p.Count
	}
	if !set["max-bytes"] {
		c.lim.MaxBytes = p.Bytes
	}
	if p.HardCount > 0 && c.lim.MaxCount > p.HardCount {
		return c, cli.Usagef("%s %d is above %s", countFrom, c.lim.MaxCount, p.Limit)
	}
	if p.HardBytes > 0 && c.lim.MaxBytes > p.HardBytes {
		return c, cli.Usagef("-max-bytes %d is above %s", c.lim.MaxBytes, p.Limit)
	}
	if c.maxLine < 1 {
		return c, cli.Usagef("-max-line %d: must be >= 1", c.maxLine)
	}
	if err := c.lim.Validate(); err != nil {
		return c, cli.Usagef("%s", flagNames(err.Error()))
	}
	return c, nil
}

// flagNames turns "max count 0: ..." into "-max-count 0: ...".
func flagNames(s string) string {
	return strings.NewReplacer("max count", "-max-count", "max bytes", "-max-bytes",
		"min interval", "-min-interval", "max interval", "-max-interval").Replace(s)
}

// inCounters count the record lines the batch loop takes in.
type inCounters struct{ records, bytes prometheus.Counter }

// exposeBatcher registers audit-batch's metrics, read from the Batcher at
// scrape time (its interval and Stats are atomics), and returns the
// counters of the input side.
func exposeBatcher(ms *stagemetrics.Stage, b *Batcher, lim Limits) inCounters {
	ms.GaugeFunc(metrics.NameBatchIntervalMs, "", func() float64 {
		return float64(b.Interval()) / float64(time.Millisecond)
	})
	ms.GaugeFunc(metrics.NameBatchMaxIntervalMs, "The widest batch interval (-max-interval) in milliseconds: "+
		metrics.NameBatchIntervalMs+" at this value means sustained load.", func() float64 {
		return float64(lim.MaxInterval) / float64(time.Millisecond)
	})
	ms.CounterFunc(metrics.NameRecordsOut, "", func() float64 { return float64(b.Stats().Records) })
	ms.CounterFunc(metrics.NameBytesOut, "", func() float64 { return float64(b.Stats().Bytes) })
	ms.CounterFunc(metrics.NameBatches, "", func() float64 { return float64(b.Stats().Batches) })
	ms.CounterVecFunc(metrics.NameBatchesClosed, "Batches written, by why they closed: full (count or bytes: the interval doubles), "+
		"age (below half full: it collapses), seq, flush, chain (a chain mark named another chain: one chain per batch).", []string{metrics.LabelReason},
		func(emit func(float64, ...string)) {
			s := b.Stats()
			for r := batcher.ClosedFull; r < batcher.NumReasons; r++ {
				emit(float64(s.Closed[r]), r.String())
			}
		})
	return inCounters{records: ms.RecordsIn(), bytes: ms.BytesIn()}
}

func summary(b *Batcher) string {
	s := b.Stats()
	chains := ""
	if n := s.Closed[batcher.ClosedChain]; n > 0 { // many chains (a chain mark between runs)
		chains = fmt.Sprintf(", %d at a chain change", n)
	}
	return fmt.Sprintf("%s in %s (%d full, %d by age, %d at a seq drop%s, %d at end); interval %v",
		cli.Count(s.Records, "record", ""), cli.Count(s.Batches, "batch", "batches"), s.Closed[batcher.ClosedFull], s.Closed[batcher.ClosedAge], s.Closed[batcher.ClosedSeq], chains, s.Closed[batcher.ClosedFlush], b.Interval())
}
