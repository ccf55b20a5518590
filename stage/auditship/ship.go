// Package auditship is audit-ship: it delivers batches (or plain record
// lines) to a SIEM and reports each delivered batch as an ack line. The man
// page is cmd/audit-ship/doc.go.
package auditship

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/batcher"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/progress"
	"github.com/auditpipe/auditpipe/lib/ship"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
)

const prog = "audit-ship"

const synopsis = `usage: audit-ship --kind splunk|elastic|datadog|file|kafka [flags] < batches-or-records
       audit-ship --agent-config agent.yaml [flags] < batches-or-records

Delivers audit-batch's batches (or plain record lines, which it then batches
itself) to a SIEM, and writes an ack line for each delivered batch, in seq
order, to --acks (a FIFO read by audit-ack, or - for stdout).

Examples:
  audit-read --db audit.db --from-cursor splunk:prod | audit-verify --db audit.db --from-cursor splunk:prod \
    | audit-batch --siem splunk | audit-ship --kind splunk --url https://hec.example:8088 \
      --token file:/run/secrets/hec --exporter splunk:prod --acks /run/auditpipe/acks.fifo
  audit-read --db audit.db | audit-verify | audit-ship --kind elastic --url https://es.example:9200 \
      --api-key env:ELASTIC_API_KEY --index 'declaragent-${tenant:id}' --quarantine poison.ndjson --acks -
  audit-read --db audit.db | audit-verify | audit-ship --agent-config agent.yaml --acks -
  audit-read --db audit.db | audit-verify | audit-ship --kind file --path archive/ --dir --gzip --acks -`

// Main is the entry point of the audit-ship binary.
func Main() int { return cli.MainProcs(prog, 1, Run) }

type config struct {
	kind       string
	exporter   string
	acks       string
	inflight   int
	pauseAfter int
	minBackoff time.Duration
	maxBackoff time.Duration
	drain      time.Duration
	refused    time.Duration // --refused-backoff
	giveUp     time.Duration // --give-up-after
	quarantine string
	onPoison   string
	maxLine    int
	quiet      bool
	check      bool
	dryRun     bool

	agentConfig   string
	batchSize     int
	batchInterval time.Duration

	decl *sink.Decl   // --kind's declaration
	sink *sink.Values // the sinks' flags (lib/sink/<kind>/declare.go)

	set    map[string]bool   // flags given on the command line, in the environment or the -config file
	origin map[string]string // flag -> where a value from --agent-config came from

	metrics stagemetrics.Flags // --metrics-listen, --metrics-file

	// chain is the chain id the input's leading marks named (audit-read's
	// anchor, audit-verify's chain mark), read before they are dropped:
	// the Kafka key until batches carry the chain (sink.Values.Chain).
	chain atomic.Pointer[string]
}

// Run is audit-ship with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if c.dryRun {
		return c.runDry(ctx, stdin, stdout, stderr)
	}
	s, err := c.newSink(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if c.check {
		if err := s.Check(ctx); err != nil {
			return checkError(c.kind, err)
		}
		fmt.Fprintf(stderr, "%s: %s: the SIEM answers and accepts our credentials\n", prog, c.exporter)
		return nil
	}

	var acks ship.AckSink
	switch c.acks {
	case "-", "":
		acks = ack.NewStreamWriter(stdout)
	default:
		cli.OutputUnused(stdout) // acks go to the FIFO: stdout is not ours to watch
		fa, err := ack.NewFIFOWriter(c.acks, stderr)
		if err != nil {
			return exitcode.New(exitcode.Usage, fmt.Errorf("--acks: %w (or --acks - for stdout)", err))
		}
		acks = fa
	}
	var q *ship.Quarantine
	if c.quarantine != "" && c.onPoison == "quarantine" {
		if q, err = ship.OpenQuarantine(c.quarantine); err != nil {
			return err
		}
		defer q.Close()
	}
	m := &ship.Metrics{}
	st, err := c.metrics.Start(ctx, prog, c.metrics.Labels(c.exporter, c.kind), stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	m.Register(st.Set)
	var pl *progress.Line
	if !c.quiet {
		// On a terminal: what is delivered, and the state (in flight,
		// failing, acks held); other stages' lines give way to it.
		pl = progress.StartTaking(prog, stderr, func() progress.Status {
			return progressStatus(m, time.Now())
		})
		defer pl.Stop()
		stderr = pl.Writer(stderr)
	}
	sh := ship.New(s, ship.Options{
		Exporter: c.exporter, Inflight: c.inflight, PauseAfter: c.pauseAfter,
		MinBackoff: c.minBackoff, MaxBackoff: c.maxBackoff, DrainTimeout: c.drain,
		RefusedBackoff: c.refused, GiveUpAfter: c.giveUp,
		Quarantine: q, Acks: acks, Log: stderr, Metrics: m,
	})

	batches := make(chan *ship.Batch, 1)
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	readErr := make(chan error, 1)
	go func() { readErr <- c.readBatches(readCtx, stdin, stderr, batches, &m.MarksDropped) }()
	start := time.Now()
	runErr := sh.Run(ctx, batches)
	stopRead()
	// The shipper is done (end of input, a stop, a pause, given up): a read
	// blocked on a quiet stdin must not hold the exit.
	cli.StopReading(stdin, exitcode.ErrStopped)
	// Hand over the acks still held (audit-ack slow, restarting or absent),
	// for at most --drain-timeout.
	if n := m.AcksHeld.Load(); n > 0 {
		fmt.Fprintf(stderr, "%s: %s: waiting up to %v (--drain-timeout) to hand the acks of %d delivered record(s) to audit-ack on %s\n",
			prog, c.exporter, c.drain, n, c.acks)
	}
	actx, cancel := context.WithTimeout(context.Background(), c.drain)
	ackErr := acks.Close(actx)
	cancel()
	rerr := <-readErr
	pl.Stop()
	if !c.quiet {
		fmt.Fprintf(stderr, "%s: %s\n", prog, summary(c.exporter, m, time.Since(start)))
	}
	if ackErr != nil && runErr != nil {
		fmt.Fprintf(stderr, "%s: acks: %v\n", prog, ackErr) // runErr decides the exit code
	}
	switch {
	case runErr != nil:
		return runErr
	case rerr != nil && ctx.Err() == nil:
		return rerr
	case ackErr != nil:
		return fmt.Errorf("acks: %w", ackErr)
	case m.AcksDropped.Load() > 0:
		// The reader of the acks went away during a stop (Ctrl-C to the
		// whole pipeline): a clean stop, but not a complete one.
		return exitcode.Errorf(exitcode.Incomplete, "%w: the acks of %d delivered record(s) could not be handed to audit-ack (it stopped reading %s); they will be shipped again from the cursor on the next run (duplicates, not loss)",
			ship.ErrAcksNotHandedOver, m.AcksDropped.Load(), c.acks)
	}
	return nil
}

// readBatches sends stdin's batches to out, and closes it: read as they
// are if the first line is a batch header, else made by the in-process
// batcher (lib/batcher) with the preset of --kind. It returns nil at the
// end of the input or once ctx is done, else why the input failed.
func (c *config) readBatches(ctx context.Context, stdin io.Reader, stderr io.Writer, out chan<- *ship.Batch, marks *atomic.Int64) error {
	defer close(out)
	br := bufio.NewReaderSize(stdin, 1<<20)
	first := firstLine(br, c.noteMark)
	if strings.HasPrefix(string(first), `{"batch"`) || len(first) == 0 {
		if len(first) > 0 {
			c.warnBatched(stderr)
		}
		return ship.ReadBatchesMarks(ctx, br, out, c.maxLine, marks)
	}
	lim, err := c.batchLimits()
	if err != nil {
		return err
	}
	b, err := batcher.NewBatcher(&shipOut{ctx: ctx, out: out}, lim)
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	err = batcher.Run(ctx, br, b, batcher.Config{Limits: lim, MaxLine: c.maxLine, Marks: marks})
	if ctx.Err() != nil {
		return nil // stopped: the batch being made was never acked, it is read again from the cursor
	}
	return err
}

// shipOut hands the in-process batcher's batches to the shipper, as
// ship.Batch values that own a copy of their lines.
type shipOut struct {
	ctx context.Context
	out chan<- *ship.Batch
	bd  ship.Builder
}

func (o *shipOut) Batch(h framing.Header, lines []byte) error {
	sb, bad, err := o.bd.Build(h.ID, lines)
	if err != nil {
		seq, _ := batcher.RecordSeq(nil, bad)
		return exitcode.Errorf(exitcode.Input, "the record of seq %d: %v", seq, err)
	}
	sb.SetChain(h.Chain)
	select {
	case o.out <- sb:
		return nil
	case <-o.ctx.Done():
		return o.ctx.Err()
	}
}

// warnBatched says that audit-ship's batching settings, from flags or
// from --agent-config's batchSize and intervalMs, do not apply to input
// audit-batch already batched, and how to make them apply.
func (c *config) warnBatched(stderr io.Writer) {
	var from []string
	agent := false
	for _, f := range []string{"batch-size", "batch-interval"} {
		switch o, ok := c.origin[f]; {
		case c.set[f]:
			from = append(from, "--"+f)
		case ok:
			from = append(from, strings.TrimPrefix(o, "--agent-config "+c.agentConfig+": "))
			agent = true
		}
	}
	if len(from) == 0 {
		return
	}
	fix := "give audit-batch --max-count and --max-interval instead"
	if agent {
		fix = "give audit-batch the same file (audit-batch --agent-config " + c.agentConfig + ") or its --max-count and --max-interval"
		from[0] = "--agent-config " + c.agentConfig + ": " + from[0]
	}
	fmt.Fprintf(stderr, "%s: the input is already batched (audit-batch in the pipe): %s do not apply here; %s\n", prog, strings.Join(from, " and "), fix)
}

// noteMark keeps the chain id a leading mark line names (the first one):
// {"mark":{"type":"anchor",...,"chain":"<id>"}} or
// {"mark":{"type":"chain","chain":"<id>"}}. A mark without one, or one
// that does not parse, is left to be dropped as before.
func (c *config) noteMark(line []byte) {
	if c.chain.Load() != nil {
		return
	}
	var p fastjson.Parser
	v, err := p.ParseBytes(line)
	if err != nil {
		return
	}
	id := string(v.GetStringBytes("mark", "chain"))
	if chain.IsChainID(id) {
		c.chain.Store(&id)
	}
}

// markChain returns the chain the leading marks named, "" if none.
func (c *config) markChain() string {
	if p := c.chain.Load(); p != nil {
		return *p
	}
	return ""
}

// firstLine peeks at the start of the first line that is not a mark line
// (batch.IsMark: both ReadBatches and the batcher drop those), without
// consuming anything. onMark, if set, sees each leading mark line (it
// must not keep it).
func firstLine(br *bufio.Reader, onMark func([]byte)) []byte {
	skip := 0
	for {
		b, _ := br.Peek(skip + 64)
		if len(b) < skip {
			return nil
		}
		rest := skipBOMAndSpace(b[skip:])
		if !bytes.HasPrefix(rest, []byte(`{"mark":`)) {
			return rest
		}
		// A mark line: find its end, peeking further as needed.
		off := skip + (len(b) - skip - len(rest))
		for {
			i := bytes.IndexByte(b[off:], '\n')
			if i >= 0 {
				if onMark != nil {
					onMark(b[off : off+i])
				}
				skip = off + i + 1
				break
			}
			more, err := br.Peek(len(b) + 4096)
			if len(more) == len(b) || err != nil && len(more) <= len(b) {
				return nil // the input ends (or fails) inside a mark: nothing to frame
			}
			b = more
		}
	}
}

func skipBOMAndSpace(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		b = b[3:]
	}
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// progressStatus is audit-ship's progress line: records delivered, the
// last seq whose ack was handed over, and the state that matters now.
func progressStatus(m *ship.Metrics, now time.Time) progress.Status {
	s := progress.Status{Records: m.DeliveredRecords.Load(), Seq: m.LastAckedSeq.Load(), Verb: "delivered"}
	var notes []string
	if m.Paused.Load() > 0 {
		notes = append(notes, "paused")
	} else if since := m.FailingSince.Load(); since > 0 {
		notes = append(notes, fmt.Sprintf("failing for %s (%s), retrying",
			now.Sub(time.Unix(0, since)).Round(time.Second), cli.Count(m.FailedRequests.Load(), "failed request", "")))
	} else if n := m.Inflight.Load(); n > 0 {
		notes = append(notes, cli.Count(n, "request", "")+" in flight")
	}
	if n := m.AcksHeld.Load(); n > 0 {
		notes = append(notes, fmt.Sprintf("acks of %d held (audit-ack not reading)", n))
	}
	s.Note = strings.Join(notes, ", ")
	return s
}

// checkError is what --check reports: exit 7 only when the SIEM refused
// our configuration (401/403, index not allowed: a sink.Config failure);
// a name that does not resolve, a connection refused, a TLS failure or an
// unhealthy SIEM is not a refusal, and is a runtime failure (exit 1) that
// says what failed.
func checkError(kind string, err error) error {
	var se *sink.Error
	if errors.As(err, &se) {
		if se.Class == sink.Config {
			return exitcode.New(exitcode.Config, fmt.Errorf("check %s: SIEM configuration rejected: %s", kind, se.Msg))
		}
		what := "failed"
		if se.HTTPStatus == 0 {
			what = "could not talk to the SIEM"
		}
		return exitcode.New(exitcode.Failure, fmt.Errorf("check %s %s (not a refusal of our configuration): %s", kind, what, se.Msg))
	}
	if exitcode.Of(err) != exitcode.Failure {
		return err // cancelled, or already classified
	}
	return exitcode.New(exitcode.Failure, fmt.Errorf("check %s: %w", kind, err))
}

func summary(exporter string, m *ship.Metrics, d time.Duration) string {
	f := m.Failures()
	var retryable, permanent int64
	for _, n := range f[true] {
		retryable += n
	}
	for _, n := range f[false] {
		permanent += n
	}
	// "Handed over": written to audit-ack (the FIFO, or stdout). Whether
	// audit-ack committed it is audit-ack's to say (its summary, the
	// cursor); audit-ship cannot know.
	s := fmt.Sprintf("%s: %s delivered", exporter, cli.Count(m.DeliveredRecords.Load(), "record", ""))
	if acked := m.AckedRecords.Load(); acked > 0 {
		s += fmt.Sprintf(", acks of %d handed to audit-ack (last seq %d; what it committed is audit-ack's to say)", acked, m.LastAckedSeq.Load())
	} else {
		s += ", no ack handed to audit-ack"
	}
	if held := m.AcksHeld.Load() + m.AcksDropped.Load(); held > 0 {
		s += fmt.Sprintf(", acks of %d NOT handed over (delivered; shipped again from the cursor next run)", held)
	}
	s += fmt.Sprintf(", %s, %s, %s, %d quarantined, failures %d retryable / %d not",
		cli.Count(m.Requests.Load(), "request", ""), cli.Count(m.Retries.Load(), "retry", "retries"),
		cli.Count(m.Duplicates.Load(), "duplicate", ""), m.Quarantined.Load(), retryable, permanent)
	if n := m.MarksDropped.Load(); n > 0 {
		s += ", " + cli.Count(n, "mark line", "") + " dropped"
	}
	if secs := d.Seconds(); secs > 0 && m.DeliveredRecords.Load() > 0 {
		s += fmt.Sprintf("; %.0f records/s", float64(m.DeliveredRecords.Load())/secs)
	}
	return s
}
