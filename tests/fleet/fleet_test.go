package fleet

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	splunk  = siem{group: "splunk", kind: "splunk"}
	elastic = siem{group: "elastic", kind: "elastic"}
)

// size: 3 hosts, written concurrently in chunks while their producers
// follow.
func size() options {
	return sizes(options{hosts: 3, chunks: 10, per: 250, pause: 500 * time.Millisecond},
		options{hosts: 3, chunks: 20, per: 500, pause: 500 * time.Millisecond})
}

// start writes each host's first chunk, then the rest concurrently in the
// background, and starts every host's producer. It returns the chain ids.
func start(t *testing.T, o options, verify func(h *host) bool) (*fleet, []string) {
	f := newFleet(t, o)
	var ids []string
	part := kgo.StickyKeyPartitioner(nil).ForTopic(topic) // Kafka's murmur2 of the key, as audit-ship's client
	used := map[int]string{}
	for _, h := range f.hosts {
		f.writeSync(h, o)
		id := h.chainID(t)
		ids = append(ids, id)
		p := part.Partition(&kgo.Record{Key: []byte(id)}, parts)
		if other, ok := used[p]; ok {
			t.Fatalf("%s's chain %s is in partition %d with %s: pick other seeds", h.name, id[:12], p, other[:12])
		}
		used[p] = id
		if verify != nil {
			h.verify = verify(h)
		}
	}
	return f, ids
}

func (f *fleet) run(o options) {
	for _, h := range f.hosts {
		f.write(h, o, 1)
		f.startProducer(h)
	}
}

// finish waits for every host's records to be produced, stops the
// producers, waits for each group's store to hold every chain, stops the
// consumers and checks each group: every chain fetched back from the store
// verifies, 0 lost, each chain in order. want is the records per chain
// expected in the store.
func (f *fleet) finish(groups []siem, want map[string]int) map[string]result {
	t := f.t
	for _, h := range f.hosts {
		f.waitProduced(h, 120*time.Second)
	}
	f.stopProducers()
	produced := 0
	for _, n := range want {
		produced += n
	}
	msgs := f.topicMessages()
	t.Logf("the topic holds %d messages: %d more than the records delivered (produced again by a restarted producer or the test, or past a held chain's break)", msgs, msgs-int64(produced))
	out := map[string]result{}
	for _, s := range groups {
		for id, n := range want {
			f.waitStored(s, id, n, 90*time.Second)
		}
		for _, p := range f.central[s.group] {
			select {
			case <-p.done:
				continue
			default:
			}
			f.stopCentral(p)
		}
		r := f.checkStore(s, want)
		again := f.checkOrder(s.group)
		r.dropped, r.skipped = f.centralCounts(s.group)
		for _, p := range f.central[s.group] {
			for _, l := range strings.Split(p.log(), "\n") {
				if strings.HasPrefix(l, "audit-consume: ") || strings.HasPrefix(l, "audit-verify: ") && strings.Contains(l, " chains (") {
					t.Logf("%s: %s", p.name, l)
				}
			}
		}
		out[s.group] = r
		t.Logf("group %s (%s): %d records of %d chains, %d events in the store, lost %d, duplicates in the store %d (passed on again after a consumer restart %d), duplicates dropped by the central verifier %d, skipped by anchors %d; each chain in order, re-verified from the store",
			s.group, s.kind, r.records, len(want), r.events, r.lost, r.duplicates, again, r.dropped, r.skipped)
		if r.lost != 0 {
			t.Errorf("group %s: %d records lost", s.group, r.lost)
		}
	}
	return out
}

// written is the records audit-consume says it wrote.
func written(p *proc) int {
	for _, l := range strings.Split(p.log(), "\n") {
		if i := strings.Index(l, " records written"); i > 0 {
			f := strings.Fields(l[:i])
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

// stages in a central pipeline: consume, verify, tee, batch, ship.
func stages() int { return 5 }

func (f *fleet) wantAll(ids []string) map[string]int {
	want := map[string]int{}
	for i, h := range f.hosts {
		want[ids[i]] = h.total
	}
	return want
}

// centralOK: every consumer run of the group ended as it should:
// audit-consume 0 (SIGTERM) or 137 (killed), audit-verify 0, the shipper 0.
func (f *fleet) centralOK(group string, killed map[*proc]bool) {
	for _, p := range f.central[group] {
		rc := p.rc()
		if len(rc) != stages() {
			f.t.Errorf("%s: exit codes %v\n%s", p.name, rc, p.log())
			continue
		}
		if killed[p] {
			rc[0] = 0
		}
		for i, c := range rc {
			if c != 0 {
				f.t.Errorf("%s: stage %d exit %d\n%s", p.name, i, c, p.log())
			}
		}
	}
}

// A broker removed from the cluster and every partition leader moved
// mid-stream, with two groups (fan-out: one SIEM over HEC, one over the
// Elasticsearch bulk API), and records redelivered (a batch produced twice
// by a host): every chain whole in each store, in order.
func TestFleetBrokerLeaderDuplicates(t *testing.T) {
	o := size()
	f, ids := start(t, o, nil)
	for _, s := range []siem{splunk, elastic} {
		f.startCentral(s, "")
	}
	f.run(o)
	total := o.hosts * o.chunks * o.per
	f.waitFraction(splunk, ids, 0.25, total, 60*time.Second)
	victim := f.cluster.LeaderFor(topic, 0)
	if err := f.cluster.RemoveNode(victim); err != nil {
		t.Fatal(err)
	}
	f.fault("broker %d removed (leader of partition 0); partitions re-elected on the 2 left", victim)
	f.waitFraction(splunk, ids, 0.5, total, 60*time.Second)
	live := map[int32]bool{}
	for p := int32(0); p < parts; p++ {
		live[f.cluster.LeaderFor(topic, p)] = true
	}
	moved := 0
	for p := int32(0); p < parts; p++ {
		cur := f.cluster.LeaderFor(topic, p)
		for n := range live {
			if n != cur {
				if err := f.cluster.MoveTopicPartition(topic, p, n); err == nil {
					moved++
				}
				break
			}
		}
	}
	f.fault("%d partition leaders moved mid-stream", moved)
	f.produceAgain(f.hosts[0], 100, 400)
	f.waitFraction(splunk, ids, 0.75, total, 60*time.Second)
	f.produceAgain(f.hosts[2], 1, 250)
	res := f.finish([]siem{splunk, elastic}, f.wantAll(ids))
	f.centralOK("splunk", nil)
	f.centralOK("elastic", nil)
	for g, r := range res {
		if r.events < r.records {
			t.Errorf("group %s: %d events for %d records", g, r.events, r.records)
		}
	}
	t.Logf("faults: %s", strings.Join(f.faults, "; "))
}

// The producer of one host and the consumer of the group killed with -9
// mid-stream, each restarted: 0 lost; the records not yet acked at the
// kill come again (counted).
func TestFleetKill9(t *testing.T) {
	o := size()
	f, ids := start(t, o, nil)
	// A long commit interval: the kill finds acked records not yet
	// committed, which the next consumer reads again.
	c1 := f.startCentral(splunk, "--commit-interval 2s")
	f.run(o)
	total := o.hosts * o.chunks * o.per
	f.waitFraction(splunk, ids, 0.3, total, 60*time.Second)
	// Host 2's cursor stops moving (audit-ack stopped) while audit-ship
	// goes on producing: the kill -9 then finds records Kafka holds that
	// the cursor does not cover, which the restart produces again.
	h := f.hosts[1]
	h.prod.signalStage(t, "audit-ack", syscall.SIGSTOP)
	cur := h.cursor(t)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		f.vl.Flush(context.Background())
		if _, u, _ := f.stored(splunk, ids[1]); u >= cur+100 {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("%s: the store did not get 100 records past the stopped cursor (%d) within 20 s (its writer done?): killing anyway", h.name, cur)
			break
		}
	}
	h.prod.kill9()
	f.fault("%s producer pipeline killed with -9 (its audit-ack stopped first: records produced, cursor behind)", h.name)
	f.startProducer(h)
	f.waitFraction(splunk, ids, 0.5, total, 60*time.Second)
	f.waitLag(f.hosts[0], 20)
	c1.signalStage(t, "audit-consume", syscall.SIGKILL)
	f.fault("audit-consume killed with -9")
	c1.wait(t, 60*time.Second)
	f.startCentral(splunk, "")
	h = f.hosts[2]
	f.waitLag(h, 20)
	h.prod.kill9()
	f.fault("%s producer pipeline killed with -9", h.name)
	f.startProducer(h)
	f.finish([]siem{splunk}, f.wantAll(ids))
	f.centralOK("splunk", map[*proc]bool{c1: true})
	t.Logf("faults: %s", strings.Join(f.faults, "; "))
}

// Two consumers of one group: the second joins mid-stream (a rebalance
// hands it partitions), then the first leaves (SIGTERM: another
// rebalance); each chain stays in order in every consumer, nothing lost.
func TestFleetRebalance(t *testing.T) {
	o := size()
	f, ids := start(t, o, nil)
	c1 := f.startCentral(splunk, "")
	f.run(o)
	total := o.hosts * o.chunks * o.per
	f.waitFraction(splunk, ids, 0.25, total, 60*time.Second)
	c2 := f.startCentral(splunk, "")
	f.fault("a second consumer joined the group")
	f.waitFraction(splunk, ids, 0.6, total, 90*time.Second)
	f.stopCentral(c1)
	f.fault("the first consumer left the group (SIGTERM)")
	f.finish([]siem{splunk}, f.wantAll(ids))
	f.centralOK("splunk", nil)
	for _, p := range []*proc{c1, c2} {
		if n := written(p); n == 0 {
			t.Errorf("%s wrote no records: no rebalance gave it a partition\n%s", p.name, p.log())
		} else {
			t.Logf("%s: %d records written", p.name, n)
		}
	}
	t.Logf("faults: %s", strings.Join(f.faults, "; "))
}

// One host's database tampered (a record altered at seq 150), shipped by a
// host that does not verify: the central verifier holds that chain alone
// (chain_held naming it, exit 3), the other chains are delivered whole, and
// nothing of the tampered chain past seq 149 reaches the store.
func TestFleetTamperedChain(t *testing.T) {
	const bad = 150
	o := size()
	f, ids := start(t, o, func(h *host) bool { return h.idx != 1 })
	tampered := f.hosts[1]
	tampered.tamper(t, bad)
	f.fault("%s: record seq %d altered on the host database", tampered.name, bad)
	// The host's own verifier would have stopped it.
	cmd := exec.Command("bash", "-c", "audit-read --db "+tampered.db+" --quiet | audit-verify --quiet >/dev/null")
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("audit-verify on the tampered host's database: %v, want exit 3", err)
	}
	c := f.startCentral(splunk, "")
	f.run(o)
	want := f.wantAll(ids)
	want[ids[1]] = bad - 1
	f.finish([]siem{splunk}, want)
	if _, _, m := f.stored(splunk, ids[1]); m != bad-1 {
		t.Errorf("the tampered chain reached seq %d in the store, want %d", m, bad-1)
	}
	rc := c.rc()
	if len(rc) != stages() || rc[0] != 0 || rc[1] != 3 || rc[len(rc)-1] != 0 {
		t.Errorf("exit codes %v, want audit-consume 0, audit-verify 3, audit-ship 0\n%s", rc, c.log())
	}
	log := c.log()
	for _, s := range []string{"error chain_held: chain " + ids[1] + " seq 150", "1 of 3 chains held"} {
		if !strings.Contains(log, s) {
			t.Errorf("central stderr lacks %q\n%s", s, log)
		}
	}
	for _, id := range []string{ids[0], ids[2]} {
		if strings.Contains(log, "chain "+id) {
			t.Errorf("a finding names the intact chain %s\n%s", id[:12], log)
		}
	}

	// Fail closed across restarts: the next consumer of the group reads
	// the held chain's partition again from its pinned offset, holds the
	// chain again at seq 150, and delivers nothing again (the intact
	// chains' records there are skipped by their anchors).
	before := map[string]int{}
	for _, id := range ids {
		before[id], _, _ = f.stored(splunk, id)
	}
	c2 := f.startCentral(splunk, "")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(c2.log(), "chain "+ids[1]+" held by audit-verify at seq 150") {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted consumer did not hold the chain again\n%s", c2.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.stopCentral(c2)
	if rc := c2.rc(); len(rc) != stages() || rc[0] != 0 || rc[1] != 3 {
		t.Errorf("restart: exit codes %v, want audit-consume 0, audit-verify 3\n%s", rc, c2.log())
	}
	f.vl.Flush(context.Background())
	for _, id := range ids {
		if n, _, m := f.stored(splunk, id); n != before[id] || (id == ids[1] && m != bad-1) {
			t.Errorf("after the restart chain %s has %d events in the store (max seq %d), had %d", id[:12], n, m, before[id])
		}
	}
	t.Logf("restart: %s", strings.TrimSpace(strings.Join(grepLines(c2.log(), "audit-consume: "), " ")))
	t.Logf("faults: %s", strings.Join(f.faults, "; "))
}

func grepLines(s, prefix string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
