package auditship

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

// TestPoisonedPipeline is the default path (audit-batch --siem splunk
// framing in, gzip HEC out) with released memory poisoned: the test binary
// runs itself again with AUDITPIPE_POISON_RELEASED=1, which makes lib/ship
// and lib/sink/httpsink overwrite every batch and request body they pool
// again with 0xAA bytes. Through a HEC that answers 503 to a request once
// (retry), 413 to a request of more than a few events holding one seq
// (split), 400 code 6 at one event (quarantine; the events before it
// kept), with answers delayed at random (four requests in flight, done
// out of order), every event the HEC stored is its record line
// byte-exact, every ack is right and the quarantine file holds the
// rejected lines byte-exact.
func TestPoisonedPipeline(t *testing.T) {
	if os.Getenv("AUDITPIPE_POISON_RELEASED") != "1" {
		if testing.Short() {
			t.Skip("runs the test binary again")
		}
		cmd := exec.Command(os.Args[0], "-test.run", "^TestPoisonedPipeline$", "-test.v", "-test.timeout=3m")
		cmd.Env = append(os.Environ(), "AUDITPIPE_POISON_RELEASED=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestPoisonedPipeline")) {
			t.Fatalf("with AUDITPIPE_POISON_RELEASED=1: %v\n%s", err, out)
		}
		return
	}
	const n = 3000
	lines := makeChain(t, n, 1_764_244_800_123, "acme", "globex", "initech")
	in := framed(t, ndjsonOf(lines), "--siem", "splunk", "--max-count", "40")
	const retrySeq, splitSeq = 500, 1234
	poison := map[string]bool{"777": true, "2001": true}
	var (
		mu      sync.Mutex
		rnd     = rand.New(rand.NewPCG(3, 4))
		retried bool
	)
	f := hecfake.New(hecfake.Options{
		Poison: func(e *hecfake.Event) bool { return poison[fmt.Sprint(e.Fields["seq"])] },
		Fault: func(r *hecfake.Request) hecfake.Fault {
			if r.Method != "POST" || !strings.HasSuffix(r.Path, "/event") {
				return hecfake.Fault{}
			}
			mu.Lock()
			defer mu.Unlock()
			d := time.Duration(rnd.IntN(4000)) * time.Microsecond
			switch {
			case bytes.Contains(r.Body, fmt.Appendf(nil, `"seq":"%d"`, retrySeq)) && !retried:
				retried = true
				return hecfake.Fault{Delay: d, Status: 503, Code: 9, Text: "Server is busy"}
			case bytes.Contains(r.Body, fmt.Appendf(nil, `"seq":"%d"`, splitSeq)) && bytes.Count(r.Body, []byte("\n")) >= 5:
				return hecfake.Fault{Delay: d, Status: 413, Text: "Content-Length of 99999999 too large"}
			}
			return hecfake.Fault{Delay: d}
		},
	})
	t.Cleanup(f.Close)
	t.Setenv("HEC_TOKEN", "t")
	qpath := filepath.Join(t.TempDir(), "quarantine.ndjson")
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"--kind", "splunk", "--url", f.URL, "--token", "env:HEC_TOKEN", "--exporter", "splunk:poison",
		"--acks", "-", "--quarantine", qpath, "--inflight", "4", "--min-backoff", "1ms", "--max-backoff", "5ms", "--pause-after", "100", "--quiet"},
		bytes.NewReader(in), &out, &errb)
	if err != nil {
		t.Fatalf("audit-ship: %v\n%s", err, errb.String())
	}
	if !retried {
		t.Fatal("no request was answered 503: the test proves less")
	}
	got := map[int64]int{}
	for _, e := range f.Events() {
		var seq int64
		fmt.Sscan(fmt.Sprint(e.Fields["seq"]), &seq)
		if seq < 1 || seq > n || e.Event != lines[seq-1].text {
			t.Fatalf("HEC stored for seq %d the event %.100q, want %.100q", seq, e.Event, lines[max(seq-1, 0)].text)
		}
		got[seq]++
	}
	for s := int64(1); s <= n; s++ {
		if poison[fmt.Sprint(s)] != (got[s] == 0) {
			t.Fatalf("seq %d stored %d times (poison %v)", s, got[s], poison[fmt.Sprint(s)])
		}
	}
	checkAcks(t, acksOf(t, out.String()), lines, "splunk:poison", 777, 2001)
	data, err := os.ReadFile(qpath)
	if err != nil {
		t.Fatal(err)
	}
	var p fastjson.Parser
	var q []int64
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		v, err := p.Parse(l)
		if err != nil {
			t.Fatalf("quarantine line %q: %v", l, err)
		}
		s := v.GetInt64("seq")
		q = append(q, s)
		if i := strings.Index(l, `,"line":`); i < 0 || l[i+len(`,"line":`):len(l)-1] != lines[s-1].text {
			t.Fatalf("quarantine line of seq %d is %q: want the line byte-exact", s, l)
		}
	}
	if fmt.Sprint(q) != "[777 2001]" {
		t.Fatalf("quarantined %v, want [777 2001]", q)
	}
}
