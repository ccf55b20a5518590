package auditship

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/lib/agentconfig"
	"github.com/auditpipe/auditpipe/lib/batcher"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"

	"github.com/auditpipe/auditpipe/lib/sink"

	"github.com/auditpipe/auditpipe/lib/sink/sinks"
)

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := cli.NewFlagSet(prog, "AUDIT_SHIP", synopsis, stderr)
	c := &config{origin: map[string]string{}}
	fs.StringVar(&c.kind, "kind", "", "SIEM kind: "+sink.Kinds(sinks.All)+" (default: --agent-config's kind)")
	fs.StringVar(&c.exporter, "exporter", "", "exporter (cursor) name, <kind>:<instance> (default <kind>:default)")
	fs.StringVar(&c.acks, "acks", "-", "where acks go: a FIFO path read by audit-ack (created if absent), or - for stdout")
	fs.IntVar(&c.inflight, "inflight", 4, "requests in flight at once (acks stay in seq order; always 1 for --kind file)")
	fs.IntVar(&c.pauseAfter, "pause-after", 5, "consecutive non-retryable failures before the shipper pauses itself (exit 6)")
	fs.DurationVar(&c.minBackoff, "min-backoff", 250*time.Millisecond, "first retry delay (exponential, full jitter)")
	fs.DurationVar(&c.maxBackoff, "max-backoff", 30*time.Second, "longest retry delay (a longer Retry-After is honoured)")
	fs.DurationVar(&c.drain, "drain-timeout", 30*time.Second, "after SIGTERM, how long requests in flight may still finish; after them (and at the end of input) how long held acks may wait for audit-ack to read --acks (then exit 8)")
	fs.DurationVar(&c.refused, "refused-backoff", time.Minute, "least wait after the SIEM refused our configuration (401/403) before trying again: a rotated credential has (--pause-after - 1) x this to land before exit 7")
	fs.DurationVar(&c.giveUp, "give-up-after", 0, "stop with exit 8 once deliveries have failed this long without a success (0: retry for ever); for one-shot drains and cron")
	fs.StringVar(&c.quarantine, "quarantine", "", "file for records the SIEM rejects as poison (0600, fsynced before the ack); re-ship with audit-read --quarantine")
	fs.StringVar(&c.onPoison, "on-poison", "", "what a record the SIEM rejects does: quarantine (set it aside in --quarantine, go on) or pause (stop, exit 6) (default quarantine with --quarantine, else pause)")
	fs.IntVar(&c.maxLine, "max-line", ndjson.DefaultMaxLine, "maximum input line length in bytes")
	fs.BoolVar(&c.quiet, "quiet", false, "no summary line on stderr")
	fs.BoolVar(&c.check, "check", false, "probe the SIEM (health and credentials) and exit")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print on stdout the exact requests of the first batch (method, URL, headers with secrets masked, body decoded) and exit; nothing is sent, acked or written")
	c.metrics.Register(fs)
	fs.StringVar(&c.agentConfig, "agent-config", "", "Declaragent agent.yaml: its audit.export block gives defaults for the flags below (flags and env vars win)")
	fs.IntVar(&c.batchSize, "batch-size", 0, "plain-record input: records per batch of the in-process batcher (default the --kind preset, as audit-batch --siem)")
	fs.DurationVar(&c.batchInterval, "batch-interval", 0, "plain-record input: longest a record waits for its batch (audit-batch --max-interval; default 5s)")
	c.sink = sink.Bind(fs, sinks.All)
	c.sink.Chain = c.markChain
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, "AUDIT_SHIP"); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, cli.Usagef("unexpected argument %q (input is stdin)", fs.Arg(0))
	}
	c.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	c.sink.Parsed(fs)

	if c.agentConfig != "" {
		e, err := agentconfig.Load(c.agentConfig)
		if err != nil {
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("--agent-config: %w", err))
		}
		if c.kind == "" {
			c.kind = e.Kind
		} else if c.kind != e.Kind {
			return nil, cli.Usagef("--kind %s, but %s's audit.export.kind is %s: drop --kind or use another file", c.kind, c.agentConfig, e.Kind)
		}
		if err := c.applyAgent(e); err != nil {
			return nil, err
		}
	}
	if c.kind == "" {
		return nil, cli.Usagef("--kind is required: %s (or --agent-config agent.yaml)", sink.Kinds(sinks.All))
	}
	if c.decl = sink.Lookup(sinks.All, c.kind); c.decl == nil {
		return nil, cli.Usagef("unknown --kind %q: %s", c.kind, sink.Kinds(sinks.All))
	}
	c.sink.Kind = c.kind
	var names []string
	for name := range c.set {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if ks := c.sink.KindsOf(name); ks != nil && !slices.Contains(ks, c.kind) {
			return nil, cli.Usagef("--%s applies to --kind %s, not %s", name, strings.Join(ks, ", "), c.kind)
		}
	}
	if c.exporter == "" {
		c.exporter = c.kind + ":default"
	}
	if c.inflight < 1 || c.inflight > 64 {
		return nil, cli.Usagef("--inflight must be 1..64")
	}
	if c.decl.Sequential {
		c.inflight = 1
	}
	c.sink.Inflight = c.inflight
	if c.drain <= 0 || c.refused <= 0 || c.giveUp < 0 {
		return nil, cli.Usagef("--drain-timeout and --refused-backoff must be positive, --give-up-after not negative")
	}
	if c.pauseAfter < 1 {
		return nil, cli.Usagef("--pause-after must be at least 1")
	}
	switch c.onPoison {
	case "":
		c.onPoison = "pause"
		if c.quarantine != "" {
			c.onPoison = "quarantine"
		}
	case "quarantine":
		if c.quarantine == "" {
			return nil, cli.Usagef("--on-poison quarantine needs --quarantine FILE")
		}
	case "pause":
	default:
		return nil, cli.Usagef("--on-poison %q: quarantine or pause", c.onPoison)
	}
	if c.batchSize < 0 || c.batchInterval < 0 {
		return nil, cli.Usagef("--batch-size and --batch-interval must not be negative")
	}
	if c.sink.Given("secret-timeout") && c.sink.Duration("secret-timeout") <= 0 {
		return nil, cli.Usagef("--secret-timeout must be positive")
	}
	if c.dryRun && c.check {
		return nil, cli.Usagef("--dry-run and --check: give one (--check sends a probe, --dry-run sends nothing)")
	}
	return c, nil
}

// applyAgent takes the agent.yaml values of every flag not given
// otherwise, by the declaration's Agent keys. A Unit (Elastic's
// credentials) is one: any flag of it given replaces the whole unit.
func (c *config) applyAgent(e *agentconfig.Export) error {
	if d := sink.Lookup(sinks.All, e.Kind); d != nil {
		unitGiven := map[string]bool{}
		for _, k := range d.Agent {
			if k.Unit != "" && c.sink.Given(k.Flag) {
				unitGiven[k.Unit] = true
			}
		}
		for _, k := range d.Agent {
			if e.Set[k.Key] && !unitGiven[k.Unit] {
				if err := c.sink.Take(k.Flag, e.Value(k.Key), "--agent-config "+c.agentConfig+": "+e.Where(k.Key)); err != nil {
					return err
				}
			}
		}
	}
	if e.Set["batchSize"] && !c.set["batch-size"] {
		c.batchSize = e.BatchSize
		c.origin["batch-size"] = "--agent-config " + c.agentConfig + ": " + e.Where("batchSize")
	}
	if e.Set["intervalMs"] && !c.set["batch-interval"] {
		c.batchInterval = time.Duration(e.IntervalMs) * time.Millisecond
		c.origin["batch-interval"] = "--agent-config " + c.agentConfig + ": " + e.Where("intervalMs")
	}
	return nil
}

// label names where a flag's value came from, for messages.
func (c *config) label(flagName string) string {
	if o, ok := c.origin[flagName]; ok {
		return o
	}
	return c.sink.Label(flagName)
}

// batchLimits are the limits of the in-process batcher for plain-record
// input: --kind's preset, --batch-size and --batch-interval over it (as
// audit-batch --siem KIND --max-count N --max-interval D would take them).
func (c *config) batchLimits() (batcher.Limits, error) {
	p, _ := batcher.PresetFor(c.kind)
	lim := batcher.Limits{MaxCount: p.Count, MaxBytes: p.Bytes,
		MinInterval: batcher.DefaultMinInterval, MaxInterval: batcher.DefaultMaxInterval}
	if c.batchSize > 0 {
		lim.MaxCount = c.batchSize
	}
	if c.batchInterval > 0 {
		lim.MaxInterval = c.batchInterval
		lim.MinInterval = min(lim.MinInterval, c.batchInterval)
	}
	if p.HardCount > 0 && lim.MaxCount > p.HardCount {
		return lim, cli.Usagef("%s %d is above %s", c.label("batch-size"), lim.MaxCount, p.Limit)
	}
	if err := lim.Validate(); err != nil {
		return lim, cli.Usagef("--batch-size %d, --batch-interval %v: %v", lim.MaxCount, lim.MaxInterval, err)
	}
	return lim, nil
}

func (c *config) newSink(ctx context.Context) (sink.Sink, error) {
	s, err := c.decl.New(ctx, c.sink)
	if err != nil {
		if exitcode.Of(err) == exitcode.Failure && ctx.Err() == nil {
			err = exitcode.New(exitcode.Usage, err) // New's checks: bad URL, TLS files, ...
		}
		return nil, err
	}
	return s, nil
}
