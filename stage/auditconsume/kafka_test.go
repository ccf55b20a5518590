package auditconsume_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/stage/auditconsume"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

func TestMain(m *testing.M) {
	if os.Getenv("CONSUME_TEST_CHILD") == "1" {
		os.Exit(auditconsume.Main())
	}
	os.Exit(m.Run())
}

const topic = "audit"

// hostChain is a chain of n record lines in audit-read's layout, distinct
// per host; its id is the recordHash of its first record.
func hostChain(host string, n int) (id string, lines []string) {
	prev := ""
	for i := 1; i <= n; i++ {
		rec := fmt.Sprintf(`{"actor":"agent:%s","kind":"tool_call","n":%d,"tenantId":"acme","ts":%d}`, host, i, 1764244800000+int64(i))
		s := sha256.Sum256([]byte(prev + "\n" + rec))
		h := hex.EncodeToString(s[:])
		lines = append(lines, fmt.Sprintf(`{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":%s,"prevHash":%q,"recordHash":%q}`, i, 1764244800000+int64(i), rec, prev, h))
		prev = h
	}
	return hashOf(lines[0]), lines
}

func hashOf(line string) string {
	i := strings.Index(line, `"recordHash":"`)
	return line[i+14 : i+78]
}

func seqOf(line string) int64 {
	var n int64
	fmt.Sscanf(line, `{"seq":%d,`, &n)
	return n
}

type fleet struct {
	ids   []string
	lines map[string][]string
}

func newFleet(hosts, n int) *fleet {
	f := &fleet{lines: map[string][]string{}}
	for h := 0; h < hosts; h++ {
		id, l := hostChain(fmt.Sprintf("host%d", h), n)
		f.ids = append(f.ids, id)
		f.lines[id] = l
	}
	return f
}

func (f *fleet) total() int {
	n := 0
	for _, l := range f.lines {
		n += len(l)
	}
	return n
}

// startCluster starts a 3-broker kfake cluster on 127.0.0.1 with the
// topic in 4 partitions.
func startCluster(t *testing.T) string {
	_, addrs := startClusterC(t)
	return addrs
}

func startClusterC(t *testing.T) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, topic)) // listens on 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ",")
}

// produceRange ships records [from, to) of one chain again (a shipper that
// restarted sends a batch twice: at-least-once).
func produceRange(t *testing.T, brokers string, f *fleet, id string, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(id), Value: []byte(f.lines[id][i])})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// produce ships records [from, to) of each chain, interleaved, keyed by
// chain id (as audit-ship --kind kafka does).
func produce(t *testing.T, brokers string, f *fleet, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		for _, id := range f.ids {
			if i < len(f.lines[id]) {
				recs = append(recs, &kgo.Record{Key: []byte(id), Value: []byte(f.lines[id][i]),
					Headers: []kgo.RecordHeader{{Key: "chain", Value: []byte(id)}}})
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// delivered is what a fake shipper got, per chain in order.
type delivered struct {
	mu    sync.Mutex
	seqs  map[string][]int64
	marks int
	delay time.Duration // per record: a slow SIEM
}

func (d *delivered) count(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seqs[id])
}

func (d *delivered) distinct(id string) map[int64]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[int64]bool{}
	for _, s := range d.seqs[id] {
		m[s] = true
	}
	return m
}

// fakeShip plays audit-ship after the chain wiring: it reads
// audit-verify's output (chain marks, then record lines), "delivers" each
// record and writes an ack line naming its chain to the FIFO.
func fakeShip(t *testing.T, r io.Reader, fifo string, d *delivered) {
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer w.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	cur := ""
	for sc.Scan() {
		l := sc.Text()
		if framing.IsMark([]byte(l)) {
			m, err := chain.ParseMark([]byte(l))
			if err != nil || m.Type != chain.MarkChain {
				t.Errorf("shipper got mark %s (%v)", l, err)
				continue
			}
			cur = m.Chain
			d.mu.Lock()
			d.marks++
			d.mu.Unlock()
			continue
		}
		seq := seqOf(l)
		time.Sleep(d.delay)
		d.mu.Lock()
		d.seqs[cur] = append(d.seqs[cur], seq)
		d.mu.Unlock()
		line := append(ack.Append(nil, ack.Ack{Exporter: "kafka:test", Chain: cur, FirstSeq: seq, LastSeq: seq, LastHash: hashOf(l), Count: 1}), '\n')
		if _, err := w.Write(line); err != nil {
			return // the consumer is gone (killed): its acks are lost, as in life
		}
	}
}

// pipeline is audit-consume | audit-verify --holds FIFO | fake shipper,
// in-process.
type pipeline struct {
	cancel     context.CancelFunc
	done       chan struct{}
	consumeErr error
	verifyErr  error
	stderr     *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startPipeline(t *testing.T, brokers, group, dir string, d *delivered, extra ...string) *pipeline {
	t.Helper()
	fifo := filepath.Join(dir, group+"-"+fmt.Sprint(time.Now().UnixNano())+".fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{cancel: cancel, done: make(chan struct{}), stderr: &syncBuf{}}
	cr, cw := io.Pipe()
	vr, vw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		args := append([]string{"--brokers", brokers, "--topic", topic, "--group", group, "--acks", fifo, "--commit-interval", "100ms", "--drain", "2s"}, extra...)
		p.consumeErr = auditconsume.Run(ctx, args, nil, cw, p.stderr)
		cw.Close()
	}()
	go func() {
		defer wg.Done()
		p.verifyErr = auditverify.Run(context.Background(), []string{"--holds", fifo, "--quiet"}, cr, vw, p.stderr)
		cr.CloseWithError(io.ErrClosedPipe)
		vw.Close()
	}()
	go func() {
		defer wg.Done()
		fakeShip(t, vr, fifo, d)
		io.Copy(io.Discard, vr)
	}()
	go func() { wg.Wait(); close(p.done) }()
	return p
}

func (p *pipeline) stop(t *testing.T) {
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("pipeline did not stop\n%s", p.stderr.String())
	}
}

func waitFor(t *testing.T, what string, cond func() bool, stderr func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkChain: what a group delivered of a chain is, in order, 1..n with
// duplicates only as replays (each record at most... re-delivered runs),
// and nothing missing.
func checkChain(t *testing.T, what string, d *delivered, id string, n int) {
	t.Helper()
	got := d.distinct(id)
	for s := int64(1); s <= int64(n); s++ {
		if !got[s] {
			t.Errorf("%s: chain %s seq %d lost", what, id[:8], s)
			return
		}
	}
	if len(got) != n {
		t.Errorf("%s: chain %s delivered %d distinct seqs, want %d", what, id[:8], len(got), n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	seqs := d.seqs[id]
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Errorf("%s: chain %s out of order: seq %d after %d", what, id[:8], seqs[i], seqs[i-1])
			return
		}
	}
}

// Two groups (one per SIEM) each get everything, in order per chain; one
// tampered chain stops alone in both, the other chains are delivered whole.
func TestFanOutAndTamperedChain(t *testing.T) {
	brokers := startCluster(t)
	f := newFleet(3, 60)
	bad := f.ids[1]
	f.lines[bad] = append([]string(nil), f.lines[bad]...)
	f.lines[bad][29] = strings.Replace(f.lines[bad][29], `"actor":"agent:`, `"actor":"agent:x`, 1) // seq 30
	produce(t, brokers, f, 0, 30)
	dir := t.TempDir()
	ds := map[string]*delivered{"splunk": {seqs: map[string][]int64{}}, "elastic": {seqs: map[string][]int64{}}}
	ps := map[string]*pipeline{}
	for g, d := range ds {
		ps[g] = startPipeline(t, brokers, g, dir, d)
	}
	produce(t, brokers, f, 30, 60)
	for g, d := range ds {
		p := ps[g]
		waitFor(t, g+" delivering", func() bool {
			return d.count(f.ids[0]) >= 60 && d.count(f.ids[2]) >= 60 && d.count(bad) >= 29
		}, p.stderr.String)
		waitFor(t, g+" hold", func() bool { return strings.Contains(p.stderr.String(), "held by audit-verify at seq 30") }, p.stderr.String)
		p.stop(t)
		checkChain(t, g, d, f.ids[0], 60)
		checkChain(t, g, d, f.ids[2], 60)
		checkChain(t, g, d, bad, 29)
		if got := d.distinct(bad); got[30] || got[31] {
			t.Errorf("%s: the tampered chain passed seq 30 or later", g)
		}
		if code := exitcode.Of(p.verifyErr); code != exitcode.Verify {
			t.Errorf("%s: audit-verify exit %d (%v), want 3", g, code, p.verifyErr)
		}
		if p.consumeErr != nil {
			t.Errorf("%s: audit-consume: %v", g, p.consumeErr)
		}
		for _, s := range []string{"error hash_mismatch: chain " + bad + " seq 30", "error chain_held: chain " + bad + " seq 30"} {
			if !strings.Contains(p.stderr.String(), s) {
				t.Errorf("%s: stderr lacks %q\n%s", g, s, p.stderr.String())
			}
		}
	}

	// A restart of one group resumes every chain from its stored anchor:
	// nothing of the intact chains again, the tampered chain held again.
	d := &delivered{seqs: map[string][]int64{}}
	p := startPipeline(t, brokers, "splunk", dir, d)
	waitFor(t, "restart hold", func() bool { return strings.Contains(p.stderr.String(), "held by audit-verify at seq 30") }, p.stderr.String)
	time.Sleep(500 * time.Millisecond)
	p.stop(t)
	if n := d.count(f.ids[0]) + d.count(f.ids[2]) + d.count(bad); n != 0 {
		t.Errorf("restart delivered %d records again, want 0 (anchors)\n%s", n, p.stderr.String())
	}

	// The operator's fix, for one group: the break at seq 30 is accepted
	// (investigated: the record is known altered), and the chain is
	// anchored past it by hand. The chain then resumes at seq 31 for that
	// group only; the other group keeps it held.
	var out, serr bytes.Buffer
	if err := auditconsume.Run(context.Background(), []string{"--brokers", brokers, "--group", "splunk", "--set-anchor", bad + "=30:" + hashOf(f.lines[bad][29])}, nil, &out, &serr); err != nil {
		t.Fatalf("--set-anchor: %v\n%s", err, serr.String())
	}
	if !strings.Contains(out.String(), "group splunk: chain "+bad+" anchored at seq 30 ") {
		t.Errorf("--set-anchor said %q", out.String())
	}
	d = &delivered{seqs: map[string][]int64{}}
	p = startPipeline(t, brokers, "splunk", dir, d)
	waitFor(t, "the chain after the fix", func() bool { return d.count(bad) >= 30 }, p.stderr.String)
	p.stop(t)
	if got := d.distinct(bad); len(got) != 30 || !got[31] || !got[60] || got[30] {
		t.Errorf("after --set-anchor the chain delivered %v, want seq 31..60", d.seqs[bad])
	}
	if p.verifyErr != nil {
		t.Errorf("audit-verify after the fix: %v\n%s", p.verifyErr, p.stderr.String())
	}
	d = &delivered{seqs: map[string][]int64{}}
	p = startPipeline(t, brokers, "elastic", dir, d)
	waitFor(t, "the other group's hold", func() bool { return strings.Contains(p.stderr.String(), "held by audit-verify at seq 30") }, p.stderr.String)
	p.stop(t)
	if d.count(bad) != 0 {
		t.Errorf("the other group delivered %d records of the held chain", d.count(bad))
	}
}

// Two consumers in one group, the second joining mid-stream (a rebalance):
// every record of every chain is delivered (duplicates allowed, none
// lost), each chain in order within each consumer's pipeline.
func TestRebalanceTwoConsumers(t *testing.T) {
	const n = 200
	brokers := startCluster(t)
	f := newFleet(6, n)
	produce(t, brokers, f, 0, 20)
	dir := t.TempDir()
	d1 := &delivered{seqs: map[string][]int64{}, delay: 2 * time.Millisecond}
	d2 := &delivered{seqs: map[string][]int64{}, delay: 2 * time.Millisecond}
	p1 := startPipeline(t, brokers, "siem", dir, d1, "--max-in-flight", "50")
	waitFor(t, "first consumer", func() bool { return d1.count(f.ids[0]) > 10 }, p1.stderr.String)
	p2 := startPipeline(t, brokers, "siem", dir, d2, "--max-in-flight", "50")
	got2 := func() bool {
		for _, id := range f.ids {
			if d2.count(id) > 0 {
				return true
			}
		}
		return false
	}
	// The hosts keep shipping while the group rebalances.
	for i := 20; i < n; i += 20 {
		produce(t, brokers, f, i, i+20)
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, "the second consumer to get a partition", got2, p2.stderr.String)
	union := func() bool {
		for _, id := range f.ids {
			a, b := d1.distinct(id), d2.distinct(id)
			for s := range b {
				a[s] = true
			}
			if len(a) < n {
				return false
			}
		}
		return true
	}
	waitFor(t, "all delivered by the two", union, func() string { return p1.stderr.String() + p2.stderr.String() })
	p1.stop(t)
	p2.stop(t)
	dups := 0
	for _, id := range f.ids {
		a, b := d1.distinct(id), d2.distinct(id)
		for s := range b {
			if a[s] {
				dups++
			}
			a[s] = true
		}
		for s := int64(1); s <= n; s++ {
			if !a[s] {
				t.Errorf("chain %s seq %d lost", id[:8], s)
			}
		}
	}
	for _, p := range []*pipeline{p1, p2} {
		if p.verifyErr != nil || p.consumeErr != nil {
			t.Errorf("verify %v consume %v\n%s", p.verifyErr, p.consumeErr, p.stderr.String())
		}
	}
	for i, d := range []*delivered{d1, d2} {
		d.mu.Lock()
		for id, seqs := range d.seqs {
			for j := 1; j < len(seqs); j++ {
				if seqs[j] <= seqs[j-1] {
					t.Errorf("consumer %d: chain %s out of order: seq %d after %d", i+1, id[:8], seqs[j], seqs[j-1])
					break
				}
			}
		}
		d.mu.Unlock()
	}
	t.Logf("%d records of 6 chains through a rebalance: lost 0, delivered by both consumers %d", 6*n, dups)
}

// A consumer killed with -9 (a subprocess) after part of its records were
// acked: a new consumer in the group gets the rest, nothing lost; what was
// acked and committed is not delivered again.
func TestConsumerKilledRedelivers(t *testing.T) {
	brokers := startCluster(t)
	f := newFleet(3, 50)
	produce(t, brokers, f, 0, 50)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "acks.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--brokers", brokers, "--topic", topic, "--group", "siem", "--acks", fifo, "--commit-interval", "50ms", "--max-in-flight", "20", "--session-timeout", "6s")
	cmd.Env = append(os.Environ(), "CONSUME_TEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d1 := &delivered{seqs: map[string][]int64{}, delay: 2 * time.Millisecond}
	vr, vw := io.Pipe()
	go func() {
		err := auditverify.Run(context.Background(), []string{"--quiet"}, out, vw, &stderr)
		vw.CloseWithError(err)
	}()
	shipped := make(chan struct{})
	go func() { fakeShip(t, vr, fifo, d1); io.Copy(io.Discard, vr); close(shipped) }()
	waitFor(t, "part delivered", func() bool { return d1.count(f.ids[0])+d1.count(f.ids[1])+d1.count(f.ids[2]) >= 40 }, stderr.String)
	time.Sleep(200 * time.Millisecond) // a commit or two
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	<-shipped

	d2 := &delivered{seqs: map[string][]int64{}}
	p := startPipeline(t, brokers, "siem", dir, d2)
	all := func() bool {
		for _, id := range f.ids {
			a, b := d1.distinct(id), d2.distinct(id)
			for s := range b {
				a[s] = true
			}
			if len(a) < 50 {
				return false
			}
		}
		return true
	}
	waitFor(t, "the rest delivered after the kill", all, p.stderr.String)
	p.stop(t)
	if p.verifyErr != nil || p.consumeErr != nil {
		t.Fatalf("verify %v consume %v\n%s", p.verifyErr, p.consumeErr, p.stderr.String())
	}
	again := 0
	for _, id := range f.ids {
		for s := range d2.distinct(id) {
			if d1.distinct(id)[s] {
				again++
			}
		}
	}
	if again >= d1.count(f.ids[0])+d1.count(f.ids[1])+d1.count(f.ids[2]) {
		t.Errorf("every record delivered before the kill came again (%d): nothing was committed", again)
	}
	t.Logf("killed after %d delivered; redelivered %d (not yet committed at the kill); lost 0", d1.count(f.ids[0])+d1.count(f.ids[1])+d1.count(f.ids[2]), again)
}

// startChild runs audit-consume as a process (the binary's Main), its
// stdout a pipe to the test.
func startChild(t *testing.T, brokers, group, fifo string, extra ...string) (*exec.Cmd, io.ReadCloser, *syncBuf) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--brokers", brokers, "--topic", topic, "--group", group, "--acks", fifo, "--commit-interval", "50ms", "--session-timeout", "6s"}, extra...)...)
	cmd.Env = append(os.Environ(), "CONSUME_TEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out, &stderr
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("audit-consume did not exit within 30 s")
	}
	return cmd.ProcessState.ExitCode()
}

// SIGTERM: audit-consume stops fetching, lets the records in flight be
// acked, stores the anchors, commits and exits 0; the next consumer of the
// group writes nothing of what was acked. A closed stdout: exit 141.
func TestConsumeSignals(t *testing.T) {
	brokers := startCluster(t)
	f := newFleet(2, 20)
	produce(t, brokers, f, 0, 20)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "acks.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out, stderr := startChild(t, brokers, "siem", fifo)
	d := &delivered{seqs: map[string][]int64{}}
	shipped := make(chan struct{})
	go func() { fakeShip(t, out, fifo, d); close(shipped) }()
	waitFor(t, "all delivered", func() bool { return d.count(f.ids[0]) == 20 && d.count(f.ids[1]) == 20 }, stderr.String)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd); code != 0 {
		t.Fatalf("SIGTERM: exit %d, want 0\n%s", code, stderr.String())
	}
	<-shipped
	if !strings.Contains(stderr.String(), "40 records written") {
		t.Errorf("summary: %s", stderr.String())
	}

	// The group resumes after what was acked: nothing is written again.
	cmd, out, stderr = startChild(t, brokers, "siem", fifo)
	got := make(chan string, 1)
	go func() { b, _ := io.ReadAll(out); got <- string(b) }()
	time.Sleep(2 * time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd); code != 0 {
		t.Fatalf("second SIGTERM: exit %d\n%s", code, stderr.String())
	}
	if s := <-got; s != "" {
		t.Fatalf("a restart after everything was acked wrote %q\n%s", s, stderr.String())
	}

	// Closed output: the next stage went away.
	cmd, out, stderr = startChild(t, brokers, "other-group", fifo)
	br := bufio.NewReader(out)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("no output: %v\n%s", err, stderr.String())
	}
	out.Close()
	if code := exitCode(t, cmd); code != exitcode.Pipe {
		t.Fatalf("closed stdout: exit %d, want 141\n%s", code, stderr.String())
	}
}

// Records shipped twice (a host's shipper restarted mid-batch) and a
// partition leader moved mid-stream: every record delivered once (audit-
// verify proves the duplicates and drops them), none left in flight, and a
// restart writes nothing again (everything acked was committed).
func TestDuplicatesAndLeaderMoves(t *testing.T) {
	c, brokers := startClusterC(t)
	f := newFleet(3, 40)
	produce(t, brokers, f, 0, 20)
	produceRange(t, brokers, f, f.ids[0], 10, 20) // seq 11..20 of chain 0 again
	dir := t.TempDir()
	d := &delivered{seqs: map[string][]int64{}, delay: time.Millisecond}
	p := startPipeline(t, brokers, "siem", dir, d)
	waitFor(t, "first half", func() bool { return d.count(f.ids[1]) >= 10 }, p.stderr.String)
	for part := int32(0); part < 4; part++ { // every leader moves to another broker
		if err := c.MoveTopicPartition(topic, part, (c.LeaderFor(topic, part)+1)%3); err != nil {
			t.Fatal(err)
		}
	}
	produce(t, brokers, f, 20, 40)
	produceRange(t, brokers, f, f.ids[2], 35, 40) // the tail of chain 2 again
	waitFor(t, "everything", func() bool {
		return d.count(f.ids[0]) >= 40 && d.count(f.ids[1]) >= 40 && d.count(f.ids[2]) >= 40
	}, p.stderr.String)
	time.Sleep(300 * time.Millisecond) // the acks of the tail's duplicates
	p.stop(t)
	for _, id := range f.ids {
		if d.count(id) != 40 {
			t.Errorf("chain %s delivered %d records, want each of the 40 once", id[:8], d.count(id))
		}
		checkChain(t, "siem", d, id, 40)
	}
	if p.verifyErr != nil || p.consumeErr != nil {
		t.Fatalf("verify %v consume %v\n%s", p.verifyErr, p.consumeErr, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), " 0 in flight at exit") {
		t.Errorf("records left in flight:\n%s", p.stderr.String())
	}
	d2 := &delivered{seqs: map[string][]int64{}}
	p2 := startPipeline(t, brokers, "siem", dir, d2)
	time.Sleep(1500 * time.Millisecond)
	p2.stop(t)
	if n := d2.count(f.ids[0]) + d2.count(f.ids[1]) + d2.count(f.ids[2]); n != 0 {
		t.Errorf("a restart delivered %d records again\n%s", n, p2.stderr.String())
	}
}

// Back-pressure: with nothing acked, audit-consume writes --max-in-flight
// records and no more.
func TestMaxInFlight(t *testing.T) {
	brokers := startCluster(t)
	f := newFleet(3, 40)
	produce(t, brokers, f, 0, 40)
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	cr, cw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuf
	done := make(chan error, 1)
	go func() {
		done <- auditconsume.Run(ctx, []string{"--brokers", brokers, "--topic", topic, "--group", "g", "--acks", fifo, "--max-in-flight", "7", "--drain", "0s"}, nil, cw, &stderr)
		cw.Close()
	}()
	var mu sync.Mutex
	records := 0
	go func() {
		sc := bufio.NewScanner(cr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if !framing.IsMark(sc.Bytes()) {
				mu.Lock()
				records++
				mu.Unlock()
			}
		}
	}()
	waitFor(t, "7 records", func() bool { mu.Lock(); defer mu.Unlock(); return records >= 7 }, stderr.String)
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if records != 7 {
		t.Fatalf("%d records written with none acked, want --max-in-flight 7", records)
	}
}

// Chains that share a partition arrive interleaved record by record; each
// poll's records are written as one run per chain (each in order), so the
// chain marks, and the batches cut at them downstream, stay few: here 3
// chains of 60 records in one partition, produced a,b,c,a,b,c,...
func TestRunsPerChain(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := strings.Join(c.ListenAddrs(), ",")
	f := newFleet(3, 60)
	produce(t, brokers, f, 0, 60)
	d := &delivered{seqs: map[string][]int64{}}
	p := startPipeline(t, brokers, "runs", t.TempDir(), d)
	waitFor(t, "every chain", func() bool {
		for _, id := range f.ids {
			if d.count(id) < 60 {
				return false
			}
		}
		return true
	}, p.stderr.String)
	p.stop(t)
	for _, id := range f.ids {
		checkChain(t, "runs", d, id, 60)
	}
	d.mu.Lock()
	marks := d.marks
	d.mu.Unlock()
	if marks > 30 {
		t.Errorf("%d chain marks for 180 records interleaved record by record: runs are not grouped by chain", marks)
	}
	t.Logf("%d chain marks for 180 records", marks)
}
