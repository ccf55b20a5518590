package auditconsume

import (
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/chain"
)

// The commit watermark of a partition is its lowest record not delivered:
// acks of chains out of order across chains, a held chain's pin, and a
// stored anchor that skips records delivered before.
func TestTrackerWatermark(t *testing.T) {
	h := strings.Repeat("ab", 32)
	k := tp{"audit", 0}
	type op struct {
		kind  string // rec (chain, seq, off) | ack (chain, seq) | hold (chain, seq) | anchor (chain, seq)
		chain string
		seq   int64
		off   int64
	}
	cases := []struct {
		name      string
		ops       []op
		wm        int64
		inFlight  int
		skipped   int
		anchorOut map[string]int64 // dirty anchors to store
	}{
		{name: "nothing acked", ops: []op{{"rec", "a", 1, 0}, {"rec", "b", 1, 1}}, wm: 0, inFlight: 2},
		{name: "all acked", ops: []op{{"rec", "a", 1, 0}, {"rec", "b", 1, 1}, {"ack", "b", 1, 0}, {"ack", "a", 1, 0}}, wm: 2, anchorOut: map[string]int64{"a": 1, "b": 1}},
		{name: "a later chain acked first: the watermark waits", ops: []op{{"rec", "a", 1, 0}, {"rec", "b", 1, 1}, {"rec", "a", 2, 2}, {"ack", "b", 1, 0}}, wm: 0, inFlight: 2, anchorOut: map[string]int64{"b": 1}},
		{name: "an ack covers a run", ops: []op{{"rec", "a", 1, 0}, {"rec", "a", 2, 1}, {"rec", "b", 1, 2}, {"ack", "a", 2, 0}}, wm: 2, inFlight: 1, anchorOut: map[string]int64{"a": 2}},
		{name: "a held chain pins, and leaves the in-flight count", ops: []op{{"rec", "a", 1, 0}, {"rec", "a", 2, 1}, {"rec", "b", 1, 2}, {"ack", "a", 1, 0}, {"hold", "a", 2, 0}, {"ack", "b", 1, 0}, {"rec", "a", 3, 3}, {"rec", "b", 2, 4}, {"ack", "b", 2, 0}}, wm: 1, inFlight: 0, anchorOut: map[string]int64{"a": 1, "b": 2}},
		{name: "records at or below the stored anchor are skipped", ops: []op{{"anchor", "a", 5, 0}, {"rec", "a", 4, 0}, {"rec", "a", 5, 1}, {"rec", "a", 6, 2}}, wm: 2, inFlight: 1, skipped: 2},
		{name: "a replay behind a higher seq is acked with it", ops: []op{{"rec", "a", 1, 0}, {"rec", "a", 2, 1}, {"rec", "a", 1, 2}, {"rec", "a", 2, 3}, {"ack", "a", 2, 0}}, wm: 4, anchorOut: map[string]int64{"a": 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker()
			tr.assign(k)
			skipped := 0
			for _, o := range tc.ops {
				switch o.kind {
				case "rec":
					if w, _ := tr.record(k, o.off, 0, o.chain, o.seq); !w {
						skipped++
					}
				case "ack":
					tr.ack(o.chain, o.seq, h)
				case "hold":
					tr.hold(o.chain, o.seq)
				case "anchor":
					tr.loadAnchor(o.chain, chain.Anchor{Seq: o.seq, Hash: h})
				}
			}
			if wm, _ := tr.watermark(k); wm != tc.wm {
				t.Errorf("watermark %d, want %d", wm, tc.wm)
			}
			if tr.inFlight != tc.inFlight || skipped != tc.skipped {
				t.Errorf("in flight %d skipped %d, want %d %d", tr.inFlight, skipped, tc.inFlight, tc.skipped)
			}
			got := map[string]int64{}
			for id, a := range tr.dirtyAnchors() {
				got[id] = a.Seq
			}
			if len(got) != len(tc.anchorOut) {
				t.Errorf("dirty anchors %v, want %v", got, tc.anchorOut)
			}
			for id, s := range tc.anchorOut {
				if got[id] != s {
					t.Errorf("dirty anchors %v, want %v", got, tc.anchorOut)
				}
			}
		})
	}
}

// The first record of a chain written after an assignment comes after a
// chain mark carrying the chain's anchor; later runs after a bare one
// (written by the consumer), and after a revoke the anchor again.
func TestTrackerAnnounce(t *testing.T) {
	h := strings.Repeat("ab", 32)
	k := tp{"audit", 0}
	tr := newTracker()
	tr.assign(k)
	tr.loadAnchor("a", chain.Anchor{Seq: 3, Hash: h})
	_, m := tr.record(k, 0, 0, "a", 4)
	if string(m) != `{"mark":{"type":"chain","chain":"a","seq":3,"hash":"`+h+`"}}` {
		t.Fatalf("first mark %s", m)
	}
	if _, m = tr.record(k, 1, 0, "a", 5); m != nil {
		t.Fatalf("second mark %s", m)
	}
	_, m = tr.record(k, 2, 0, "b", 1)
	if string(m) != `{"mark":{"type":"chain","chain":"b"}}` {
		t.Fatalf("new chain's mark %s", m)
	}
	tr.ack("a", 5, h)
	tr.revoke(k)
	tr.assign(k)
	if _, m = tr.record(k, 1, 0, "a", 5); m != nil {
		t.Fatalf("an acked record was written again")
	}
	_, m = tr.record(k, 3, 0, "a", 6)
	if string(m) != `{"mark":{"type":"chain","chain":"a","seq":5,"hash":"`+h+`"}}` {
		t.Fatalf("mark after the revoke %s", m)
	}
}

func TestParseAckChain(t *testing.T) {
	h := strings.Repeat("ab", 32)
	base := `{"ack":{"exporter":"kafka:x","firstSeq":1,"lastSeq":2,"lastHash":"` + h + `","count":2,"quarantined":[]`
	for line, want := range map[string]string{base + `}}`: "", base + `,"chain":"c-1"}}`: "c-1"} {
		a, id, err := parseAck(nil, []byte(line))
		if err != nil || id != want || a.LastSeq != 2 {
			t.Errorf("parseAck(%s) = %+v %q %v", line, a, id, err)
		}
	}
	for _, line := range []string{base + `,"chain":"a b"}}`, base + `,"chain":7}}`, `{"ack":{}}`} {
		if _, _, err := parseAck(nil, []byte(line)); err == nil {
			t.Errorf("parseAck(%s) accepted", line)
		}
	}
}
