// Command latency measures how long a row committed to the audit database
// takes to be acked and to be covered by the exporter's committed cursor,
// with the follow pipeline running as operators run it:
//
//	audit-read --follow | audit-verify | audit-batch --siem splunk \
//	  | audit-ship --kind splunk --acks SHIP-FIFO        (acks -> this tool -> ACK-FIFO)
//	audit-ack --fifo ACK-FIFO                           (commits the cursor)
//
// It appends rows at a steady --rate (records/s, in one transaction every
// --tick, through lib/auditdb's Writer.Append, as audit-append does) for
// --warmup plus --duration, and records each row's commit time (when Append
// returned). It sits between audit-ship and audit-ack on the ack FIFOs: the
// moment an ack line arrives is when the rows it covers are acked (the
// line is passed on unchanged). It polls the committed cursor every
// --cursor-poll. For the rows appended after the warmup it prints the
// p50/p90/p99/max of commit -> ack line and commit -> cursor, and the rate
// it achieved. The pipeline ships into --url (a receiver such as
// internal/tools/siemnull); each stage's flags can be changed with
// --read-flags, --batch-flags, --ship-flags and --ack-flags, to see which
// knob the time goes to. It runs only the binaries in --bin.
//
// Exit: 0 measured; 1 the pipeline failed or the cursor did not catch up.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/auditdb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

type config struct {
	bin, dir, url, label                        string
	rate                                        float64
	duration, warmup, tick, cursorPoll, catchUp time.Duration
	readFlags, batchFlags, shipFlags, ackFlags  string
	noBatch                                     bool
}

func run() error {
	var c config
	flag.StringVar(&c.bin, "bin", ".bench/bin", "directory of the auditpipe binaries")
	flag.StringVar(&c.dir, "dir", ".bench/latency", "work directory (the database and FIFOs; emptied first)")
	flag.StringVar(&c.url, "url", "", "HEC base URL of the receiver (required)")
	flag.StringVar(&c.label, "label", "default knobs", "what this run is, for the output line")
	flag.Float64Var(&c.rate, "rate", 100, "rows appended per second, steady")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long rows are appended and measured (after --warmup)")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "rows appended before measuring (the pipeline settles)")
	flag.DurationVar(&c.tick, "tick", 10*time.Millisecond, "one append transaction every tick, holding the rows owed by then")
	flag.DurationVar(&c.cursorPoll, "cursor-poll", 2*time.Millisecond, "how often the committed cursor is read (its resolution)")
	flag.DurationVar(&c.catchUp, "catch-up", 30*time.Second, "how long the cursor may take to reach the last row after appending stops")
	flag.StringVar(&c.readFlags, "read-flags", "", "extra audit-read flags, e.g. '--poll 5ms'")
	flag.StringVar(&c.batchFlags, "batch-flags", "", "extra audit-batch flags, e.g. '--min-interval 5ms'")
	flag.StringVar(&c.shipFlags, "ship-flags", "", "extra audit-ship flags")
	flag.StringVar(&c.ackFlags, "ack-flags", "", "extra audit-ack flags, e.g. '--commit-interval 0'")
	flag.BoolVar(&c.noBatch, "no-batch", false, "no audit-batch process (audit-ship batches plain records itself; its batching flags go in --ship-flags)")
	flag.Parse()
	if c.url == "" || c.rate <= 0 || c.duration <= 0 || c.tick <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx := context.Background()

	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	dbPath := filepath.Join(c.dir, "audit.db")
	shipFIFO, ackFIFO := filepath.Join(c.dir, "ship.fifo"), filepath.Join(c.dir, "ack.fifo")
	for _, f := range []string{shipFIFO, ackFIFO} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			return fmt.Errorf("mkfifo %s: %w", f, err)
		}
	}
	w, err := auditdb.OpenWriter(ctx, dbPath, auditdb.WriterOptions{Create: true, BusyTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer w.Close()
	// One row before the pipeline starts: the chain exists and audit-read's
	// start anchor is a row.
	if _, _, err := w.Append(ctx, [][]byte{event(nil, 0)}, time.Now); err != nil {
		return err
	}

	// The FIFOs are opened read-write here, so neither open blocks and
	// neither side sees an end while the other restarts.
	shipR, err := os.OpenFile(shipFIFO, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer shipR.Close()
	ackW, err := os.OpenFile(ackFIFO, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer ackW.Close()

	const exp = "splunk:latency"
	b := func(name string) string { return filepath.Join(c.bin, name) }
	pipe := fmt.Sprintf("%s --db %s --from-cursor %s --new-cursor --follow --quiet %s | %s --db %s --from-cursor %s --new-cursor --quiet",
		b("audit-read"), dbPath, exp, c.readFlags, b("audit-verify"), dbPath, exp)
	if c.noBatch {
		if c.batchFlags != "" {
			return errors.New("--batch-flags with --no-batch: there is no audit-batch; give audit-ship's batching flags (--batch-size, --batch-interval) in --ship-flags")
		}
	} else {
		pipe += fmt.Sprintf(" | %s --siem splunk --quiet %s", b("audit-batch"), c.batchFlags)
	}
	pipe += fmt.Sprintf(" | %s --kind splunk --url %s --token env:LATENCY_HEC_TOKEN --exporter %s --acks %s --quiet %s",
		b("audit-ship"), c.url, exp, shipFIFO, c.shipFlags)
	logf, err := os.Create(filepath.Join(c.dir, "pipeline.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	start := func(script string) (*exec.Cmd, error) {
		cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
		cmd.Env = append(os.Environ(), "LATENCY_HEC_TOKEN=latency")
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd, cmd.Start()
	}
	ackCmd, err := start(fmt.Sprintf("exec %s --fifo %s --db %s --exporter %s --new-cursor --quiet %s", b("audit-ack"), ackFIFO, dbPath, exp, c.ackFlags))
	if err != nil {
		return err
	}
	pipeCmd, err := start(pipe)
	if err != nil {
		syscall.Kill(-ackCmd.Process.Pid, syscall.SIGTERM)
		return err
	}
	exited := make(chan string, 2)
	gone := 0 // messages taken from exited
	go func() { err := pipeCmd.Wait(); exited <- fmt.Sprintf("the pipeline exited (%v)", err) }()
	go func() { err := ackCmd.Wait(); exited <- fmt.Sprintf("audit-ack exited (%v)", err) }()
	// At the end both process groups get SIGTERM and are waited for (SIGKILL
	// after 10 s), so that the next run's database is not opened while
	// this one's is still held.
	defer func() {
		for _, c := range []*exec.Cmd{pipeCmd, ackCmd} {
			syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		}
		kill := time.After(10 * time.Second)
		for ; gone < 2; gone++ {
			select {
			case <-exited:
			case <-kill:
				syscall.Kill(-pipeCmd.Process.Pid, syscall.SIGKILL)
				syscall.Kill(-ackCmd.Process.Pid, syscall.SIGKILL)
				return
			}
		}
	}()

	var (
		mu       sync.Mutex
		commitAt = map[int64]time.Time{} // seq -> when its transaction committed
		ackAt    = map[int64]time.Time{} // seq -> when the first ack line covering it arrived
		curAt    = map[int64]time.Time{} // seq -> when the committed cursor first covered it
		acked    int64
		cursor   int64
	)
	// The ack tap: every line is passed on to audit-ack as it came.
	tapErr := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(shipR, 64<<10)
		var p fastjson.Parser
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				tapErr <- err
				return
			}
			now := time.Now()
			if a, err := ack.Parse(&p, line[:len(line)-1]); err == nil {
				mu.Lock()
				for s := acked + 1; s <= a.LastSeq; s++ {
					ackAt[s] = now
				}
				acked = max(acked, a.LastSeq)
				mu.Unlock()
			}
			if _, err := ackW.Write(line); err != nil {
				tapErr <- err
				return
			}
		}
	}()
	// The cursor poller.
	rdb, err := auditdb.OpenReader(ctx, dbPath, auditdb.ReaderOptions{})
	if err != nil {
		return err
	}
	defer rdb.Close()
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go func() {
		t := time.NewTicker(c.cursorPoll)
		defer t.Stop()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-t.C:
			}
			cur, err := rdb.Cursor(pollCtx, exp)
			if err != nil || !cur.Found {
				continue
			}
			now := time.Now()
			mu.Lock()
			for s := cursor + 1; s <= cur.LastSeq; s++ {
				curAt[s] = now
			}
			cursor = max(cursor, cur.LastSeq)
			mu.Unlock()
		}
	}()

	// The appender.
	var (
		firstMeasured, last int64
		appended            int64
		evs                 [][]byte
		buf                 []byte
	)
	begin := time.Now()
	measureFrom := begin.Add(c.warmup)
	end := measureFrom.Add(c.duration)
	tk := time.NewTicker(c.tick)
	var measuredStart time.Time
	for now := range tk.C {
		select {
		case why := <-exited:
			gone++
			tk.Stop()
			return fmt.Errorf("%s while rows were appended; its log: %s", why, filepath.Join(c.dir, "pipeline.log"))
		case err := <-tapErr:
			return fmt.Errorf("ack tap: %w", err)
		default:
		}
		if now.After(end) {
			break
		}
		owed := int64(c.rate*now.Sub(begin).Seconds()) - appended
		if owed <= 0 {
			continue
		}
		evs, buf = evs[:0], buf[:0]
		for i := range owed {
			from := len(buf)
			buf = event(buf, appended+i+1)
			evs = append(evs, buf[from:len(buf):len(buf)])
		}
		_, l, err := w.Append(ctx, evs, time.Now)
		if err != nil {
			return err
		}
		at := time.Now()
		mu.Lock()
		for s := l - owed + 1; s <= l; s++ {
			commitAt[s] = at
		}
		mu.Unlock()
		if firstMeasured == 0 && now.After(measureFrom) {
			firstMeasured, measuredStart = l-owed+1, at
		}
		last = l
		appended += owed
	}
	tk.Stop()
	measuredSecs := time.Since(measuredStart).Seconds()

	// Wait for the cursor to reach the last row.
	deadline := time.Now().Add(c.catchUp)
	for {
		mu.Lock()
		done := cursor >= last
		mu.Unlock()
		if done {
			break
		}
		select {
		case why := <-exited:
			gone++
			return fmt.Errorf("%s before the cursor reached seq %d; its log: %s", why, last, filepath.Join(c.dir, "pipeline.log"))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cursor is at seq %d, not at the last row %d, %v after appending stopped; log: %s", cursor, last, c.catchUp, filepath.Join(c.dir, "pipeline.log"))
		}
		time.Sleep(c.cursorPoll)
	}
	stopPoll()

	mu.Lock()
	defer mu.Unlock()
	var toAck, toCur []time.Duration
	for s := firstMeasured; s <= last; s++ {
		ct := commitAt[s]
		if a, ok := ackAt[s]; ok {
			toAck = append(toAck, a.Sub(ct))
		}
		if cu, ok := curAt[s]; ok {
			toCur = append(toCur, cu.Sub(ct))
		}
	}
	n := last - firstMeasured + 1
	if int64(len(toCur)) != n {
		return errors.New("internal: a measured row has no cursor time")
	}
	fmt.Printf("latency %6.0f rec/s (%s; appended %.0f/s, %d rows measured):\n", c.rate, c.label, float64(n)/measuredSecs, n)
	fmt.Printf("  commit -> ack line  %s\n", quantiles(toAck))
	fmt.Printf("  commit -> cursor    %s\n", quantiles(toCur))
	return nil
}

// quantiles formats p50, p90, p99 and max of d in milliseconds.
func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no rows"
	}
	slices.Sort(d)
	q := func(p float64) string {
		i := int(p*float64(len(d))+0.5) - 1
		i = min(max(i, 0), len(d)-1)
		return strconv.FormatFloat(float64(d[i])/float64(time.Millisecond), 'f', 1, 64)
	}
	return fmt.Sprintf("p50 %6s ms  p90 %6s ms  p99 %6s ms  max %6s ms", q(0.50), q(0.90), q(0.99), q(1))
}

// event appends one event of about 600 bytes, as audit-sample writes them.
func event(b []byte, i int64) []byte {
	b = append(b, `{"kind":"tool_call","tenantId":"acme","actor":"agent:planner","tool":"search","decision":"allow","requestId":"lat-`...)
	b = strconv.AppendInt(b, i, 36)
	b = append(b, `","detail":{"note":"`...)
	for range 10 {
		b = append(b, "the quick brown fox jumps over the lazy dog; "...)
	}
	return append(b, `"}}`...)
}
