package siemqueries

import (
	"sort"
	"strconv"
	"testing"
)

// The SPL of docs/siem-queries.md cannot run here (no Splunk). These tests
// run a model of the SPL commands it uses, with their documented
// semantics, on a real multi-tenant chain, to check the page's claims: the
// product page's query reports breaks in an intact chain and examines only
// 10,000 events; the corrected one reports nothing on an intact chain with
// duplicates and exactly the tampering otherwise; a string sort of seq
// would break it.

// event is a Splunk event as the HEC sink writes it: seq and recordHash
// are indexed fields (strings), prevHash comes out of _raw, _time is ts.
type event struct {
	seq          string
	tenant, hash string
	prev         string // "" for the genesis
	time         int64
}

func events(t *testing.T, ls [][]byte) []event {
	out := make([]event, len(ls))
	for i, l := range ls {
		r := record(t, l)
		out[i] = event{strconv.FormatInt(r.Seq, 10), r.TenantID, r.Hash, r.PrevHash, r.TS}
	}
	return out
}

// sortLimit is SPL's default for sort without a count.
const sortLimit = 10000

// seedQuery models the product page's query:
//
//	| sort _time
//	| streamstats current=f last(recordHash) as expected_prev by tenantId
//	| where expected_prev != prevHash AND isnotnull(expected_prev)
//	| stats count by tenantId
//
// and returns the breaks it reports and how many events it looked at.
func seedQuery(evs []event) (reported, examined int) {
	s := append([]event(nil), evs...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].time < s[j].time })
	if len(s) > sortLimit {
		s = s[:sortLimit]
	}
	last := map[string]string{} // by tenantId
	for _, e := range s {
		if exp, ok := last[e.tenant]; ok && exp != e.prev {
			reported++
		}
		last[e.tenant] = e.hash
	}
	return reported, len(s)
}

// fixedQuery models the corrected neighbour comparison:
//
//	| eval seq=tonumber(mvindex(seq, 0)), recordHash=mvindex(recordHash, 0)
//	| dedup recordHash
//	| spath … prevHash | eval prevHash=if(… =="", "-", prevHash)
//	| sort 0 seq
//	| streamstats current=f window=1 last(seq) as prev_seq last(recordHash) as expected_prev
//	| eval finding=case(…) | where isnotnull(finding)
//
// numeric false models forgetting tonumber: sort 0 seq on the strings.
func fixedQuery(evs []event, numeric bool) []string {
	seen := map[string]bool{}
	var s []event
	for _, e := range evs { // dedup recordHash: the first of each
		if !seen[e.hash] {
			seen[e.hash] = true
			s = append(s, e)
		}
	}
	num := func(e event) int64 { n, _ := strconv.ParseInt(e.seq, 10, 64); return n }
	sort.SliceStable(s, func(i, j int) bool {
		if numeric {
			return num(s[i]) < num(s[j])
		}
		return s[i].seq < s[j].seq
	})
	var out []string
	for i, e := range s {
		seq, prev := num(e), e.prev
		if prev == "" {
			prev = "-"
		}
		var finding string
		if i == 0 {
			if !(seq == 1 && prev == "-") {
				finding = "unanchored"
			}
		} else {
			p := s[i-1]
			switch ps := num(p); {
			case seq == ps:
				finding = "equivocation"
			case seq > ps+1:
				finding = "seq_gap"
			case prev != p.hash:
				finding = "prev_link"
			}
		}
		if finding != "" {
			out = append(out, e.seq+":"+finding)
		}
	}
	return out
}

func TestSPLModel(t *testing.T) {
	const n = 12000
	base := lines(t, n)
	evs := events(t, base)
	tenants := map[string]bool{}
	for _, e := range evs {
		tenants[e.tenant] = true
	}
	if len(tenants) < 2 {
		t.Fatalf("the sample has %d tenants; the test needs several", len(tenants))
	}
	// At-least-once: seqs 5000..5099 delivered twice.
	withDups := append(append([]event{}, evs...), evs[4999:5099]...)

	reported, examined := seedQuery(withDups)
	t.Logf("product page's query on an intact chain of %d records (%d tenants, 100 duplicates): %d breaks reported, %d events examined",
		n, len(tenants), reported, examined)
	if reported < n/10 {
		t.Errorf("the per-tenant query reported only %d breaks on an intact chain; the page claims many false ones", reported)
	}
	if examined != sortLimit {
		t.Errorf("examined %d events, want the sort limit %d", examined, sortLimit)
	}

	if got := fixedQuery(withDups, true); len(got) != 0 {
		t.Errorf("corrected query on an intact chain with duplicates: %v", got[:min(5, len(got))])
	}
	if got := fixedQuery(withDups, false); len(got) == 0 {
		t.Error("sorting seq as strings should break the neighbour comparison")
	}

	// Tampering, one kind at a time.
	forged := append([]event{}, withDups...)
	forged[4999].prev = "00000000000000000000000000000000000000000000000000000000deadbeef"
	if got := fixedQuery(forged, true); len(got) != 1 || got[0] != "5000:prev_link" {
		t.Errorf("forged prevHash at 5000: %v", got)
	}
	deleted := append(append([]event{}, evs[:4999]...), evs[5000:]...)
	if got := fixedQuery(deleted, true); len(got) != 1 || got[0] != "5001:seq_gap" {
		t.Errorf("seq 5000 deleted: %v", got)
	}
	other := events(t, [][]byte{fork(t, base[4999])})[0]
	forked := append(append([]event{}, evs...), other)
	if got := fixedQuery(forked, true); len(got) == 0 || got[0] != "5000:equivocation" {
		t.Errorf("two records at 5000: %v", got)
	}
	if got := fixedQuery(evs[100:], true); len(got) != 1 || got[0] != "101:unanchored" {
		t.Errorf("a search starting at seq 101: %v", got)
	}
}
