// Package auditship is audit-ship: it delivers batches (or plain record
// lines) to a SIEM and reports each delivered batch as an ack line. The man
// page is cmd/audit-ship/doc.go.
package auditship

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/ship"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/file"
	"github.com/auditpipe/auditpipe/lib/sink/splunk"
	"github.com/auditpipe/auditpipe/stage/auditbatch"
)

const prog = "audit-ship"

const synopsis = `usage: audit-ship --kind splunk|file [flags] < batches-or-records

Delivers audit-batch's batches (or plain record lines, which it then batches
itself) to a SIEM, and writes an ack line for each delivered batch, in seq
order, to --acks (a FIFO read by audit-ack, or - for stdout).

Examples:
  audit-read --db audit.db --from-cursor splunk:prod | audit-verify --db audit.db --from-cursor splunk:prod \
    | audit-batch --siem splunk | audit-ship --kind splunk --url https://hec.example:8088 \
      --token file:/run/secrets/hec --exporter splunk:prod --acks /run/auditpipe/acks.fifo
  audit-read --db audit.db | audit-verify | audit-ship --kind file --path archive/ --dir --gzip --acks -`

// Main is the entry point of the audit-ship binary.
func Main() int { return cli.Main(prog, Run) }

type config struct {
	kind       string
	exporter   string
	acks       string
	inflight   int
	pauseAfter int
	minBackoff time.Duration
	maxBackoff time.Duration
	drain      time.Duration
	quarantine string
	maxLine    int
	quiet      bool
	check      bool

	// splunk
	url, token, index, source, sourcetype, host     string
	gzip, indexerAck, insecureSkipVerify, allowHTTP bool
	ackTimeout, timeout                             time.Duration
	caFile, certFile, keyFile, channel              string

	// file
	path         string
	dir, noFsync bool
}

// Run is audit-ship with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	s, err := c.newSink(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if c.check {
		if err := s.Check(ctx); err != nil {
			return exitcode.New(exitcode.Config, fmt.Errorf("check %s: %w", c.kind, err))
		}
		fmt.Fprintf(stderr, "%s: %s: the SIEM answers and accepts our credentials\n", prog, c.exporter)
		return nil
	}

	var acks ship.AckSink
	switch c.acks {
	case "-", "":
		acks = ship.NewWriterAcks(stdout)
	default:
		fa, err := ship.NewFIFOAcks(c.acks, stderr)
		if err != nil {
			return exitcode.New(exitcode.Usage, fmt.Errorf("--acks: %w", err))
		}
		acks = fa
	}
	var q *ship.Quarantine
	if c.quarantine != "" {
		if q, err = ship.OpenQuarantine(c.quarantine); err != nil {
			return err
		}
		defer q.Close()
	}
	m := &ship.Metrics{}
	sh := ship.New(s, ship.Options{
		Exporter: c.exporter, Inflight: c.inflight, PauseAfter: c.pauseAfter,
		MinBackoff: c.minBackoff, MaxBackoff: c.maxBackoff, DrainTimeout: c.drain,
		Quarantine: q, Acks: acks, Log: stderr, Metrics: m,
	})

	in, batcherErr := c.framed(ctx, stdin, stderr)
	batches := make(chan *ship.Batch, 1)
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- ship.ReadBatches(readCtx, in, batches, c.maxLine)
	}()
	start := time.Now()
	runErr := sh.Run(ctx, batches)
	stopRead()
	if closer, ok := in.(io.Closer); ok {
		closer.Close()
	}
	// Hand over the acks still held (a restarted audit-ack), briefly.
	actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	ackErr := acks.Close(actx)
	cancel()
	rerr := <-readErr
	berr := batcherErr()
	if !c.quiet {
		fmt.Fprintf(stderr, "%s: %s\n", prog, summary(c.exporter, m, time.Since(start)))
	}
	switch {
	case runErr != nil:
		return runErr
	case rerr != nil && ctx.Err() == nil:
		return rerr
	case berr != nil && ctx.Err() == nil:
		return berr
	case ackErr != nil:
		return fmt.Errorf("acks: %w", ackErr)
	}
	return nil
}

// framed returns stdin as batch framing: as it is if its first line is a
// batch header, else through an in-process audit-batch with the preset of
// the sink's SIEM.
func (c *config) framed(ctx context.Context, stdin io.Reader, stderr io.Writer) (io.Reader, func() error) {
	br := bufio.NewReaderSize(stdin, 1<<20)
	first, _ := br.Peek(64)
	first = skipBOMAndSpace(first)
	if strings.HasPrefix(string(first), `{"batch"`) || len(first) == 0 {
		return br, func() error { return nil }
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	siem := c.kind
	go func() {
		err := auditbatch.Run(ctx, []string{"--siem", siem, "--quiet"}, br, pw, stderr)
		pw.CloseWithError(err)
		done <- err
	}()
	return pr, func() error {
		err := <-done
		if errors.Is(err, io.ErrClosedPipe) || exitcode.IsBrokenPipe(err) {
			return nil
		}
		return err
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

func summary(exporter string, m *ship.Metrics, d time.Duration) string {
	f := m.Failures()
	var retryable, permanent int64
	for _, n := range f[true] {
		retryable += n
	}
	for _, n := range f[false] {
		permanent += n
	}
	s := fmt.Sprintf("%s: %d records delivered, %d acked (last seq %d), %d requests, %d retries, %d duplicates, %d quarantined, failures %d retryable / %d not",
		exporter, m.DeliveredRecords.Load(), m.AckedRecords.Load(), m.LastAckedSeq.Load(), m.Requests.Load(), m.Retries.Load(),
		m.Duplicates.Load(), m.Quarantined.Load(), retryable, permanent)
	if secs := d.Seconds(); secs > 0 && m.DeliveredRecords.Load() > 0 {
		s += fmt.Sprintf("; %.0f records/s", float64(m.DeliveredRecords.Load())/secs)
	}
	return s
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := cli.NewFlagSet(prog, "AUDIT_SHIP", synopsis, stderr)
	c := &config{}
	fs.StringVar(&c.kind, "kind", "", "SIEM kind: splunk or file")
	fs.StringVar(&c.exporter, "exporter", "", "exporter (cursor) name, <kind>:<instance> (default <kind>:default)")
	fs.StringVar(&c.acks, "acks", "-", "where acks go: a FIFO path read by audit-ack (created if absent), or - for stdout")
	fs.IntVar(&c.inflight, "inflight", 4, "requests in flight at once (acks stay in seq order)")
	fs.IntVar(&c.pauseAfter, "pause-after", 5, "consecutive non-retryable failures before the shipper pauses itself (exit 6)")
	fs.DurationVar(&c.minBackoff, "min-backoff", 250*time.Millisecond, "first retry delay (exponential, full jitter)")
	fs.DurationVar(&c.maxBackoff, "max-backoff", 30*time.Second, "longest retry delay (a longer Retry-After is honoured)")
	fs.DurationVar(&c.drain, "drain-timeout", 30*time.Second, "after SIGTERM, how long requests in flight may still finish")
	fs.StringVar(&c.quarantine, "quarantine", "", "file for records the SIEM rejects as poison (0600); without it such a record pauses the shipper")
	fs.IntVar(&c.maxLine, "max-line", ndjson.DefaultMaxLine, "maximum input line length in bytes")
	fs.BoolVar(&c.quiet, "quiet", false, "no summary line on stderr")
	fs.BoolVar(&c.check, "check", false, "probe the SIEM (health and credentials) and exit")

	fs.StringVar(&c.url, "url", "", "splunk: HEC URL, e.g. https://hec.example.com:8088 (path defaults to /services/collector/event)")
	fs.StringVar(&c.token, "token", "", "splunk: HEC token reference, env:NAME or file:PATH (a literal token is refused)")
	fs.StringVar(&c.index, "index", "", "splunk: index (default: the token's)")
	fs.StringVar(&c.source, "source", "", "splunk: source")
	fs.StringVar(&c.sourcetype, "sourcetype", splunk.DefaultSourcetype, "splunk: sourcetype")
	fs.StringVar(&c.host, "host", "", "splunk: host field (default the hostname)")
	fs.BoolVar(&c.gzip, "gzip", true, "compress request bodies (splunk) or the output (file)")
	fs.BoolVar(&c.indexerAck, "indexer-ack", false, "splunk: ack a batch only once Splunk reports it indexed (channel + ack polling)")
	fs.DurationVar(&c.ackTimeout, "ack-timeout", splunk.DefaultAckTimeout, "splunk: how long to wait for the indexer ack before resending")
	fs.StringVar(&c.channel, "channel", "", "splunk: X-Splunk-Request-Channel GUID (generated with --indexer-ack)")
	fs.DurationVar(&c.timeout, "timeout", splunk.DefaultTimeout, "splunk: per-request timeout")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM CA bundle to trust instead of the system roots")
	fs.StringVar(&c.certFile, "cert-file", "", "PEM client certificate")
	fs.StringVar(&c.keyFile, "key-file", "", "PEM client key")
	fs.BoolVar(&c.insecureSkipVerify, "insecure-skip-verify", false, "DANGEROUS: do not verify the SIEM's certificate")
	fs.BoolVar(&c.allowHTTP, "allow-insecure-http", false, "allow a plain http:// URL to a non-loopback host (token sent unencrypted)")

	fs.StringVar(&c.path, "path", "", "file: output file (or directory with --dir)")
	fs.BoolVar(&c.dir, "dir", false, "file: --path is a directory of per-day files audit-YYYY-MM-DD.ndjson[.gz]")
	fs.BoolVar(&c.noFsync, "no-fsync", false, "file: do not fsync before acking (a power loss can lose acked batches)")
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, "AUDIT_SHIP"); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, cli.Usagef("unexpected argument %q (input is stdin)", fs.Arg(0))
	}
	switch c.kind {
	case "splunk", "file":
	case "":
		return nil, cli.Usagef("--kind is required: splunk or file")
	case "elastic", "datadog":
		return nil, cli.Usagef("--kind %s is not available in this version; use splunk or file", c.kind)
	default:
		return nil, cli.Usagef("unknown --kind %q: splunk or file", c.kind)
	}
	if c.exporter == "" {
		c.exporter = c.kind + ":default"
	}
	if c.inflight < 1 || c.inflight > 64 {
		return nil, cli.Usagef("--inflight must be 1..64")
	}
	if c.kind == "file" {
		// A file is written in the order Sends are called: one at a time
		// keeps the archive in seq order, so it stays valid replay input.
		c.inflight = 1
	}
	if c.pauseAfter < 1 {
		return nil, cli.Usagef("--pause-after must be at least 1")
	}
	return c, nil
}

func (c *config) newSink(ctx context.Context) (sink.Sink, error) {
	switch c.kind {
	case "file":
		if c.path == "" {
			return nil, cli.Usagef("--kind file needs --path")
		}
		s, err := file.New(file.Config{Path: c.path, Dir: c.dir, Gzip: c.gzip, NoFsync: c.noFsync})
		if err != nil {
			return nil, exitcode.New(exitcode.Usage, err)
		}
		return s, nil
	default:
		if c.url == "" {
			return nil, cli.Usagef("--kind splunk needs --url")
		}
		if c.token == "" {
			return nil, cli.Usagef("--kind splunk needs --token env:NAME or file:PATH")
		}
		tok, err := secret.NewSource(ctx, c.token)
		if err != nil {
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("--token: %w", err))
		}
		s, err := splunk.New(splunk.Config{
			URL: c.url, Token: tok, Index: c.index, Source: c.source, Sourcetype: c.sourcetype, Host: c.host,
			Gzip: c.gzip, IndexerAck: c.indexerAck, AckTimeout: c.ackTimeout, Channel: c.channel,
			CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile, InsecureSkipVerify: c.insecureSkipVerify,
			AllowInsecureHTTP: c.allowHTTP, Timeout: c.timeout, MaxIdleConns: 2 * c.inflight,
		})
		if err != nil {
			return nil, exitcode.New(exitcode.Usage, err)
		}
		return s, nil
	}
}
