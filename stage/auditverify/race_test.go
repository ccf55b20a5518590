package auditverify_test

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/auditdb"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// Issue 12 item 1a: audit-read and audit-verify each read the cursor; acks
// committed between the two reads (a restart while acks land) must never
// make a finding. Each round starts audit-read, then audit-verify after a
// random delay, on a fresh exporter whose cursor a committer moves forward
// the whole time, with and without a filter; every round must verify.
func TestRestartRaceNoFinding(t *testing.T) {
	const n = 600
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	ctx := context.Background()
	var events, out, stderr bytes.Buffer
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n)}, nil, &events, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditread.Run(ctx, []string{"--db", db, "--quiet"}, nil, &out, &stderr); err != nil {
		t.Fatal(err)
	}
	hashes := make([]string, n+1)
	var p chain.LineParser
	for i, l := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
		r, err := p.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		hashes[i+1] = string(r.RecordHash)
	}
	w, err := auditdb.OpenWriter(ctx, db, auditdb.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rounds := 40
	if testing.Short() {
		rounds = 12
	}
	rng := rand.New(rand.NewSource(12))
	for round := 0; round < rounds; round++ {
		exporter := "race:" + strconv.Itoa(round)
		start := int64(rng.Intn(n / 2))
		if start > 0 {
			if _, err := w.CommitCursor(ctx, exporter, start, hashes[start], time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		filter := []string{}
		if round%3 == 1 {
			filter = []string{"--tenant", "acme"}
		}
		// The committer: acks land continuously, in steps, until stopped.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := start
			for seq < n-1 {
				select {
				case <-stop:
					return
				default:
				}
				seq += int64(1 + rng.Intn(7))
				if seq > n {
					seq = n
				}
				if _, err := w.CommitCursor(ctx, exporter, seq, hashes[seq], time.Now()); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Duration(rng.Intn(300)) * time.Microsecond)
			}
		}()
		pr, pw := io.Pipe()
		var rerr, verr error
		var rOut, vOut bytes.Buffer
		var rw sync.WaitGroup
		rw.Add(2)
		go func() {
			defer rw.Done()
			rerr = auditread.Run(ctx, append([]string{"--db", db, "--from-cursor", exporter, "--quiet"}, filter...), nil, pw, &rOut)
			pw.Close()
		}()
		delay := time.Duration(rng.Intn(3000)) * time.Microsecond
		go func() {
			defer rw.Done()
			time.Sleep(delay)
			verr = auditverify.Run(ctx, []string{"--db", db, "--from-cursor", exporter, "--quiet"}, pr, io.Discard, &vOut)
			io.Copy(io.Discard, pr)
		}()
		rw.Wait()
		close(stop)
		wg.Wait()
		if rerr != nil || verr != nil {
			t.Fatalf("round %d (cursor from %d, filter %v, verify %v later): read %v, verify %v\n%s%s", round, start, filter, delay, rerr, verr, rOut.String(), vOut.String())
		}
	}
}
