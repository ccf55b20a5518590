package auditconsume_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/stage/auditbatch"
	"github.com/auditpipe/auditpipe/stage/auditconsume"
	"github.com/auditpipe/auditpipe/stage/auditfetch"
	"github.com/auditpipe/auditpipe/stage/auditship"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// TestCentralPipelineWiring runs the central pipeline with the real
// stages, in-process, end to end:
//
//	audit-ship --kind kafka (one per host) -> 3-broker kfake
//	audit-consume | audit-verify --holds F | audit-batch --siem elastic
//	  | audit-ship --kind elastic --acks F  -> VictoriaLogs
//
// Three chains are produced by audit-ship --kind kafka (keyed by chain id);
// one was tampered with at seq 30 before it was produced. Every chain is
// then read back from VictoriaLogs by its "chain" field and re-verified:
// the two whole chains arrived complete (0 lost, no duplicate), in seq
// order, each event labelled with its own chain; the tampered chain is held
// at seq 30 (its 29 good records delivered, none after), audit-verify ends
// with exit 3. Offsets were committed by the acks naming their chains: a
// second consumer of the group writes nothing of the whole chains again,
// only the held chain from its pin.
func TestCentralPipelineWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	brokers := startCluster(t)
	const n = 120
	f := newFleet(3, n)
	bad := f.ids[1]
	f.lines[bad] = append([]string(nil), f.lines[bad]...)
	f.lines[bad][29] = strings.Replace(f.lines[bad][29], `"actor":"agent:`, `"actor":"agent:x`, 1) // seq 30: content changed, hash not

	// The hosts: audit-ship --kind kafka, concurrently, each its own chain.
	var wg sync.WaitGroup
	for _, id := range f.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := strings.Join(f.lines[id], "\n") + "\n"
			var errb bytes.Buffer
			err := auditship.Run(context.Background(), []string{"--kind", "kafka", "--brokers", brokers, "--topic", topic,
				"--exporter", "kafka:host", "--acks", "-", "--quiet", "--batch-size", "25"}, strings.NewReader(in), io.Discard, &errb)
			if err != nil {
				t.Errorf("host audit-ship --kind kafka (chain %s): %v\n%s", id[:8], err, errb.String())
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	dir := t.TempDir()
	fifo := filepath.Join(dir, "acks.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var consumeErr, verifyErr, batchErr, shipErr error
	r1, w1 := io.Pipe()
	r2, w2 := io.Pipe()
	r3, w3 := io.Pipe()
	var stages sync.WaitGroup
	stages.Add(4)
	go func() {
		defer stages.Done()
		consumeErr = auditconsume.Run(ctx, []string{"--brokers", brokers, "--topic", topic, "--group", "elastic-fleet", "--acks", fifo,
			"--commit-interval", "100ms", "--drain", "5s", "--quiet"}, nil, w1, stderr)
		w1.Close()
	}()
	go func() {
		defer stages.Done()
		verifyErr = auditverify.Run(context.Background(), []string{"--holds", fifo, "--quiet"}, r1, w2, stderr)
		r1.CloseWithError(io.ErrClosedPipe)
		w2.Close()
	}()
	go func() {
		defer stages.Done()
		batchErr = auditbatch.Run(context.Background(), []string{"--siem", "elastic", "--max-interval", "200ms", "--quiet"}, r2, w3, stderr)
		r2.CloseWithError(io.ErrClosedPipe)
		w3.Close()
	}()
	go func() {
		defer stages.Done()
		shipErr = auditship.Run(context.Background(), []string{"--kind", "elastic", "--url", vl.URL() + "/insert/elasticsearch", "--index", "fleet",
			"--exporter", "elastic:fleet", "--acks", fifo, "--quiet"}, r3, io.Discard, stderr)
		r3.CloseWithError(io.ErrClosedPipe)
	}()

	qctx := context.Background()
	want := 2*n + 29
	if _, err := vl.WaitCount(qctx, `chain:*`, want, 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	time.Sleep(500 * time.Millisecond) // the last acks reach audit-consume, a commit follows (100ms)
	cancel()
	done := make(chan struct{})
	go func() { stages.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the pipeline did not stop\n%s", stderr.String())
	}
	if consumeErr != nil || batchErr != nil || shipErr != nil {
		t.Fatalf("audit-consume %v, audit-batch %v, audit-ship %v\n%s", consumeErr, batchErr, shipErr, stderr.String())
	}
	if exitcode.Of(verifyErr) != exitcode.Verify {
		t.Errorf("audit-verify: %v (exit %d), want exit 3 (a chain held)", verifyErr, exitcode.Of(verifyErr))
	}
	if !strings.Contains(stderr.String(), "chain "+bad[:4]) {
		t.Errorf("no finding names the tampered chain %s:\n%s", bad[:8], stderr.String())
	}

	// Every chain re-verified from the store, by its label.
	for _, id := range f.ids {
		rows, err := vl.Query(qctx, `chain:="`+id+`" | sort by (_time)`)
		if err != nil {
			t.Fatal(err)
		}
		wantN := n
		if id == bad {
			wantN = 29
		}
		if len(rows) != wantN {
			t.Errorf("chain %s: %d events in the store, want %d", id[:8], len(rows), wantN)
			continue
		}
		v := chain.NewVerifier(chain.Options{})
		for i, row := range rows {
			if row["_msg"] != f.lines[id][i] {
				t.Fatalf("chain %s event %d is not seq %d's record line byte for byte:\n got %q\nwant %q", id[:8], i, i+1, row["_msg"], f.lines[id][i])
			}
			if row["chain"] != id {
				t.Fatalf("chain %s event %d labelled chain %q", id[:8], i, row["chain"])
			}
			if pass, findings := v.Check(int64(i+1), []byte(row["_msg"])); !pass || len(findings) > 0 {
				t.Fatalf("chain %s seq %d does not re-verify from the store: %v", id[:8], i+1, findings)
			}
		}
		if fs := v.Finish(); len(fs) > 0 || v.Failed() {
			t.Fatalf("chain %s does not re-verify from the store: %v", id[:8], fs)
		}
		// The forensic round trip an operator runs: audit-fetch --chain | audit-verify.
		var fetched, errb bytes.Buffer
		if err := auditfetch.Run(qctx, []string{"--url", vl.URL(), "--kind", "elastic", "--chain", id}, nil, &fetched, &errb); err != nil {
			t.Fatalf("audit-fetch --chain %s: %v\n%s", id[:8], err, errb.String())
		}
		if fetched.String() != strings.Join(f.lines[id][:wantN], "\n")+"\n" {
			t.Fatalf("audit-fetch --chain %s: not the chain's %d records byte for byte", id[:8], wantN)
		}
		if err := auditverify.Run(qctx, []string{"--quiet"}, &fetched, io.Discard, &errb); err != nil {
			t.Fatalf("audit-fetch --chain %s | audit-verify: %v\n%s", id[:8], err, errb.String())
		}
	}
	// Without --chain, a fetch of the fleet's store refuses the mix.
	if err := auditfetch.Run(qctx, []string{"--url", vl.URL(), "--kind", "elastic"}, nil, io.Discard, io.Discard); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--chain") {
		t.Errorf("audit-fetch of three chains: %v, want exit 2 naming --chain", err)
	}

	// The acks (each naming its chain) made audit-consume commit: the
	// group's next consumer writes no record of the whole chains again,
	// only the held chain's from its pin (held again downstream).
	fifo2 := filepath.Join(dir, "acks2.fifo")
	if err := syscall.Mkfifo(fifo2, 0o600); err != nil {
		t.Fatal(err)
	}
	// It runs until it has written the held chain's records (joining the
	// group can take seconds on a loaded host), and half a second more to
	// catch any record it should not write, or 60 s.
	out := &lockedBuffer{}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	go func() {
		for ctx2.Err() == nil {
			if strings.Count(out.String(), "\n") >= n-29+1 {
				time.Sleep(500 * time.Millisecond)
				cancel2()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if err := auditconsume.Run(ctx2, []string{"--brokers", brokers, "--topic", topic, "--group", "elastic-fleet", "--acks", fifo2,
		"--drain", "0s", "--quiet"}, nil, out, io.Discard); err != nil {
		t.Fatalf("second consumer: %v", err)
	}
	again := map[string]int{}
	cur := ""
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		if m, err := chain.ParseMark([]byte(l)); err == nil {
			cur = m.Chain
			continue
		}
		again[cur]++
	}
	for id, k := range again {
		if id != bad {
			t.Errorf("the group's next consumer wrote %d records of chain %s again: its offsets or anchors were not committed", k, id[:8])
		}
	}
	if again[bad] != n-29 {
		t.Errorf("the next consumer wrote %d records of the held chain, want %d (from its pin at seq 30)", again[bad], n-29)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
