package auditship

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// TestNoAckReaderAtEndOfInput (issue 12, 2d): with nobody reading the ack
// FIFO, audit-ship at the end of input waits --drain-timeout, not for
// ever, then says what was delivered but not handed over and exits 8; its
// summary does not call those records acked.
func TestNoAckReaderAtEndOfInput(t *testing.T) {
	dir := t.TempDir()
	lines := makeChain(t, 30, 1764244800123, "acme")
	start := time.Now()
	_, stderr, err := runShip(t, ndjsonOf(lines), "--kind", "file", "--path", filepath.Join(dir, "out.ndjson"),
		"--gzip=false", "--acks", filepath.Join(dir, "acks.fifo"), "--drain-timeout", "300ms", "--exporter", "file:t")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	if exitcode.Of(err) != exitcode.Incomplete {
		t.Fatalf("err %v (exit %d), want exit 8\n%s", err, exitcode.Of(err), stderr)
	}
	for _, want := range []string{
		"waiting up to 300ms (--drain-timeout) to hand the acks of 30 delivered record(s) to audit-ack",
		"30 records delivered, no ack handed to audit-ack, acks of 30 NOT handed over",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(err.Error(), "seq 1..30") || !strings.Contains(err.Error(), "is audit-ack running") {
		t.Errorf("err %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out.ndjson")); strings.Count(string(b), "\n") != 30 {
		t.Fatalf("the file sink holds %d lines", strings.Count(string(b), "\n"))
	}
}

// TestShipDropsMarks: mark lines in plain and in framed input are dropped,
// counted in the summary, never shipped.
func TestShipDropsMarks(t *testing.T) {
	lines := makeChain(t, 20, 1764244800123, "acme")
	plain := string(ndjsonOf(lines))
	mark := `{"mark":{"type":"anchor","seq":0}}` + "\n"
	withMarks := mark + strings.Replace(plain, "\n", "\n"+mark, 3)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"plain", []byte(withMarks)},
		{"framed, a mark first", append([]byte(mark+mark), framed(t, []byte(plain), "--max-count", "5")...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.ndjson")
			stdout, stderr, err := runShip(t, tc.in, "--kind", "file", "--path", out, "--gzip=false", "--acks", "-", "--exporter", "file:t")
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			checkAcks(t, acksOf(t, stdout), lines, "file:t")
			b, _ := os.ReadFile(out)
			if string(b) != plain {
				t.Fatalf("shipped:\n%s", b)
			}
			if !strings.Contains(stderr, "mark lines dropped") {
				t.Fatalf("stderr:\n%s", stderr)
			}
		})
	}
}

// TestRotatedTokenHasTime (3f): the SIEM refuses the token; the operator
// rotates it (the file and the SIEM) after the first refusal. The next
// attempt comes --refused-backoff later and picks the new token up: no
// restart, every record delivered. (Refusals used to come within a second
// and stop the shipper before a rotation could land.)
func TestRotatedTokenHasTime(t *testing.T) {
	const oldTok, newTok = "11111111-2222-3333-4444-000000000001", "11111111-2222-3333-4444-000000000002"
	f := hecfake.New(hecfake.Options{Tokens: []string{oldTok}})
	t.Cleanup(f.Close)
	tokFile := filepath.Join(t.TempDir(), "hec.token")
	if err := os.WriteFile(tokFile, []byte(oldTok), 0o600); err != nil {
		t.Fatal(err)
	}
	// The SIEM's side of the rotation happened first: the old token is refused.
	f.SetTokens(newTok)
	lines := makeChain(t, 20, 1764244800123, "acme")
	var errb syncBuffer
	rotated := make(chan struct{})
	go func() {
		defer close(rotated)
		for !strings.Contains(errb.String(), "refusal 1 of 5") {
			time.Sleep(10 * time.Millisecond)
		}
		os.WriteFile(tokFile, []byte(newTok), 0o600)
	}()
	var out bytes.Buffer
	err := Run(context.Background(), []string{"--kind", "splunk", "--url", f.URL, "--token", "file:" + tokFile, "--acks", "-",
		"--refused-backoff", "500ms", "--min-backoff", "1ms", "--inflight", "1"}, bytes.NewReader(ndjsonOf(lines)), &out, &errb)
	<-rotated
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	checkAcks(t, acksOf(t, out.String()), lines, "splunk:default")
	if !strings.Contains(errb.String(), "next attempt in") || !strings.Contains(errb.String(), "delivering again after") {
		t.Fatalf("stderr:\n%s", errb.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
