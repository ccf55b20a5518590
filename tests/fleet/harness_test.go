// Package fleet runs a fleet through Kafka (issue 15, docs/fleet.md) as
// real processes under faults: three host databases written concurrently
// (audit-sample | audit-append), a producer pipeline per host (audit-read
// --follow | audit-verify --chain-mark | audit-ship --kind kafka |
// audit-ack), a 3-broker kfake cluster run in the test (its controls
// remove a broker and move partition leaders), the central pipelines
// (audit-consume | audit-verify --holds F | audit-batch | audit-ship into a
// real VictoriaLogs, one consumer group per SIEM), and at the end every
// chain fetched back from the store and verified on its own (audit-fetch |
// audit-verify). Each test prints its figures: records, faults, lost,
// duplicates.
package fleet

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite"

	"github.com/auditpipe/auditpipe/internal/vlogs"
)

const (
	topic    = "declaragent-audit"
	parts    = 6
	exporter = "kafka:fleet"
	hecToken = "fleet-test-token"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleet-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root, _ := filepath.Abs("../..")
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a shell pipeline in its own process group.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *os.File
	path   string
	done   chan struct{}
}

func startProc(t *testing.T, dir, name, script string, env ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", "trap : TERM INT\n"+script+"\necho \"rc ${PIPESTATUS[*]}\" >&2\n")
	cmd.Env = append(os.Environ(), append([]string{"PATH=" + binDir + ":" + os.Getenv("PATH"), "HEC_TOKEN=" + hecToken}, env...)...)
	cmd.Dir = dir
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, stderr: lf, path: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); lf.Close(); close(p.done) }()
	t.Cleanup(func() { p.kill9() })
	return p
}

func (p *proc) log() string { b, _ := os.ReadFile(p.path); return string(b) }

// kill9 kills every process of the pipeline with SIGKILL.
func (p *proc) kill9() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// signalStage sends sig to the pipeline's process named comm.
func (p *proc) signalStage(t *testing.T, comm string, sig syscall.Signal) {
	t.Helper()
	pid := stagePID(p.cmd.Process.Pid, comm)
	if pid == 0 {
		t.Fatalf("%s: no %s process\n%s", p.name, comm, p.log())
	}
	syscall.Kill(pid, sig)
}

// term stops the whole pipeline with SIGTERM (as systemd would).
func (p *proc) term() { syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM) }

func (p *proc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not stop within %s\n%s", p.name, d, p.log())
	}
}

// rc is each stage's exit status, from the pipeline's last line.
func (p *proc) rc() []int {
	var codes []int
	for _, l := range strings.Split(p.log(), "\n") {
		if f, ok := strings.CutPrefix(l, "rc "); ok {
			codes = codes[:0]
			for _, s := range strings.Fields(f) {
				n, _ := strconv.Atoi(s)
				codes = append(codes, n)
			}
		}
	}
	return codes
}

// stagePID finds the process named comm in process group pgid.
func stagePID(pgid int, comm string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i || s[i+1:j] != comm {
			continue
		}
		f := strings.Fields(s[j+2:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			return pid
		}
	}
	return 0
}

// host is one agent host: its database, its writer and its producer.
type host struct {
	name    string
	db      string
	idx     int
	total   int // records written in all
	written chan struct{}
	prod    *proc
	verify  bool // the producer verifies before it ships (every host but a tampered one)
}

type fleet struct {
	t       *testing.T
	dir     string
	cluster *kfake.Cluster
	brokers string
	vl      *vlogs.Server
	hosts   []*host
	central map[string][]*proc // per group, every run
	runs    int
	mu      sync.Mutex
	faults  []string
	writers sync.WaitGroup
}

type options struct {
	hosts  int
	chunks int // written in chunks, concurrently across hosts
	per    int // records per chunk
	pause  time.Duration
}

func sizes(short, full options) options {
	if testing.Short() {
		return short
	}
	return full
}

func newFleet(t *testing.T, o options) *fleet {
	t.Helper()
	vl := vlogs.Require(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(parts, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	f := &fleet{t: t, dir: t.TempDir(), cluster: c, brokers: strings.Join(c.ListenAddrs(), ","), vl: vl, central: map[string][]*proc{}}
	t.Cleanup(f.writers.Wait)
	for i := 0; i < o.hosts; i++ {
		f.hosts = append(f.hosts, &host{name: fmt.Sprintf("host%d", i+1), idx: i, db: filepath.Join(f.dir, fmt.Sprintf("host%d.db", i+1)),
			total: o.chunks * o.per, written: make(chan struct{}), verify: true})
	}
	return f
}

func (f *fleet) fault(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := fmt.Sprintf(format, a...)
	f.faults = append(f.faults, s)
	f.t.Logf("fault: %s", s)
}

// write appends chunks of sample records to the host's database, in the
// background (each host its own seeds: its own chain).
func (f *fleet) write(h *host, o options, first int) {
	f.writers.Add(1)
	go func() {
		defer f.writers.Done()
		defer close(h.written)
		for i := first; i < o.chunks; i++ {
			cmd := exec.Command("bash", "-c", fmt.Sprintf("audit-sample --count %d --seed %d | audit-append --db %s --quiet", o.per, seeds[h.idx]+i, h.db))
			cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
			if out, err := cmd.CombinedOutput(); err != nil {
				f.t.Errorf("%s: write chunk %d: %v\n%s", h.name, i, err, out)
				return
			}
			time.Sleep(o.pause)
		}
	}()
}

// seeds are the hosts' audit-sample seeds: their chains (the recordHash of
// each first record) hash to three different partitions of six, so the
// chains are spread over partitions as a fleet's are (seeds 1000, 2000 and
// 3000 all land in partition 0). start checks it.
var seeds = []int{4000, 5000, 8000}

// writeSync writes the first chunk now (so the chain has its seq 1).
func (f *fleet) writeSync(h *host, o options) {
	cmd := exec.Command("bash", "-c", fmt.Sprintf("audit-sample --count %d --seed %d | audit-append --db %s --quiet", o.per, seeds[h.idx], h.db))
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("%s: %v\n%s", h.name, err, out)
	}
}

// chainID is the recordHash of the host database's seq 1.
func (h *host) chainID(t *testing.T) string {
	t.Helper()
	db, err := sql.Open("sqlite", h.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id string
	if err := db.QueryRow(`SELECT record_hash FROM audit_records WHERE seq = 1`).Scan(&id); err != nil {
		t.Fatalf("%s: chain id: %v", h.name, err)
	}
	return id
}

// tamper alters the record at seq on the host's database (its hash no
// longer matches).
func (h *host) tamper(t *testing.T, seq int) {
	t.Helper()
	db, err := sql.Open("sqlite", h.db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE audit_records SET record_json = replace(record_json, '"tenantId":"', '"tenantId":"x') WHERE seq = ?`, seq)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s: tamper seq %d: %d rows", h.name, seq, n)
	}
}

// startProducer runs the host's pipeline (docs/fleet.md, "Producer side").
func (f *fleet) startProducer(h *host) {
	verify := fmt.Sprintf("| audit-verify --db %s --from-cursor %s --new-cursor --chain-mark --quiet ", h.db, exporter)
	chainID := ""
	if !h.verify {
		// A host that ships without verifying (or whose verifier an
		// attacker bypassed): the central verifier is the one that sees it.
		verify, chainID = "", "--chain-id "+h.chainID(f.t)
	}
	h.prod = startProc(f.t, f.dir, "producer-"+h.name, fmt.Sprintf(
		`audit-read --db %s --from-cursor %s --new-cursor --follow --quiet %s| audit-ship --kind kafka --brokers %s --topic %s --exporter %s %s --acks - --quiet | audit-ack --db %s --exporter %s --new-cursor --quiet`,
		h.db, exporter, verify, f.brokers, topic, exporter, chainID, h.db, exporter))
}

// siem is one consumer group's SIEM: kind splunk ships over HEC, elastic
// over the bulk API, both into the one VictoriaLogs.
type siem struct {
	group string
	kind  string
}

func (s siem) shipArgs(vl string) string {
	switch s.kind {
	case "elastic":
		return fmt.Sprintf("--kind elastic --url %s/insert/elasticsearch --index fleet-%s", vl, s.group)
	default:
		return fmt.Sprintf("--kind splunk --url %s --token env:HEC_TOKEN --index fleet_%s", vl, s.group)
	}
}

// startCentral runs one consumer of the group: audit-consume | audit-verify
// --holds F | audit-batch | audit-ship, acks on F. What audit-verify passed
// on is kept (tee) for the order check.
func (f *fleet) startCentral(s siem, extra string) *proc {
	f.mu.Lock()
	f.runs++
	n := f.runs
	f.mu.Unlock()
	fifo := fmt.Sprintf("acks-%s-%d.fifo", s.group, n)
	ship := fmt.Sprintf(`audit-batch --siem %s --quiet | audit-ship %s --exporter %s:%s --acks %s --quiet`, s.kind, s.shipArgs(f.vl.URL()), s.kind, s.group, fifo)
	p := startProc(f.t, f.dir, fmt.Sprintf("central-%s-%d", s.group, n), fmt.Sprintf(
		`mkfifo -m 600 %[4]s; audit-consume --brokers %[1]s --topic %[2]s --group %[3]s --acks %[4]s --commit-interval 200ms --session-timeout 6s %s `+
			`| audit-verify --holds %s `+
			`| tee verified-%s-%d.ndjson | %s`,
		f.brokers, topic, s.group, fifo, extra, fifo, s.group, n, ship))
	f.mu.Lock()
	f.central[s.group] = append(f.central[s.group], p)
	f.mu.Unlock()
	return p
}

// stopCentral stops a consumer cleanly: SIGTERM to audit-consume, which
// drains; the stages after it end on its end of file.
func (f *fleet) stopCentral(p *proc) {
	f.t.Helper()
	if stagePID(p.cmd.Process.Pid, "audit-consume") != 0 {
		p.signalStage(f.t, "audit-consume", syscall.SIGTERM)
	}
	p.wait(f.t, 60*time.Second)
}

// chainFilter is the LogsQL filter of one group's events of one chain.
func (s siem) filter(id string) string {
	switch s.kind {
	case "elastic":
		return fmt.Sprintf(`seq:* AND chain:=%q`, id)
	default:
		return fmt.Sprintf(`index:=fleet_%s AND fields.chain:=%q`, s.group, id)
	}
}

// selection is the LogsQL filter of the group's events (of every chain).
func (s siem) selection() string {
	if s.kind == "elastic" {
		return "*" // bulk documents carry no index in VictoriaLogs: one elastic group per store
	}
	return "index:=fleet_" + s.group
}

func (s siem) seqField() string {
	if s.kind == "elastic" {
		return "seq"
	}
	return "fields.seq"
}

// stored counts a chain's events and distinct seqs in the store.
func (f *fleet) stored(s siem, id string) (events, distinct, maxSeq int) {
	rows, err := f.vl.Query(context.Background(), s.filter(id)+fmt.Sprintf(` | stats count() n, count_uniq(%s) u, max(%s) m`, s.seqField(), s.seqField()))
	if err != nil || len(rows) == 0 {
		return 0, 0, 0
	}
	events, _ = strconv.Atoi(rows[0]["n"])
	distinct, _ = strconv.Atoi(rows[0]["u"])
	maxSeq, _ = strconv.Atoi(rows[0]["m"])
	return
}

// waitStored waits until the store holds seq 1..want of the chain.
func (f *fleet) waitStored(s siem, id string, want int, timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f.vl.Flush(context.Background())
		_, u, m := f.stored(s, id)
		if u >= want && m >= want {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("group %s: chain %s: the store holds %d distinct seqs (max %d), want %d after %s\n%s", s.group, id[:12], u, m, want, timeout, f.logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitAny waits until the store holds at least n events of the group.
func (f *fleet) waitFraction(s siem, ids []string, frac float64, total int, timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f.vl.Flush(context.Background())
		sum := 0
		for _, id := range ids {
			_, u, _ := f.stored(s, id)
			sum += u
		}
		if float64(sum) >= frac*float64(total) {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("group %s: %d of %d stored after %s\n%s", s.group, sum, total, timeout, f.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (f *fleet) logs() string {
	var b strings.Builder
	ents, _ := filepath.Glob(filepath.Join(f.dir, "*.log"))
	for _, e := range ents {
		data, _ := os.ReadFile(e)
		if len(data) > 4000 {
			data = append([]byte("..."), data[len(data)-4000:]...)
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(e), data)
	}
	return b.String()
}

// result is one group's figures.
type result struct {
	records, events, lost, duplicates int
	dropped                           int // duplicates the central verifiers proved and dropped
	skipped                           int // records the consumers skipped by their chain's anchor
}

// centralCounts sums, over every consumer run of the group, the duplicates
// audit-verify dropped and the records audit-consume skipped by anchors.
func (f *fleet) centralCounts(group string) (dropped, skipped int) {
	for _, p := range f.central[group] {
		for _, l := range strings.Split(p.log(), "\n") {
			if i := strings.Index(l, " duplicates dropped"); i > 0 {
				fs := strings.Fields(l[:i])
				n, _ := strconv.Atoi(fs[len(fs)-1])
				dropped += n
			}
			if i := strings.Index(l, " skipped as delivered before"); i > 0 {
				fs := strings.Fields(l[:i])
				n, _ := strconv.Atoi(fs[len(fs)-1])
				skipped += n
			}
		}
	}
	return
}

// checkStore re-verifies each chain of the group from the store (audit-fetch
// | audit-verify, one chain at a time) and counts what it holds: 0 lost
// (every seq 1..want[id]), duplicates = events beyond the distinct seqs.
func (f *fleet) checkStore(s siem, want map[string]int) result {
	f.t.Helper()
	var r result
	for id, n := range want {
		f.waitStored(s, id, n, 60*time.Second)
		ev, u, _ := f.stored(s, id)
		r.records += n
		r.events += ev
		r.duplicates += ev - u
		if u < n {
			r.lost += n - u
		}
		cmd := exec.Command("bash", "-c", fmt.Sprintf(`set -o pipefail; audit-fetch --kind %s --url %s --query %q --chain %s | audit-verify --quiet --report report.json >/dev/null`, s.kind, f.vl.URL(), s.selection(), id))
		cmd.Dir = f.t.TempDir()
		cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			f.t.Errorf("group %s chain %s: audit-fetch | audit-verify: %v\n%s", s.group, id[:12], err, out)
		}
	}
	return r
}

// checkOrder reads what audit-verify passed on in each run of the group's
// consumers (its chain marks and records): within a run each chain's seqs
// rise by one; across runs a chain resumes at or below where it was (never
// past a seq not yet delivered). Returns the records passed on again.
func (f *fleet) checkOrder(group string) (again int) {
	f.t.Helper()
	files, _ := filepath.Glob(filepath.Join(f.dir, "verified-"+group+"-*.ndjson"))
	high := map[string]int{}
	for _, file := range files {
		fh, err := os.Open(file)
		if err != nil {
			f.t.Fatal(err)
		}
		last := map[string]int{}
		cur := ""
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Bytes()
			if bytes.HasPrefix(l, []byte(`{"mark":`)) {
				i := bytes.Index(l, []byte(`"chain":"`))
				if i < 0 {
					f.t.Errorf("%s: a mark without a chain: %s", file, l)
					continue
				}
				cur = string(l[i+9 : i+9+bytes.IndexByte(l[i+9:], '"')])
				continue
			}
			var seq int
			fmt.Sscanf(string(l), `{"seq":%d,`, &seq)
			if cur == "" {
				f.t.Errorf("%s: record seq %d before any chain mark", file, seq)
				continue
			}
			if p, ok := last[cur]; ok && seq != p+1 {
				f.t.Errorf("%s: chain %s: seq %d after %d", filepath.Base(file), cur[:12], seq, p)
			} else if !ok && seq > high[cur]+1 {
				f.t.Errorf("%s: chain %s resumed at seq %d, past %d delivered before", filepath.Base(file), cur[:12], seq, high[cur])
			} else if !ok && seq <= high[cur] {
				again += high[cur] - seq + 1
			}
			last[cur] = seq
			if seq > high[cur] {
				high[cur] = seq
			}
		}
		fh.Close()
	}
	return again
}

// produceAgain produces records [from, to] of a host's chain to the topic
// again, keyed by the chain (a batch a host resent: redelivered duplicates).
func (f *fleet) produceAgain(h *host, from, to int) {
	f.t.Helper()
	id := h.chainID(f.t)
	cmd := exec.Command(filepath.Join(binDir, "audit-read"), "--db", h.db, "--from-seq", strconv.Itoa(from), "--to-seq", strconv.Itoa(to), "--marks", "never", "--quiet")
	out, err := cmd.Output()
	if err != nil {
		f.t.Fatalf("audit-read: %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(f.brokers, ",")...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		recs = append(recs, &kgo.Record{Key: []byte(id), Value: []byte(l), Headers: []kgo.RecordHeader{{Key: "chain", Value: []byte(id)}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
	f.fault("%s: seq %d..%d produced again (%d records redelivered)", h.name, from, to, len(recs))
}

// waitProduced waits until the host's cursor reached its last record.
func (f *fleet) waitProduced(h *host, timeout time.Duration) {
	f.t.Helper()
	<-h.written
	db, err := sql.Open("sqlite", h.db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(timeout)
	for {
		var n int
		db.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?`, exporter).Scan(&n)
		if n >= h.total {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: cursor at %d of %d after %s\n%s", h.name, n, h.total, timeout, f.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLag waits until the host's database is at least n records ahead of
// its cursor: records are in flight, so a kill lands mid-stream.
func (f *fleet) waitLag(h *host, n int) {
	f.t.Helper()
	db, err := sql.Open("sqlite", h.db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var head, cur int
		db.QueryRow(`SELECT coalesce(max(seq),0) FROM audit_records`).Scan(&head)
		db.QueryRow(`SELECT coalesce((SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?),0)`, exporter).Scan(&cur)
		if head-cur >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.t.Logf("%s: no lag of %d records seen; killing anyway", h.name, n)
}

// topicMessages is the number of messages the topic holds.
func (f *fleet) topicMessages() int64 {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(f.brokers, ",")...))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		f.t.Fatalf("list end offsets: %v", err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// cursor is the host's committed cursor.
func (h *host) cursor(t *testing.T) int {
	t.Helper()
	db, err := sql.Open("sqlite", h.db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.QueryRow(`SELECT coalesce((SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?),0)`, exporter).Scan(&n)
	return n
}

// stopProducers stops every host's pipeline with SIGTERM; each exits 0.
func (f *fleet) stopProducers() {
	f.t.Helper()
	for _, h := range f.hosts {
		h.prod.term()
		h.prod.wait(f.t, 30*time.Second)
		for i, c := range h.prod.rc() {
			if c != 0 {
				f.t.Errorf("%s producer stage %d exit %d\n%s", h.name, i, c, h.prod.log())
			}
		}
	}
}
