package auditfetch_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/vlogs"
	auditchain "github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
)

// otherChain is n record lines of another host's database (audit-sample
// --seed 2: other records, so another chain id).
func otherChain(t testing.TB, n int) []byte {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, out, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n), "--size", "200", "--seed", "2"}, nil, &events, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditread.Run(ctx, []string{"--db", db, "--quiet"}, nil, &out, &stderr); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestChains: a store holding two chains shipped as a fleet's central side
// ships them (each run after its chain mark, so every event carries its
// chain, seqs 1..n in both): audit-fetch without --chain refuses the mix
// (exit 2) naming both chains and --chain; with --chain it gives exactly
// that chain, byte for byte in seq order, and audit-verify passes it. For
// splunk (fields.chain) and elastic (chain).
func TestChains(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	t.Setenv("AP_TEST_HEC_TOKEN", "00000000-0000-0000-0000-000000000000")
	a, b := chain(t, 80), otherChain(t, 50)
	idOf := func(lines []byte) string {
		first, _, _ := bytes.Cut(lines, []byte("\n"))
		i := bytes.Index(first, []byte(`"recordHash":"`))
		return string(first[i+14 : i+78])
	}
	ida, idb := idOf(a), idOf(b)
	if ida == idb {
		t.Fatal("the two chains are the same")
	}
	var in bytes.Buffer
	for _, part := range []struct {
		id    string
		lines []byte
	}{{ida, a}, {idb, b}} {
		in.Write(auditchain.AppendChainMark(nil, part.id, nil))
		in.WriteByte('\n')
		in.Write(part.lines)
	}
	u := vl.URL()
	ship(t, in.Bytes(), "--kind", "splunk", "--url", u, "--token", "env:AP_TEST_HEC_TOKEN", "--exporter", "splunk:fleet", "--host", "central", "--source", "fleet")
	ship(t, in.Bytes(), "--kind", "elastic", "--url", u+"/insert/elasticsearch", "--exporter", "elastic:fleet")
	if _, err := vl.WaitCount(context.Background(), `*`, 2*130, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"splunk", "elastic"} {
		t.Run(kind, func(t *testing.T) {
			fetch := func(args ...string) (string, string, error) {
				s := &store{vl: vl}
				return s.fetch(append([]string{"--kind", kind}, args...)...)
			}
			_, _, err := fetch()
			if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--chain") ||
				!strings.Contains(err.Error(), ida+": 80 events, seq 1..80") || !strings.Contains(err.Error(), idb+": 50 events, seq 1..50") {
				t.Fatalf("a fetch of two chains: %v (exit %d), want exit 2 naming both and --chain", err, exitcode.Of(err))
			}
			for _, c := range []struct {
				id    string
				lines []byte
			}{{ida, a}, {idb, b}} {
				out, stderr, err := fetch("--chain", c.id)
				if err != nil {
					t.Fatalf("--chain %s: %v\n%s", c.id[:8], err, stderr)
				}
				if out != string(c.lines) {
					t.Fatalf("--chain %s: fetched %d bytes, not the chain's %d byte for byte", c.id[:8], len(out), len(c.lines))
				}
				if err, stderr := verify(out); err != nil {
					t.Fatalf("--chain %s: audit-verify: %v\n%s", c.id[:8], err, stderr)
				}
			}
		})
	}
	// One host that began labelling midway (datadog here): its first 20
	// events carry no chain, the rest do: one chain, fetched whole, with a
	// note.
	t.Setenv("AP_TEST_DD_KEY", "0123456789abcdef0123456789abcdef")
	lines := bytes.SplitAfter(b, []byte("\n"))
	var mid bytes.Buffer
	mid.Write(bytes.Join(lines[:20], nil))
	mid.Write(auditchain.AppendChainMark(nil, idb, nil))
	mid.WriteByte('\n')
	mid.Write(bytes.Join(lines[20:], nil))
	dd := []string{"--kind", "datadog", "--url", u, "--api-key", "env:AP_TEST_DD_KEY", "--hostname", "web9", "--exporter", "datadog:mid"}
	ship(t, mid.Bytes()[:len(bytes.Join(lines[:20], nil))], dd...)
	ship(t, mid.Bytes()[len(bytes.Join(lines[:20], nil)):], dd...)
	if _, err := vl.WaitCount(context.Background(), `*`, 2*130+50, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := (&store{vl: vl}).fetch("--kind", "datadog")
	if err != nil || out != string(b) || !strings.Contains(stderr, "20 events carry no chain label") {
		t.Fatalf("labelled midway: %v, %d bytes (want %d)\n%s", err, len(out), len(b), stderr)
	}

	if _, _, err := (&store{vl: vl}).fetch("--kind", "elastic", "--chain", "not a chain id"); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("--chain with spaces: %v, want exit 2", err)
	}
}
