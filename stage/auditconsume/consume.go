// Package auditconsume is audit-consume: the central side of a fleet
// through Kafka (issue 15). It reads a topic in a consumer group and writes
// the record lines of many chains, each run of a chain's records after a
// chain mark naming it, for audit-verify; it commits a partition's offset
// only up to its lowest record not yet acked by the shipper, after storing
// each chain's anchor. The man page is cmd/audit-consume/doc.go.
package auditconsume

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	kclient "github.com/auditpipe/auditpipe/lib/kafka"
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
)

const prog = "audit-consume"

const synopsis = `usage: audit-consume --brokers HOST:PORT,... --topic TOPIC --group GROUP --acks FIFO [flags]
       audit-consume --brokers ... --group GROUP --set-anchor CHAIN=SEQ:HASH

Reads TOPIC in consumer group GROUP and writes the record lines of many
chains to stdout, each run of one chain's records after a chain mark, for
audit-verify. Commits a partition's offset only up to its lowest record not
yet acked on the --acks FIFO, after storing each chain's anchor in
--anchors-topic. One group per SIEM: each gets everything at its own pace.

Example:
  audit-consume --brokers k1:9092 --topic audit --group splunk-prod --acks /run/auditpipe/acks.fifo \
    | audit-verify --holds /run/auditpipe/acks.fifo | audit-batch \
    | audit-ship --kind splunk --exporter splunk:prod --acks /run/auditpipe/acks.fifo`

// Main is the entry point of the audit-consume binary.
func Main() int { return cli.Main(prog, Run) }

type config struct {
	brokers      string
	topic        string
	group        string
	acks         string
	anchorsTopic string
	clientID     string
	setAnchor    string
	maxInFlight  int
	commitEvery  time.Duration
	drain        time.Duration
	session      time.Duration
	quiet        bool

	// The connection: lib/kafka's options, the flags of audit-ship --kind kafka.
	kafka        kclient.Options
	password     string // --password: a secret reference
	secretTimout time.Duration
	metrics      stagemetrics.Flags
}

// consumer is one run.
type consumer struct {
	c      *config
	cl     *kgo.Client
	store  *anchorStore
	stderr io.Writer

	mu       sync.Mutex
	cond     *sync.Cond
	t        *tracker
	lastOut  string     // the chain of the last record written
	commitMu sync.Mutex // one commit at a time

	// counters for the summary
	written, skipped, malformed, acks, holds, noChainAcks int64
	commits                                               int64 // offset commits that succeeded
	commitErr                                             error
}

// Run is audit-consume with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet(prog, "AUDIT_CONSUME", synopsis, stderr)
	var c config
	fs.StringVar(&c.brokers, "brokers", "", "Kafka bootstrap brokers, comma-separated HOST:PORT")
	fs.StringVar(&c.topic, "topic", "", "the topic the hosts ship to (audit-ship --kind kafka)")
	fs.StringVar(&c.group, "group", "", "consumer group: one per SIEM (each has its own offsets and anchors)")
	fs.StringVar(&c.acks, "acks", "", "FIFO the shipper writes its ack lines to (and audit-verify --holds its hold lines); created if missing")
	fs.StringVar(&c.anchorsTopic, "anchors-topic", "auditpipe-anchors", "compacted topic holding each group's per-chain anchors (created if missing)")
	fs.StringVar(&c.clientID, "client-id", "audit-consume", "Kafka client id")
	fs.StringVar(&c.setAnchor, "set-anchor", "", "store CHAIN=SEQ:HASH as the group's anchor of that chain and exit (an operator's fix: see doc)")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 10000, "records written and not yet acked at most: fetching stops at this many (back-pressure)")
	fs.DurationVar(&c.commitEvery, "commit-interval", time.Second, "how often anchors are stored and offsets committed")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "on SIGTERM, how long to wait for the acks of the records in flight before the last commit")
	fs.DurationVar(&c.session, "session-timeout", 45*time.Second, "consumer group session timeout: how long a consumer that died without leaving keeps its partitions")
	fs.BoolVar(&c.quiet, "quiet", false, "no summary line on stderr")
	// TLS and SASL: the flags of audit-ship --kind kafka (lib/kafka).
	fs.BoolVar(&c.kafka.TLS, "tls", false, "connect with TLS (implied by --ca-file, --cert-file, --key-file, --insecure-skip-verify)")
	fs.StringVar(&c.kafka.CAFile, "ca-file", "", "PEM CA bundle to verify the brokers with (default: the system's)")
	fs.StringVar(&c.kafka.CertFile, "cert-file", "", "PEM client certificate (mutual TLS), with --key-file")
	fs.StringVar(&c.kafka.KeyFile, "key-file", "", "PEM client key, with --cert-file")
	fs.BoolVar(&c.kafka.InsecureSkipVerify, "insecure-skip-verify", false, "do not verify the brokers' certificates (tests only)")
	fs.StringVar(&c.kafka.SASL, "sasl", "", "SASL mechanism: "+strings.Join(kclient.Mechanisms, ", ")+" (with --username and --password)")
	fs.StringVar(&c.kafka.Username, "username", "", "SASL user name (not a secret)")
	fs.StringVar(&c.password, "password", "", "SASL password reference: env:NAME, file:PATH or exec:COMMAND (re-read on every new connection)")
	fs.BoolVar(&c.kafka.AllowPlaintextSASL, "allow-insecure-sasl", false, "allow SASL PLAIN to a non-loopback broker without TLS (the password travels in clear)")
	fs.DurationVar(&c.secretTimout, "secret-timeout", 10*time.Second, "how long an exec: password reference may run")
	c.metrics.Register(fs)
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, "AUDIT_CONSUME"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %q", fs.Args())
	}
	if c.brokers == "" || c.group == "" {
		return cli.Usagef("--brokers and --group are required")
	}
	if c.anchorsTopic == "" {
		return cli.Usagef("--anchors-topic must not be empty")
	}
	opts, err := c.clientOpts(ctx)
	if err != nil {
		return err
	}
	if c.setAnchor != "" {
		return c.runSetAnchor(ctx, opts, stdout)
	}
	if c.topic == "" || c.acks == "" {
		return cli.Usagef("--topic and --acks are required")
	}
	if c.maxInFlight < 1 || c.commitEvery <= 0 {
		return cli.Usagef("--max-in-flight must be at least 1 and --commit-interval positive")
	}
	if err := ack.EnsureFIFO(c.acks); err != nil {
		return exitcode.New(exitcode.Usage, fmt.Errorf("--acks: %w", err))
	}
	ackf, err := os.OpenFile(c.acks, os.O_RDWR, 0) // RDWR: no EOF when the shipper restarts
	if err != nil {
		return exitcode.New(exitcode.Usage, fmt.Errorf("--acks: %w", err))
	}
	defer ackf.Close()

	cs := &consumer{c: &c, t: newTracker(), stderr: stderr}
	cs.store = &anchorStore{topic: c.anchorsTopic, group: c.group, opts: opts}
	cs.cond = sync.NewCond(&cs.mu)
	ms, err := c.metrics.Start(ctx, prog, c.metrics.Labels(c.group, ""), stderr)
	if err != nil {
		return err
	}
	defer ms.Close()
	cs.register(ms)
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumerGroup(c.group),
		kgo.ConsumeTopics(c.topic),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(c.session),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(cs.assigned),
		kgo.OnPartitionsRevoked(cs.revoked),
		kgo.OnPartitionsLost(cs.lost),
	)...)
	if err != nil {
		return cli.Usagef("kafka client: %v", err)
	}
	cs.cl = cl
	if err := cs.store.ensure(ctx, cl); err != nil {
		cl.Close()
		return err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { // wake the waits on the lock when asked to stop
		<-runCtx.Done()
		cs.mu.Lock()
		cs.cond.Broadcast()
		cs.mu.Unlock()
	}()
	go cs.readAcks(ackf)
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		tk := time.NewTicker(c.commitEvery)
		defer tk.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tk.C:
				cs.commit(runCtx, cl, nil)
			}
		}
	}()

	out := bufio.NewWriterSize(stdout, 1<<20)
	runErr := cs.poll(runCtx, out)
	if ferr := out.Flush(); runErr == nil && ferr != nil {
		runErr = fmt.Errorf("write stdout: %w", ferr)
	}
	if runErr == nil && ctx.Err() != nil && !errors.Is(cli.Stopping(stdin), cli.ErrOutputClosed) {
		cs.drainAcks(c.drain) // a stop signal: let the records in flight be acked
	}
	stop()
	<-commitDone
	// The last commit: what was acked (its anchors stored first).
	cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	cs.commit(cctx, cl, nil)
	cancel()
	cl.Close()
	if !c.quiet {
		cs.mu.Lock()
		fmt.Fprintf(stderr, "%s: %d records written, %d skipped as delivered before (at or below their chain's anchor), %d not records (malformed), %d acks, %d holds, %d in flight at exit\n",
			prog, cs.written, cs.skipped, cs.malformed, cs.acks, cs.holds, cs.t.inFlight)
		cs.mu.Unlock()
	}
	if runErr == nil && cs.commitErr != nil && ctx.Err() == nil {
		runErr = cs.commitErr
	}
	return runErr
}

// poll fetches records while fewer than --max-in-flight are unacked, and
// writes them out.
func (cs *consumer) poll(ctx context.Context, out *bufio.Writer) error {
	var p fastjson.Parser
	var buf []byte
	var g runs
	paused := false
	for {
		cs.mu.Lock()
		for cs.t.inFlight >= cs.c.maxInFlight && ctx.Err() == nil {
			if !paused { // back-pressure: stop fetching, not only polling
				cs.cl.PauseFetchTopics(cs.c.topic)
				paused = true
			}
			cs.cond.Wait()
		}
		room := cs.c.maxInFlight - cs.t.inFlight
		cs.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		if paused {
			cs.cl.ResumeFetchTopics(cs.c.topic)
			paused = false
		}
		fs := cs.cl.PollRecords(ctx, room)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		var fatal error
		fs.EachError(func(t string, part int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			fmt.Fprintf(cs.stderr, "%s: fetch %s[%d]: %v\n", prog, t, part, err)
			if isFatal(err) && fatal == nil {
				fatal = fmt.Errorf("fetch %s[%d]: %w", t, part, err)
			}
		})
		if fatal != nil {
			return fatal
		}
		buf = buf[:0]
		cs.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			id, seq, why := recordChain(&p, r)
			if why != "" {
				// Not a record of any chain: said, counted and not
				// written. A real record missing from a chain is then a
				// seq_gap to audit-verify, never a silent loss.
				cs.malformed++
				fmt.Fprintf(cs.stderr, "%s: %s[%d] offset %d is not a record line of a chain (%s): not written; if it should be, see what produced it\n", prog, r.Topic, r.Partition, r.Offset, why)
				cs.t.parts[tp{r.Topic, r.Partition}].noteSeen(r.Offset, r.LeaderEpoch)
				return
			}
			write, mark := cs.t.record(tp{r.Topic, r.Partition}, r.Offset, r.LeaderEpoch, id, seq)
			if !write {
				cs.skipped++
				return
			}
			rn := g.run(id)
			if mark != nil { // the chain's anchored mark: its first record since the assignment
				rn.b = append(append(rn.b, mark...), '\n')
				rn.marked = true
			}
			rn.b = append(append(rn.b, r.Value...), '\n')
			cs.written++
		})
		// One run per chain of what this poll fetched, each chain's
		// records in their order: chains that share a partition arrive
		// interleaved (a record or a producer batch at a time), and every
		// change of chain downstream closes a batch (lib/batcher), so
		// grouping here keeps the SIEM's batches full. The order across
		// chains means nothing; offsets are committed by acks, not by
		// output order.
		for _, rn := range g.runs {
			if !rn.marked && rn.id != cs.lastOut {
				buf = append(chain.AppendChainMark(buf, rn.id, nil), '\n')
			}
			buf = append(buf, rn.b...)
			cs.lastOut = rn.id
		}
		g.reset()
		cs.mu.Unlock()
		if _, err := out.Write(buf); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
	}
}

// runs groups the record lines of one poll by chain, in the order each
// chain was first seen; the buffers are reused from poll to poll.
type runs struct {
	runs []*chainRun
	idx  map[string]*chainRun
	free []*chainRun
}

type chainRun struct {
	id     string
	b      []byte // chain mark (if marked) and record lines, each with '\n'
	marked bool   // b starts with the chain's anchored mark
}

func (g *runs) run(id string) *chainRun {
	if r := g.idx[id]; r != nil {
		return r
	}
	if g.idx == nil {
		g.idx = map[string]*chainRun{}
	}
	var r *chainRun
	if n := len(g.free); n > 0 {
		r, g.free = g.free[n-1], g.free[:n-1]
	} else {
		r = new(chainRun)
	}
	r.id, r.b, r.marked = id, r.b[:0], false
	g.idx[id] = r
	g.runs = append(g.runs, r)
	return r
}

func (g *runs) reset() {
	for _, r := range g.runs {
		if cap(r.b) > 1<<20 { // a big poll's buffer is not kept
			r.b = nil
		}
		g.free = append(g.free, r)
	}
	g.runs = g.runs[:0]
	clear(g.idx)
}

// noteSeen moves a partition's position past a record not written.
func (p *partState) noteSeen(off int64, epoch int32) {
	if p != nil {
		p.next, p.epoch = off+1, epoch
	}
}

// isFatal: a Kafka error that retrying will not cure (authorization,
// an unsupported version); the client retries the others itself.
func isFatal(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) && !ke.Retriable
}

// recordChain gives a Kafka record's chain (its key, else its "chain"
// header) and seq (from the record line itself), or why it is not a
// record line of a chain.
func recordChain(p *fastjson.Parser, r *kgo.Record) (id string, seq int64, why string) {
	id = string(r.Key)
	if chain.ValidChainID(id) != nil {
		id = ""
		for _, h := range r.Headers {
			if h.Key == "chain" && chain.ValidChainID(string(h.Value)) == nil {
				id = string(h.Value)
			}
		}
	}
	if id == "" {
		return "", 0, "no chain id in its key or chain header"
	}
	if len(r.Value) == 0 || bytes.IndexByte(r.Value, '\n') >= 0 || framing.IsMark(r.Value) {
		return "", 0, "its value is not one line"
	}
	v, err := p.ParseBytes(r.Value)
	if err != nil {
		return "", 0, "its value is not JSON"
	}
	sv := v.Get("seq")
	if sv == nil || sv.Type() != fastjson.TypeNumber {
		return "", 0, "its value has no seq"
	}
	seq, err = strconv.ParseInt(sv.String(), 10, 64)
	if err != nil || seq < 1 {
		return "", 0, "its seq is not a positive integer"
	}
	return id, seq, ""
}

// readAcks reads ack lines (audit-ship's, naming their chain) and hold
// lines (audit-verify --holds) from the FIFO until it is closed.
func (cs *consumer) readAcks(f *os.File) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var p fastjson.Parser
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if bytes.HasPrefix(line, chain.HoldPrefix) {
			h, err := chain.ParseHold(line)
			if err != nil {
				fmt.Fprintf(cs.stderr, "%s: --acks: %v\n", prog, err)
				continue
			}
			cs.mu.Lock()
			cs.holds++
			cs.t.hold(h.Chain, h.Seq)
			cs.cond.Broadcast()
			cs.mu.Unlock()
			fmt.Fprintf(cs.stderr, "%s: chain %s held by audit-verify at seq %d (%s): its records no longer count in flight; its partition's committed offset stays at its first record not delivered until the chain is fixed (see audit-consume --set-anchor)\n", prog, h.Chain, h.Seq, h.Reason)
			continue
		}
		a, id, err := parseAck(&p, line)
		if err != nil {
			fmt.Fprintf(cs.stderr, "%s: --acks: %v\n", prog, err)
			continue
		}
		cs.mu.Lock()
		if id == "" {
			cs.noChainAcks++
			if cs.noChainAcks == 1 {
				fmt.Fprintf(cs.stderr, "%s: --acks: an ack without \"chain\" (seq %d..%d): audit-consume needs acks that name their chain; not applied\n", prog, a.FirstSeq, a.LastSeq)
			}
		} else {
			cs.acks++
			cs.t.ack(id, a.LastSeq, a.LastHash)
			cs.cond.Broadcast()
		}
		cs.mu.Unlock()
	}
}

// parseAck parses an ack line (lib/ack) and returns its "chain" too.
func parseAck(p *fastjson.Parser, line []byte) (ack.Ack, string, error) {
	if p == nil {
		p = new(fastjson.Parser)
	}
	a, err := ack.Parse(p, line)
	return a, a.Chain, err
}

// drainAcks waits, up to d, for the records in flight to be acked.
func (cs *consumer) drainAcks(d time.Duration) {
	deadline := time.Now().Add(d)
	t := time.AfterFunc(d, func() {
		cs.mu.Lock()
		cs.cond.Broadcast()
		cs.mu.Unlock()
	})
	defer t.Stop()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for cs.t.inFlight > 0 && time.Now().Before(deadline) {
		cs.cond.Wait()
	}
}

// commit stores the anchors acked since the last commit, then commits each
// partition's watermark (only parts, when not nil).
func (cs *consumer) commit(ctx context.Context, cl *kgo.Client, parts map[tp]bool) {
	cs.commitMu.Lock()
	defer cs.commitMu.Unlock()
	cs.mu.Lock()
	as := cs.t.dirtyAnchors()
	offs := map[string]map[int32]kgo.EpochOffset{}
	type pc struct {
		k   tp
		off int64
	}
	var moved []pc
	for k, p := range cs.t.parts {
		if parts != nil && !parts[k] {
			continue
		}
		off, ep := cs.t.watermark(k)
		if off < 0 || off <= p.committed {
			continue
		}
		if offs[k.topic] == nil {
			offs[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offs[k.topic][k.part] = kgo.EpochOffset{Epoch: ep, Offset: off}
		moved = append(moved, pc{k, off})
	}
	cs.mu.Unlock()
	if err := cs.store.store(ctx, cl, as); err != nil {
		cs.commitErr = err
		fmt.Fprintf(cs.stderr, "%s: %v: offsets not committed (they will be once the anchors are stored)\n", prog, err)
		return
	}
	cs.mu.Lock()
	cs.t.stored(as)
	cs.mu.Unlock()
	if len(offs) == 0 {
		return
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = e
				}
			}
		}
	})
	if cerr != nil {
		cs.commitErr = cerr
		fmt.Fprintf(cs.stderr, "%s: commit offsets: %v (the records will be read again: duplicates, not loss)\n", prog, cerr)
		return
	}
	cs.commitErr = nil
	cs.mu.Lock()
	cs.commits++
	for _, m := range moved {
		if p := cs.t.parts[m.k]; p != nil && m.off > p.committed {
			p.committed = m.off
		}
	}
	cs.mu.Unlock()
}

// assigned: read the group's anchors (another consumer may have stored
// them, for chains it had before this rebalance), then track the
// partitions.
func (cs *consumer) assigned(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	as, err := cs.store.load(ctx, cl)
	if err != nil {
		fmt.Fprintf(cs.stderr, "%s: %v: the chains of the partitions assigned resume without their anchors (audit-verify holds those that do not start at genesis)\n", prog, err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for id, a := range as {
		cs.t.loadAnchor(id, a)
	}
	for t, ps := range m {
		for _, p := range ps {
			cs.t.assign(tp{t, p})
		}
	}
}

// revoked: commit what was acked on the partitions leaving (anchors
// first), then forget them.
func (cs *consumer) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	parts := map[tp]bool{}
	for t, ps := range m {
		for _, p := range ps {
			parts[tp{t, p}] = true
		}
	}
	if len(parts) == 0 {
		return
	}
	cs.commit(ctx, cl, parts)
	cs.lost(ctx, cl, m)
}

// lost: forget the partitions (no commit: the group has moved on).
func (cs *consumer) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			cs.t.revoke(tp{t, p})
		}
	}
	cs.cond.Broadcast()
}

// runSetAnchor stores CHAIN=SEQ:HASH as the group's anchor of a chain.
func (c *config) runSetAnchor(ctx context.Context, opts []kgo.Opt, stdout io.Writer) error {
	id, rest, ok := strings.Cut(c.setAnchor, "=")
	seqs, h, ok2 := strings.Cut(rest, ":")
	seq, err := strconv.ParseInt(seqs, 10, 64)
	if !ok || !ok2 || err != nil || seq < 1 || chain.ValidChainID(id) != nil || !isHexHash(h) {
		return cli.Usagef("--set-anchor must be CHAIN=SEQ:HASH (SEQ >= 1, HASH 64 lowercase hex), got %q", c.setAnchor)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return cli.Usagef("kafka client: %v", err)
	}
	defer cl.Close()
	s := &anchorStore{topic: c.anchorsTopic, group: c.group, opts: opts}
	if err := s.ensure(ctx, cl); err != nil {
		return err
	}
	if err := s.store(ctx, cl, map[string]chain.Anchor{id: {Seq: seq, Hash: h}}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "group %s: chain %s anchored at seq %d %s\n", c.group, id, seq, h)
	return nil
}

func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
