package auditfetch_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditfetch"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
	"github.com/auditpipe/auditpipe/stage/auditship"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// tsRE is an event's ts.
var tsRE = regexp.MustCompile(`"ts":[0-9]+`)

// chain returns n chained record lines of a fresh database, as audit-read
// writes them (audit-sample's interleaved tenants, through audit-append).
// The timestamps are what a busy writer gives: ten records a millisecond,
// and a clock stepped back by a second in the middle, so the store's time
// order is not seq order.
func chain(t testing.TB, n int) []byte {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, out, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n), "--size", "200"}, nil, &events, &stderr); err != nil {
		t.Fatal(err)
	}
	evs := bytes.SplitAfter(events.Bytes(), []byte("\n"))
	events.Reset()
	for i, ev := range evs {
		ts := 1764244800000 + int64(i/10)
		if i >= n/2 {
			ts -= 1000
		}
		events.Write(tsRE.ReplaceAll(ev, []byte(`"ts":`+strconv.FormatInt(ts, 10))))
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditread.Run(ctx, []string{"--db", db, "--quiet"}, nil, &out, &stderr); err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(out.Bytes(), []byte("\n")); got != n {
		t.Fatalf("%d lines, want %d", got, n)
	}
	return out.Bytes()
}

// ship runs audit-ship on lines with args.
func ship(t *testing.T, lines []byte, args ...string) {
	t.Helper()
	var stderr bytes.Buffer
	if err := auditship.Run(context.Background(), append(args, "--acks", "-", "--quiet"), bytes.NewReader(lines), io.Discard, &stderr); err != nil {
		t.Fatalf("audit-ship %v: %v\n%s", args, err, stderr.String())
	}
}

// store is one real VictoriaLogs holding, from two databases A (nA
// records) and B (nB records, the same seqs 1..nB with other hashes):
//
//	splunk  A  --host web1 --source declaragent:audit   splunk  B  --host web2 (same source)
//	datadog A  --hostname web1 (default source)          datadog B  --hostname web1 --source other
//	elastic A
//
// so every kind shares the store with the other two, and splunk and
// datadog each with a second exporter of their own kind.
type store struct {
	vl     *vlogs.Server
	a, b   []byte
	nA, nB int
}

func newStore(t *testing.T) *store {
	t.Helper()
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	{
		t.Setenv("AP_TEST_HEC_TOKEN", "00000000-0000-0000-0000-000000000000")
		t.Setenv("AP_TEST_DD_KEY", "0123456789abcdef0123456789abcdef")
		s := &store{vl: vl, nA: 150, nB: 60}
		s.a, s.b = chain(t, s.nA), chain(t, s.nB)
		u := vl.URL()
		splunk := []string{"--kind", "splunk", "--url", u, "--token", "env:AP_TEST_HEC_TOKEN"}
		datadog := []string{"--kind", "datadog", "--url", u, "--api-key", "env:AP_TEST_DD_KEY"}
		ship(t, s.a, append(splunk, "--exporter", "splunk:a", "--host", "web1", "--source", "declaragent:audit")...)
		ship(t, s.b, append(splunk, "--exporter", "splunk:b", "--host", "web2", "--source", "declaragent:audit")...)
		ship(t, s.a, append(datadog, "--exporter", "datadog:a", "--hostname", "web1")...)
		ship(t, s.b, append(datadog, "--exporter", "datadog:b", "--hostname", "web1", "--source", "other")...)
		ship(t, s.a, "--kind", "elastic", "--exporter", "elastic:a", "--url", u+"/insert/elasticsearch", "--batch-size", "40")
		ctx := context.Background()
		if _, err := vl.WaitCount(ctx, `*`, 3*s.nA+2*s.nB, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// fetch runs audit-fetch with args against the store.
func (s *store) fetch(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = auditfetch.Run(context.Background(), append([]string{"--url", s.vl.URL()}, args...), nil, &out, &errb)
	return out.String(), errb.String(), err
}

// verify runs audit-verify --mode report on lines.
func verify(lines string) (error, string) {
	var stderr bytes.Buffer
	err := auditverify.Run(context.Background(), []string{"--mode", "report"}, strings.NewReader(lines), io.Discard, &stderr)
	return err, stderr.String()
}

// TestEveryKind fills one real VictoriaLogs with the five shipments of
// store and fetches them back. Skipped without the victoria-logs binary
// (see internal/vlogs) and under -short.
func TestEveryKind(t *testing.T) {
	s := newStore(t)
	t.Run("round trip", func(t *testing.T) { roundTripEveryKind(t, s) })
	t.Run("no false tamper finding", func(t *testing.T) { noFalseTamperFinding(t, s) })
	t.Run("the documented commands", func(t *testing.T) { documented(t, s) })
}

// documented runs the audit-fetch commands of docs/siem-queries.md's round
// trip (the block marked <!-- test: fetch-round-trip -->) as written,
// against the store: each gives chain A, which audit-verify passes.
func documented(t *testing.T, s *store) {
	doc, err := os.ReadFile("../../docs/siem-queries.md")
	if err != nil {
		t.Fatal(err)
	}
	const mark = "<!-- test: fetch-round-trip -->\n```sh\n"
	i := bytes.Index(doc, []byte(mark))
	if i < 0 {
		t.Fatalf("docs/siem-queries.md has no %q block", mark)
	}
	block := string(doc[i+len(mark):])
	block = block[:strings.Index(block, "```")]
	block = strings.ReplaceAll(block, "\\\n", " ")
	n := 0
	for _, line := range strings.Split(block, "\n") {
		if !strings.HasPrefix(line, "audit-fetch ") {
			continue
		}
		cmd, rest, ok := strings.Cut(line, " | audit-verify ")
		if !ok || !strings.Contains(rest, ">/dev/null") {
			t.Fatalf("%q: want audit-fetch ... | audit-verify ... >/dev/null", line)
		}
		args := strings.Fields(cmd)[1:]
		for j, a := range args {
			if a == "http://127.0.0.1:9428" {
				args[j] = s.vl.URL()
			}
		}
		var out, stderr bytes.Buffer
		if err := auditfetch.Run(context.Background(), args, nil, &out, &stderr); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, stderr.String())
		}
		if verr, vstderr := verify(out.String()); verr != nil || out.String() != string(s.a) {
			t.Fatalf("%s | audit-verify: %v\n%s\n%d lines, want the shipped chain", cmd, verr, vstderr, strings.Count(out.String(), "\n"))
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d audit-fetch commands in the block, want one per kind", n)
	}
}

// Every kind audit-ship ships comes back with its own --kind and the
// filters of its shipment as exactly the shipped chain, which audit-verify
// passes: no false seq_gap from a seq field the kind does not have, and
// no false equivocation from another shipment in the same store.
func roundTripEveryKind(t *testing.T, s *store) {
	for _, c := range []struct {
		name string
		args []string
		want []byte
	}{
		{"splunk A", []string{"--kind", "splunk", "--host", "web1"}, s.a},
		{"splunk B", []string{"--kind", "splunk", "--host", "web2", "--source", "declaragent:audit"}, s.b},
		{"datadog A", []string{"--kind", "datadog", "--host", "web1", "--source", "declaragent:audit"}, s.a},
		{"datadog B", []string{"--kind", "datadog", "--source", "other"}, s.b},
		{"elastic A", []string{"--kind", "elastic"}, s.a},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := s.fetch(c.args...)
			if err != nil {
				t.Fatalf("audit-fetch %v: exit %d: %v\n%s", c.args, exitcode.Of(err), err, stderr)
			}
			// The other kinds in the store are named, not fetched.
			if !strings.Contains(stderr, "the query also matches") || !strings.Contains(stderr, "left out") {
				t.Errorf("audit-fetch %v: stderr %q, want it to name the other kinds left out", c.args, stderr)
			}
			if verr, vstderr := verify(out); verr != nil {
				t.Fatalf("audit-verify on audit-fetch %v: exit %d: %v\n%s", c.args, exitcode.Of(verr), verr, vstderr)
			}
			if out != string(c.want) {
				t.Fatalf("audit-fetch %v: %d lines, not the shipped chain of %d", c.args, strings.Count(out, "\n"), bytes.Count(c.want, []byte("\n")))
			}
		})
	}
}

// On main, audit-fetch sorted every kind by fields.seq, which only the HEC
// events have: an Elastic or Datadog copy came out in store order and
// audit-verify called the intact chain tampered (seq_gap). Whatever the
// flags, a fetch of an intact shipment must never end in a tamper finding:
// it verifies, or audit-fetch stops first with a usage error that names
// the flag to give.
func noFalseTamperFinding(t *testing.T, s *store) {
	for _, c := range []struct {
		name string
		args []string
		flag string // what the usage error must name, "" if the fetch must give chain A
	}{
		// main's way, no --kind: main sorted these by the HEC seq field,
		// which they lack (a false seq_gap); now the one kind the query
		// matches is the kind.
		{"elastic events, no --kind", []string{"--query", `seq:* -service:*`}, ""},
		{"datadog events, no --kind", []string{"--query", `ddsource:="declaragent:audit" hostname:="web1"`}, ""},
		// no --kind, and the query matches several kinds.
		{"all kinds, no --kind", nil, "give --kind"},
		// the wrong --kind for the events the query selects.
		{"elastic events as datadog", []string{"--kind", "datadog", "--query", `seq:* -service:*`}, "--kind elastic"},
		{"datadog events as splunk", []string{"--kind", "splunk", "--query", `service:*`}, "--kind datadog"},
		{"splunk events as elastic", []string{"--kind", "elastic", "--query", `fields.seq:*`}, "--kind splunk"},
		// two shipments of one kind mixed in the store.
		{"splunk A and B mixed", []string{"--kind", "splunk"}, "--host"},
		{"datadog A and B mixed", []string{"--kind", "datadog", "--host", "web1"}, "--source"},
		// a filter the kind's events do not carry.
		{"elastic has no host", []string{"--kind", "elastic", "--host", "web1"}, "--host"},
		{"no exporter in events", []string{"--kind", "splunk", "--exporter", "splunk:a"}, "--exporter"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := s.fetch(c.args...)
			if err == nil {
				verr, vstderr := verify(out)
				if verr == nil && c.flag == "" {
					if out != string(s.a) {
						t.Fatalf("audit-fetch %v: %d lines, not the shipped chain", c.args, strings.Count(out, "\n"))
					}
					return
				}
				if verr == nil {
					t.Fatalf("audit-fetch %v: %d lines that verify, want a usage error naming %s\n%s", c.args, strings.Count(out, "\n"), c.flag, stderr)
				}
				t.Fatalf("audit-fetch %v | audit-verify: exit %d: %v\n%s\nwant a usage error from audit-fetch naming %s, not a tamper finding", c.args, exitcode.Of(verr), verr, vstderr, c.flag)
			}
			t.Logf("audit-fetch %v: %v", c.args, err)
			if code := exitcode.Of(err); code != exitcode.Usage {
				t.Fatalf("audit-fetch %v: exit %d: %v\n%s\nwant exit 2", c.args, code, err, stderr)
			}
			if !strings.Contains(err.Error(), c.flag) {
				t.Fatalf("audit-fetch %v: %v\nwant the error to name %s", c.args, err, c.flag)
			}
			if out != "" {
				t.Errorf("audit-fetch %v wrote %d lines before the usage error", c.args, strings.Count(out, "\n"))
			}
		})
	}
}
