package auditverify_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/metricstest"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// hostLines is the record lines of one host's database (seed makes each
// host's chain its own).
func hostLines(t testing.TB, seed, n int) []string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, out, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n), "--seed", strconv.Itoa(seed), "--size", "300"}, nil, &events, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditread.Run(ctx, []string{"--db", db, "--quiet", "--marks", "never"}, nil, &out, &stderr); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

var recHash = regexp.MustCompile(`"recordHash":"([0-9a-f]{64})"`)

func hashOfLine(l string) string { return recHash.FindStringSubmatch(l)[1] }

// fleet is n hosts' chains, each named by its id (the recordHash of its
// first record).
type fleet struct {
	ids   []string
	lines map[string][]string
}

func newFleet(t testing.TB, hosts, n int) *fleet {
	f := &fleet{lines: map[string][]string{}}
	for h := 1; h <= hosts; h++ {
		l := hostLines(t, h, n)
		id := hashOfLine(l[0])
		f.ids = append(f.ids, id)
		f.lines[id] = l
	}
	return f
}

// stream interleaves the chains, runs of `run` records each, a chain mark
// before each run; from[id] starts a chain later, with an anchor on the
// record before.
func (f *fleet) stream(run int, from map[string]int) string {
	var b strings.Builder
	idx := map[string]int{}
	for id, i := range from {
		idx[id] = i
	}
	for more := true; more; {
		more = false
		for _, id := range f.ids {
			ls := f.lines[id]
			i := idx[id]
			if i >= len(ls) {
				continue
			}
			more = true
			var a *chain.Anchor
			if i > 0 && i == from[id] {
				a = &chain.Anchor{Seq: int64(i), Hash: hashOfLine(ls[i-1])}
			}
			b.Write(chain.AppendChainMark(nil, id, a))
			b.WriteByte('\n')
			for j := i; j < i+run && j < len(ls); j++ {
				b.WriteString(ls[j] + "\n")
			}
			idx[id] = i + run
		}
	}
	return b.String()
}

// perChain splits audit-verify's output by the chain marks in it and
// checks every line is a chain mark or a record.
func perChain(t *testing.T, out string) map[string][]string {
	got := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, `{"mark":`) {
			m, err := chain.ParseMark([]byte(l))
			if err != nil || m.Type != chain.MarkChain || m.Anchored {
				t.Fatalf("output mark %s: %+v %v", l, m, err)
			}
			cur = m.Chain
			continue
		}
		if cur == "" {
			t.Fatalf("record before any chain mark in the output: %s", l)
		}
		got[cur] = append(got[cur], l)
	}
	return got
}

func TestManyChains(t *testing.T) {
	f := newFleet(t, 3, 40)
	a, b, c := f.ids[0], f.ids[1], f.ids[2]
	tampered := func(id string, i int) func(*fleet) {
		return func(f *fleet) {
			f.lines[id] = append([]string(nil), f.lines[id]...)
			f.lines[id][i] = strings.Replace(f.lines[id][i], `"durationMs":`, `"durationMz":`, 1)
		}
	}
	cases := []struct {
		name     string
		args     []string
		mod      func(*fleet)
		run      int
		from     map[string]int
		code     int
		want     map[string]int // records passed per chain (from the start or from[id])
		stderr   []string
		holdLine string
	}{
		{name: "three chains interleaved", run: 3, want: map[string]int{a: 40, b: 40, c: 40}},
		{name: "one record at a time", run: 1, want: map[string]int{a: 40, b: 40, c: 40}},
		{name: "anchored mid-way", run: 5, from: map[string]int{a: 10, c: 39}, want: map[string]int{a: 30, b: 40, c: 1}},
		{name: "a tampered chain stops alone", run: 3, mod: tampered(b, 16), code: exitcode.Verify,
			want: map[string]int{a: 40, b: 16, c: 40},
			stderr: []string{
				"audit-verify: error hash_mismatch: chain " + b + " seq 17 line ",
				"audit-verify: error chain_held: chain " + b + " seq 17 line ",
				": held at seq 17 (hash_mismatch at seq 17): none of its later records are passed on; the other chains go on. Fix: find out what changed the chain at seq 17",
				"chain verification failed: 1 of 3 chains held; the other chains' records were passed on",
			},
			holdLine: `{"hold":{"chain":"` + b + `","seq":17,"reason":"hash_mismatch"}}`},
		{name: "a chain first seen mid-way without an anchor is held", run: 4, code: exitcode.Verify,
			mod:    func(f *fleet) { f.lines[c] = f.lines[c][5:] },
			want:   map[string]int{a: 40, b: 40},
			stderr: []string{"error chain_held: chain " + c + " seq 6 line ", ": held at seq 6 (unanchored: first seen at seq 6 with no anchor in its chain mark, so its link to seq 5 is not checked): none of its later records are passed on"}},
		{name: "report mode passes a broken chain's intact records", args: []string{"--mode", "report"}, run: 3, mod: tampered(a, 5), code: exitcode.Verify,
			want: map[string]int{a: 39, b: 40, c: 40}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ff := &fleet{ids: f.ids, lines: map[string][]string{}}
			for k, v := range f.lines {
				ff.lines[k] = v
			}
			if tc.mod != nil {
				tc.mod(ff)
			}
			holds := filepath.Join(t.TempDir(), "holds")
			var stdout, stderr bytes.Buffer
			err := auditverify.Run(context.Background(), append([]string{"--holds", holds}, tc.args...), strings.NewReader(ff.stream(tc.run, tc.from)), &stdout, &stderr)
			if code := exitcode.Of(err); code != tc.code {
				t.Fatalf("exit %d (%v), want %d\n%s", code, err, tc.code, stderr.String())
			}
			if err != nil {
				fmt.Fprintf(&stderr, "audit-verify: %v\n", err) // as cli.Main prints it
			}
			got := perChain(t, stdout.String())
			for _, id := range f.ids {
				if len(got[id]) != tc.want[id] {
					t.Errorf("chain %s: %d records passed, want %d\n%s", id[:8], len(got[id]), tc.want[id], stderr.String())
					continue
				}
				// byte-exact and in order
				start := len(ff.lines[id]) - len(got[id])
				if tc.from[id] > 0 || tc.code == 0 {
					start = len(ff.lines[id]) - tc.want[id]
				} else {
					start = 0
				}
				for i, l := range got[id] {
					if tc.mod == nil && l != ff.lines[id][start+i] {
						t.Fatalf("chain %s record %d not byte-exact or out of order", id[:8], i)
					}
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			hb, _ := os.ReadFile(holds)
			if tc.holdLine != "" && strings.TrimSpace(string(hb)) != tc.holdLine {
				t.Errorf("holds file %q, want %q", hb, tc.holdLine)
			}
		})
	}
}

// The flags of one chain make no sense for many: a usage error (2), not a
// verification failure.
func TestManyChainsRefuseOneChainFlags(t *testing.T) {
	f := newFleet(t, 1, 3)
	var stdout, stderr bytes.Buffer
	err := auditverify.Run(context.Background(), []string{"--anchor", "2:" + hashOfLine(f.lines[f.ids[0]][1])}, strings.NewReader(f.stream(3, nil)), &stdout, &stderr)
	if code := exitcode.Of(err); code != exitcode.Usage || !strings.Contains(err.Error(), "--anchor and --from-cursor are for one chain") {
		t.Fatalf("exit %d: %v", code, err)
	}
	if stdout.Len() != 0 {
		t.Fatalf("passed %q", stdout.String())
	}
}

// One chain whose anchor mark names it: with --chain-mark audit-verify
// writes the chain mark before its first record (downstream then knows the
// chain), and without it nothing but the records; a chain mark
// for another chain in its stream is a bad_mark (fail closed).
func TestOneChainNamedDownstream(t *testing.T) {
	f := newFleet(t, 2, 4)
	a, b := f.ids[0], f.ids[1]
	anchor := string(chain.AppendMark(nil, &chain.Mark{Type: chain.MarkAnchor, Source: chain.SourceDBRow, Seq: 1, Hash: hashOfLine(f.lines[a][0]), Chain: a}))
	in := anchor + "\n" + strings.Join(f.lines[a][1:], "\n") + "\n"
	var stdout, stderr bytes.Buffer
	if err := auditverify.Run(context.Background(), nil, strings.NewReader(in), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if want := strings.Join(f.lines[a][1:], "\n") + "\n"; stdout.String() != want {
		t.Fatalf("without --chain-mark: output\n%s\nwant\n%s", stdout.String(), want)
	}
	stdout.Reset()
	if err := auditverify.Run(context.Background(), []string{"--chain-mark"}, strings.NewReader(in), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	want := string(chain.AppendChainMark(nil, a, nil)) + "\n" + strings.Join(f.lines[a][1:], "\n") + "\n"
	if stdout.String() != want {
		t.Fatalf("output\n%s\nwant\n%s", stdout.String(), want)
	}

	// Read from genesis (no anchor): the first record names the chain.
	stdout.Reset()
	if err := auditverify.Run(context.Background(), []string{"--chain-mark"}, strings.NewReader(strings.Join(f.lines[a], "\n")+"\n"), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if want := string(chain.AppendChainMark(nil, a, nil)) + "\n" + strings.Join(f.lines[a], "\n") + "\n"; stdout.String() != want {
		t.Fatalf("from genesis: output\n%s\nwant\n%s", stdout.String(), want)
	}

	in = anchor + "\n" + f.lines[a][1] + "\n" + string(chain.AppendChainMark(nil, b, nil)) + "\n" + f.lines[b][0] + "\n"
	stdout.Reset()
	stderr.Reset()
	err := auditverify.Run(context.Background(), nil, strings.NewReader(in), &stdout, &stderr)
	if code := exitcode.Of(err); code != exitcode.Verify || !strings.Contains(stderr.String(), "error bad_mark: line 3: a chain mark for chain "+b+" in the stream of chain "+a) {
		t.Fatalf("exit %d %v\n%s", code, err, stderr.String())
	}
	if strings.Count(stdout.String(), `"seq":`) != 1 {
		t.Fatalf("passed %q", stdout.String())
	}
}

// A held chain is counted in auditpipe_verify_breaks_total{reason="chain_held"},
// a series that exists at 0 from the start (an alert on its increase sees
// the first hold); no series carries a chain id.
func TestManyChainsMetric(t *testing.T) {
	f := newFleet(t, 2, 10)
	bad := f.ids[1]
	f.lines[bad] = append([]string(nil), f.lines[bad]...)
	f.lines[bad][4] = strings.Replace(f.lines[bad][4], `"durationMs":`, `"durationMz":`, 1)
	for _, tc := range []struct {
		in   string
		want float64
	}{{newFleetStream(t, 2), 0}, {f.stream(2, nil), 1}} {
		file := filepath.Join(t.TempDir(), "verify.prom")
		var stdout, stderr bytes.Buffer
		_ = auditverify.Run(context.Background(), []string{"--metrics-file", file, "--quiet"}, strings.NewReader(tc.in), &stdout, &stderr)
		mf, err := metricstest.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := mf.Value(metrics.NameVerifyBreaks, "reason=chain_held"); !ok || v != tc.want {
			t.Errorf("chain_held = %v (present %v), want %v", v, ok, tc.want)
		}
		for _, l := range mf.Labels(metrics.NameVerifyBreaks) {
			if strings.Contains(fmt.Sprint(l), bad) {
				t.Errorf("a series carries a chain id: %v", l)
			}
		}
	}
}

func newFleetStream(t *testing.T, n int) string { return newFleet(t, n, 5).stream(2, nil) }

// --holds naming a FIFO nobody reads (the consumer is gone): the hold is
// said on stderr and every other chain is still verified, not blocked.
func TestHoldsFIFOWithoutReader(t *testing.T) {
	f := newFleet(t, 2, 6)
	bad := f.ids[0]
	f.lines[bad] = append([]string(nil), f.lines[bad]...)
	f.lines[bad][1] = strings.Replace(f.lines[bad][1], `"durationMs":`, `"durationMz":`, 1)
	fifo := filepath.Join(t.TempDir(), "acks.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- auditverify.Run(context.Background(), []string{"--holds", fifo, "--quiet"}, strings.NewReader(f.stream(2, nil)), &stdout, &stderr)
	}()
	select {
	case err := <-done:
		if exitcode.Of(err) != exitcode.Verify || !strings.Contains(stderr.String(), "--holds: ") {
			t.Fatalf("exit %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("audit-verify blocked on a FIFO nobody reads")
	}
	if got := perChain(t, stdout.String()); len(got[f.ids[1]]) != 6 {
		t.Fatalf("the intact chain passed %d records, want 6", len(got[f.ids[1]]))
	}
}
