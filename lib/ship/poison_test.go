package ship

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// poisonLine is a record line in audit-read's layout, of a length that
// varies with seq (so a reused arena holds lines of other lengths), with
// bytes a re-serialisation would change.
func poisonLine(seq int64) string {
	pad := strings.Repeat("é\\\"x", int(seq*7%40))
	return fmt.Sprintf(`{"seq":%d,"ts":%d,"tenantId":"t%d","kind":"k%d","record":{"n":%d,"pad":"%s"},"prevHash":"%064x","recordHash":"%064x"}`,
		seq, 1_700_000_000_000+seq, seq%3, seq%2, seq, pad, seq-1, seq)
}

// heldAcks is an AckSink that keeps every ack it is given, as
// ack.FIFOWriter keeps them while audit-ack does not read, and checks them
// only at the end.
type heldAcks struct {
	mu   sync.Mutex
	acks []ack.Ack
}

func (h *heldAcks) Ack(ctx context.Context, a ack.Ack) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acks = append(h.acks, a)
	return nil
}
func (h *heldAcks) Close(ctx context.Context) error { return nil }

// TestPoisonedReuse runs the engine with released batch memory poisoned
// (0xAA bytes, records with a seq no record has) and reused for the next
// batches, through everything that keeps a batch alive: a retry after a
// 503, a split after a 413, a bisection after a 400 down to a poison
// record (quarantined), a record the sink itself marks poison (quarantined),
// four requests in flight finishing out of order, a sink that reads the
// records only when it answers (as a request body is read while the
// request is out), and an AckSink that holds the acks. Every line the
// sink took, every ack and every quarantine line must be byte-exact
// against the input: a release before the batch's outcome is settled
// changes one of them.
func TestPoisonedReuse(t *testing.T) {
	defer func(v bool) { poisonReleased = v }(poisonReleased)
	poisonReleased = true

	const batches, per = 60, 20
	want := map[int64]string{}
	var in bytes.Buffer
	seq := int64(1)
	for id := int64(1); id <= batches; id++ {
		n := per - int(id%5) // batches of 16..20 records
		var body bytes.Buffer
		for range n {
			want[seq] = poisonLine(seq)
			body.WriteString(want[seq] + "\n")
			seq++
		}
		fmt.Fprintf(&in, `{"batch":{"id":%d,"count":%d,"bytes":%d,"firstSeq":%d,"lastSeq":%d,"intervalMs":0}}`+"\n",
			id, n, body.Len(), seq-int64(n), seq-1)
		in.Write(body.Bytes())
	}
	last := seq - 1

	// Which seqs the SIEM refuses, and how.
	const (
		retried  = 3  // batch: 503 on its first request
		split    = 8  // batch: 413 while a request has more than 4 records
		bisected = 13 // batch: 400 while a request holds badSeq
		marked   = 21 // batch: the sink marks markedSeq poison (HEC's invalid-event-number)
	)
	batchOf, firstOf := map[int64]int64{}, map[int64]int64{}
	{
		s := int64(1)
		for id := int64(1); id <= batches; id++ {
			firstOf[id] = s
			for range per - int(id%5) {
				batchOf[s] = id
				s++
			}
		}
	}
	badSeq, markedSeq := firstOf[bisected]+11, firstOf[marked]+6
	var (
		mu        sync.Mutex
		got       = map[int64]string{} // delivered: seq -> line as the sink read it
		tries     = map[int64]int{}    // batch -> requests
		bad       []string
		rnd       = rand.New(rand.NewPCG(1, 2))
		badSeqInB = batchOf[badSeq]
		markedInB = batchOf[markedSeq]
	)
	if badSeqInB != bisected || markedInB != marked {
		t.Fatalf("test setup: seq %d is in batch %d, seq %d in batch %d", badSeq, badSeqInB, markedSeq, markedInB)
	}
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		mu.Lock()
		d := time.Duration(rnd.IntN(3000)) * time.Microsecond
		b := batchOf[recs[0].Seq]
		tries[b]++
		try := tries[b]
		mu.Unlock()
		time.Sleep(d) // requests in flight answer out of order
		// The sink reads the records when it answers (a body read while
		// the request is out): they must still be the batch's.
		res := sink.NewResult(len(recs))
		for i, r := range recs {
			if w, ok := want[r.Seq]; !ok || string(r.Line) != w || r.Hash != fmt.Sprintf("%064x", r.Seq) {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("request %d record %d: seq %d line %.60q hash %.20q", call, i, r.Seq, r.Line, r.Hash))
				mu.Unlock()
				return res, &sink.Error{Class: sink.Config, Code: -1, Msg: "the records changed under the request"}
			}
		}
		switch {
		case b == retried && try == 1:
			return res, &sink.Error{Class: sink.Retryable, HTTPStatus: 503, Code: -1, Msg: "busy"}
		case b == split && len(recs) > 4:
			return res, &sink.Error{Class: sink.TooLarge, HTTPStatus: 413, Code: -1, Msg: "too large"}
		case b == bisected && slices.ContainsFunc(recs, func(r sink.Record) bool { return r.Seq == badSeq }):
			return res, &sink.Error{Class: sink.BadRequest, HTTPStatus: 400, Code: 6, Msg: "Invalid data format"}
		}
		for i, r := range recs {
			if r.Seq == markedSeq {
				res.Status[i], res.Reason[i] = sink.Poison, "HEC code 6: Invalid data format"
				// Those after it were not looked at: resent.
				break
			}
			res.Status[i] = sink.Delivered
		}
		mu.Lock()
		for i, r := range recs {
			if res.Status[i] == sink.Delivered {
				got[r.Seq] = string(r.Line) // a copy
			}
		}
		mu.Unlock()
		return res, nil
	}}

	qpath := filepath.Join(t.TempDir(), "quarantine.ndjson")
	q, err := OpenQuarantine(qpath)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	acks := &heldAcks{}
	sh := New(fs, Options{Exporter: "splunk:poison", Inflight: 4, PauseAfter: 100, Quarantine: q, Acks: acks,
		Rand: func() float64 { return 0 }, Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})

	// The reader takes batch memory from the pool while the shipper gives
	// it back: count the batches that came back to be reused.
	read, ship := make(chan *Batch), make(chan *Batch)
	readErr := make(chan error, 1)
	go func() { readErr <- ReadBatches(context.Background(), &in, read, 0); close(read) }()
	seen := map[*Batch]bool{}
	reused := 0
	go func() {
		for b := range read {
			if seen[b] {
				reused++
			}
			seen[b] = true
			ship <- b
		}
		close(ship)
	}()
	done := make(chan error, 1)
	go func() { done <- sh.Run(context.Background(), ship) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("shipper did not finish")
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := <-readErr; err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(bad) > 0 {
		t.Fatalf("%d requests saw records that changed, the first: %s", len(bad), bad[0])
	}
	if reused == 0 {
		t.Fatal("no batch memory was reused: the test proves nothing")
	}
	t.Logf("%d of %d batches were reused memory", reused, batches)

	// Every record delivered or quarantined, with its exact bytes.
	for s := int64(1); s <= last; s++ {
		if s == badSeq || s == markedSeq {
			if _, ok := got[s]; ok {
				t.Errorf("seq %d was poison but counted delivered", s)
			}
			continue
		}
		if got[s] != want[s] {
			t.Fatalf("seq %d delivered as %.80q, want %.80q", s, got[s], want[s])
		}
	}

	// The acks: in order, gapless, each naming its last record's hash and
	// the quarantined seqs, read only now (after the memory was reused).
	next := int64(1)
	var quarantined []int64
	for _, a := range acks.acks {
		if a.Exporter != "splunk:poison" || a.FirstSeq != next || a.LastSeq < a.FirstSeq || a.Count != int(a.LastSeq-a.FirstSeq+1) ||
			a.LastHash != fmt.Sprintf("%064x", a.LastSeq) {
			t.Fatalf("ack %+v after seq %d: not the ack of the next batch (lastHash must be seq %d's)", a, next-1, a.LastSeq)
		}
		quarantined = append(quarantined, a.Quarantined...)
		next = a.LastSeq + 1
	}
	if next != last+1 || len(acks.acks) != batches {
		t.Fatalf("%d acks ending at seq %d, want %d ending at %d", len(acks.acks), next-1, batches, last)
	}
	if fmt.Sprint(quarantined) != fmt.Sprint([]int64{badSeq, markedSeq}) {
		t.Fatalf("acks name quarantined %v, want [%d %d]", quarantined, badSeq, markedSeq)
	}

	// The quarantine file holds the two lines, byte-exact.
	data, err := os.ReadFile(qpath)
	if err != nil {
		t.Fatal(err)
	}
	var p fastjson.Parser
	var qseqs []int64
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		v, err := p.Parse(l)
		if err != nil {
			t.Fatalf("quarantine line %q: %v", l, err)
		}
		s := v.GetInt64("seq")
		qseqs = append(qseqs, s)
		i := strings.Index(l, `,"line":`)
		if i < 0 || l[i+len(`,"line":`):len(l)-1] != want[s] || string(v.GetStringBytes("recordHash")) != fmt.Sprintf("%064x", s) {
			t.Fatalf("quarantine line for seq %d is %q: want the line %q byte-exact", s, l, want[s])
		}
	}
	if fmt.Sprint(qseqs) != fmt.Sprint([]int64{badSeq, markedSeq}) {
		t.Fatalf("quarantined %v, want [%d %d]", qseqs, badSeq, markedSeq)
	}
}
