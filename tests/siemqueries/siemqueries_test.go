// Package siemqueries tests the chain checks of docs/siem-queries.md:
// the LogsQL queries, taken from the page itself, against a real
// VictoriaLogs holding a shipped chain (intact with at-least-once
// duplicates, and tampered four ways), and the forensic round trip
// (audit-fetch | audit-verify). The page's SPL cannot run here; a model of
// the SPL commands' semantics checks its reasoning: the product page's
// per-tenant, _time-ordered query reports breaks in an intact chain and
// looks at only 10,000 events, the corrected one reports exactly the
// tampering.
package siemqueries

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/splunk"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditfetch"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// lines returns n chained record lines, as audit-read writes them from a
// database that audit-append filled with audit-sample's events (several
// tenants, interleaved).
func lines(t testing.TB, n int) [][]byte {
	t.Helper()
	return linesSeed(t, n, 1)
}

// linesSeed is lines from audit-sample --seed seed: another host's chain.
func linesSeed(t testing.TB, n int, seed int) [][]byte {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, out, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n), "--size", "300", "--seed", strconv.Itoa(seed)}, nil, &events, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditread.Run(ctx, []string{"--db", db, "--quiet"}, nil, &out, &stderr); err != nil {
		t.Fatal(err)
	}
	ls := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
	if len(ls) != n {
		t.Fatalf("%d lines, want %d", len(ls), n)
	}
	return ls
}

// record parses a line into what the sink sends.
func record(t testing.TB, line []byte) sink.Record {
	t.Helper()
	var p chain.LineParser
	r, err := p.Parse(line)
	if err != nil {
		t.Fatalf("parse %s: %v", line, err)
	}
	return sink.Record{Seq: r.Seq, TS: r.TS, TenantID: string(r.TenantID), Kind: string(r.Kind),
		Hash: string(r.RecordHash), PrevHash: string(r.PrevHash), Line: line, Raw: r.Raw}
}

// withPrev returns line with its prevHash replaced (its recordHash kept:
// what an attacker who cannot recompute the chain does).
func withPrev(line []byte, oldPrev, newPrev string) []byte {
	return bytes.Replace(line, []byte(`"prevHash":"`+oldPrev+`"`), []byte(`"prevHash":"`+newPrev+`"`), 1)
}

// fork returns another valid record at the same seq as line, linked to the
// same predecessor: a second history.
func fork(t testing.TB, line []byte) []byte {
	r := record(t, line)
	raw := bytes.Replace(r.Raw, []byte(`"decision":"`), []byte(`"decision":"x`), 1)
	if bytes.Equal(raw, r.Raw) {
		t.Fatal("fork: nothing to change")
	}
	sum := chain.Hash(r.PrevHash, raw)
	out := bytes.Replace(line, r.Raw, raw, 1)
	return bytes.Replace(out, []byte(r.Hash), []byte(fmt.Sprintf("%x", sum)), 1)
}

// ship sends the lines to VictoriaLogs' HEC endpoint as audit-ship's
// Splunk sink does, with a source of their own, and waits until they are
// searchable. It returns the stream selector of those events.
func ship(t *testing.T, vl *vlogs.Server, ls [][]byte) string {
	t.Helper()
	return shipChains(t, vl, map[string][][]byte{"": ls})
}

// shipChains is ship for the lines of several chains, each event labelled
// with its chain (Record.Chain, as on the central side of a Kafka fleet;
// "" ships without a label).
func shipChains(t *testing.T, vl *vlogs.Server, chains map[string][][]byte) string {
	t.Helper()
	ctx := context.Background()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("x\n"), 0o600)
	src, err := secret.NewSource(ctx, "file:"+tok)
	if err != nil {
		t.Fatal(err)
	}
	source := fmt.Sprintf("siemq-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	s, err := splunk.New(splunk.Config{URL: vl.URL(), Token: src, Source: source, Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var recs []sink.Record
	for id, ls := range chains {
		for _, l := range ls {
			r := record(t, l)
			r.Chain = id
			recs = append(recs, r)
		}
	}
	for i := 0; i < len(recs); i += 500 {
		if _, err := s.Send(ctx, recs[i:min(i+500, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	sel := `_stream:{source="` + source + `"}`
	if _, err := vl.WaitCount(ctx, sel, len(recs), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return sel
}

// docQuery returns the LogsQL query of docs/siem-queries.md marked name,
// its stream selector replaced by sel.
func docQuery(t *testing.T, name, sel string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/siem-queries.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "<!-- test: "+name+" -->")
	if i < 0 {
		t.Fatalf("no %q query in docs/siem-queries.md", name)
	}
	j := strings.Index(s[i:], "```logsql\n")
	k := strings.Index(s[i+j+10:], "```")
	if j < 0 || k < 0 {
		t.Fatalf("%q: no logsql block after the marker", name)
	}
	q := s[i+j+10 : i+j+10+k]
	const docSel = `_stream:{sourcetype="declaragent:audit"}`
	if !strings.Contains(q, docSel) {
		t.Fatalf("%q does not select %s", name, docSel)
	}
	return strings.ReplaceAll(q, docSel, sel)
}

type link struct {
	seq       int64
	hash      string
	outs, ins int
	chain     string // "" for events that carry no chain
}

func (l link) String() string {
	s := fmt.Sprintf("%d:%.8s out %d in %d", l.seq, l.hash, l.outs, l.ins)
	if l.chain != "" {
		s = l.chain + " " + s
	}
	return s
}

func links(t *testing.T, vl *vlogs.Server, q string) []link {
	t.Helper()
	rows, err := vl.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, q)
	}
	var out []link
	for _, r := range rows {
		seq, err1 := strconv.ParseInt(r["link_seq"], 10, 64)
		outs, err2 := strconv.Atoi(r["outs"])
		ins, err3 := strconv.Atoi(r["ins"])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("row %v", r)
		}
		out = append(out, link{seq, r["link_hash"], outs, ins, r["chain"]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].chain != out[j].chain {
			return out[i].chain < out[j].chain
		}
		if out[i].seq != out[j].seq {
			return out[i].seq < out[j].seq
		}
		return out[i].hash < out[j].hash
	})
	return out
}

func completeness(t *testing.T, vl *vlogs.Server, q string) map[string]int64 {
	t.Helper()
	m := completenessByChain(t, vl, q)
	if len(m) != 1 {
		t.Fatalf("query: %d rows (chains %v), want one\n%s", len(m), m, q)
	}
	return m[""]
}

// completenessByChain runs the completeness query: one row per chain.
func completenessByChain(t *testing.T, vl *vlogs.Server, q string) map[string]map[string]int64 {
	t.Helper()
	rows, err := vl.Query(context.Background(), q)
	if err != nil || len(rows) == 0 {
		t.Fatalf("query: %v %v\n%s", rows, err, q)
	}
	all := map[string]map[string]int64{}
	for _, r := range rows {
		all[r["chain"]] = completenessRow(t, r)
	}
	return all
}

func completenessRow(t *testing.T, row map[string]string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for k, v := range row {
		if k == "chain" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s = %q", k, v)
		}
		out[k] = n
	}
	return out
}

// roundTrip runs audit-fetch | audit-verify --mode report on the events
// of sel and returns audit-verify's error and stderr.
func roundTrip(t *testing.T, vl *vlogs.Server, sel string) (error, string) {
	t.Helper()
	var fetched, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditfetch.Run(ctx, []string{"--url", vl.URL(), "--query", sel}, nil, &fetched, &stderr); err != nil {
		t.Fatalf("audit-fetch: %v\n%s", err, stderr.String())
	}
	stderr.Reset()
	err := auditverify.Run(ctx, []string{"--mode", "report"}, &fetched, io.Discard, &stderr)
	return err, stderr.String()
}

func hashOf(t testing.TB, line []byte) string { return record(t, line).Hash }

func TestLogsQLChainChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	const n = 300
	base := lines(t, n)
	h := func(seq int) string { return hashOf(t, base[seq-1]) }
	genesis := link{0, "", 0, 1, ""}
	head := link{n, h(n), 1, 0, ""}

	t.Run("intact with duplicates", func(t *testing.T) {
		ls := append([][]byte{}, base...)
		ls = append(ls, base[99:149]...) // a replay after a crash: seqs 100..149 again
		ls = append(ls, base[199:209]...)
		ls = append(ls, base[199:209]...) // and 200..209 twice more
		sel := ship(t, vl, ls)
		got := links(t, vl, docQuery(t, "logsql-links", sel))
		if want := []link{genesis, head}; !reflect.DeepEqual(got, want) {
			t.Errorf("links = %v, want only the genesis and the head %v", got, want)
		}
		c := completeness(t, vl, docQuery(t, "logsql-completeness", sel))
		if want := map[string]int64{"first": 1, "last": n, "seqs": n, "records": n, "events": n + 70,
			"missing": 0, "duplicates": 70, "extra_versions": 0}; !reflect.DeepEqual(c, want) {
			t.Errorf("completeness = %v, want %v", c, want)
		}
		// Without deduplicating first, the replays look like breaks.
		noDedupe := strings.ReplaceAll(docQuery(t, "logsql-links", sel), "| uniq by (fields.chain, fields.seq, fields.recordHash, prevHash)", "")
		if got := links(t, vl, noDedupe); len(got) <= 2 {
			t.Errorf("without uniq the duplicates should show (%v): is the dedupe step still needed?", got)
		}
		// The forensic round trip: every hash re-verified; duplicates are
		// warnings, not failures.
		err, stderr := roundTrip(t, vl, sel)
		if err != nil || !strings.Contains(stderr, "duplicate") {
			t.Errorf("audit-verify: %v\n%s", err, stderr)
		}
	})

	t.Run("forged prevHash", func(t *testing.T) {
		const forged = "00000000000000000000000000000000000000000000000000000000deadbeef"
		ls := append([][]byte{}, base...)
		ls[149] = withPrev(base[149], h(149), forged) // seq 150 now links elsewhere
		sel := ship(t, vl, ls)
		got := links(t, vl, docQuery(t, "logsql-links", sel))
		want := []link{genesis, {149, forged, 0, 1, ""}, {149, h(149), 1, 0, ""}, head}
		sort.Slice(want, func(i, j int) bool {
			return want[i].seq < want[j].seq || want[i].seq == want[j].seq && want[i].hash < want[j].hash
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("links = %v, want %v", got, want)
		}
		err, stderr := roundTrip(t, vl, sel)
		if exitcode.Of(err) != exitcode.Verify || !strings.Contains(stderr, "seq 150") {
			t.Errorf("audit-verify = %v, want exit 3 naming seq 150\n%s", err, stderr)
		}
	})

	t.Run("deleted record", func(t *testing.T) {
		ls := append(append([][]byte{}, base[:149]...), base[150:]...) // seq 150 gone
		sel := ship(t, vl, ls)
		got := links(t, vl, docQuery(t, "logsql-links", sel))
		if want := []link{genesis, {149, h(149), 1, 0, ""}, {150, h(150), 0, 1, ""}, head}; !reflect.DeepEqual(got, want) {
			t.Errorf("links = %v, want %v", got, want)
		}
		c := completeness(t, vl, docQuery(t, "logsql-completeness", sel))
		if c["missing"] != 1 || c["duplicates"] != 0 || c["extra_versions"] != 0 {
			t.Errorf("completeness = %v, want 1 missing", c)
		}
		err, stderr := roundTrip(t, vl, sel)
		if exitcode.Of(err) != exitcode.Verify || !strings.Contains(stderr, "seq_gap") {
			t.Errorf("audit-verify = %v, want a seq_gap\n%s", err, stderr)
		}
	})

	t.Run("equivocation", func(t *testing.T) {
		other := fork(t, base[149]) // a second, validly hashed seq 150 on the same predecessor
		ls := append(append([][]byte{}, base...), other)
		sel := ship(t, vl, ls)
		got := links(t, vl, docQuery(t, "logsql-links", sel))
		want := []link{genesis, {149, h(149), 1, 2, ""}, {150, hashOf(t, other), 1, 0, ""}, head}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("links = %v, want %v", got, want)
		}
		c := completeness(t, vl, docQuery(t, "logsql-completeness", sel))
		if c["extra_versions"] != 1 || c["missing"] != 0 {
			t.Errorf("completeness = %v, want 1 extra version", c)
		}
	})

	t.Run("many chains", func(t *testing.T) {
		// Two hosts' chains in one index (a Kafka fleet's central side):
		// seqs repeat across them, and only the chain label keeps them
		// apart. Host b's seq 120 names a forged predecessor.
		const m = 200
		other := linesSeed(t, m, 2)
		hb := func(seq int) string { return hashOf(t, other[seq-1]) }
		if hb(1) == h(1) {
			t.Fatal("the two sample chains are the same")
		}
		const forged = "2222222222222222222222222222222222222222222222222222222222222222"
		ob := append([][]byte{}, other...)
		ob[119] = withPrev(other[119], hb(119), forged)
		sel := shipChains(t, vl, map[string][][]byte{"host-a": base, "host-b": ob})
		got := links(t, vl, docQuery(t, "logsql-links", sel))
		want := []link{
			{0, "", 0, 1, "host-a"}, {n, h(n), 1, 0, "host-a"},
			{0, "", 0, 1, "host-b"}, {119, forged, 0, 1, "host-b"}, {119, hb(119), 1, 0, "host-b"}, {m, hb(m), 1, 0, "host-b"},
		}
		sort.Slice(want, func(i, j int) bool {
			if want[i].chain != want[j].chain {
				return want[i].chain < want[j].chain
			}
			return want[i].seq < want[j].seq || want[i].seq == want[j].seq && want[i].hash < want[j].hash
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("links = %v, want %v", got, want)
		}
		c := completenessByChain(t, vl, docQuery(t, "logsql-completeness", sel))
		if want := map[string]map[string]int64{
			"host-a": {"first": 1, "last": n, "seqs": n, "records": n, "events": n, "missing": 0, "duplicates": 0, "extra_versions": 0},
			"host-b": {"first": 1, "last": m, "seqs": m, "records": m, "events": m, "missing": 0, "duplicates": 0, "extra_versions": 0},
		}; !reflect.DeepEqual(c, want) {
			t.Errorf("completeness = %v, want %v", c, want)
		}
	})

	t.Run("tampered duplicate", func(t *testing.T) {
		const forged = "1111111111111111111111111111111111111111111111111111111111111111"
		// Both copies of seq 150 carry its hash; one names another predecessor.
		ls := append(append([][]byte{}, base...), withPrev(base[149], h(149), forged))
		sel := ship(t, vl, ls)
		got := links(t, vl, docQuery(t, "logsql-links", sel))
		want := []link{genesis, {149, forged, 0, 1, ""}, {150, h(150), 2, 1, ""}, head}
		sort.Slice(want, func(i, j int) bool {
			return want[i].seq < want[j].seq || want[i].seq == want[j].seq && want[i].hash < want[j].hash
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("links = %v, want %v", got, want)
		}
	})
}
