package auditship

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/progress"
	"github.com/auditpipe/auditpipe/lib/ship"
)

// TestMistakesAnswered: each mistake says what is wrong and the fix, with
// the exit code of what it is.
func TestMistakesAnswered(t *testing.T) {
	t.Setenv("AP_TEST_TOKEN", "00000000-0000-0000-0000-000000000000")
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	splunk := func(url string, more ...string) []string {
		return append([]string{"--kind", "splunk", "--url", url, "--token", "env:AP_TEST_TOKEN"}, more...)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
		not  []string
	}{
		{"acks is a character device", []string{"--kind", "file", "--path", t.TempDir() + "/out", "--acks", "/dev/null"}, exitcode.Usage,
			[]string{"--acks: /dev/null is a character device, not a FIFO", "--acks - for stdout"}, []string{"remove it"}},
		{"url without port", splunk("http://127.0.0.1:"), exitcode.Usage,
			[]string{"no port after the ':'"}, nil},
		{"url without port, elastic", []string{"--kind", "elastic", "--url", "http://127.0.0.1:"}, exitcode.Usage,
			[]string{"no port after the ':'"}, nil},
		{"check: nothing listens", splunk("http://"+closed, "--check"), exitcode.Failure,
			[]string{"could not talk to the SIEM", "not a refusal", "connection refused", "check the URL's host and port"}, []string{"rejected"}},
		{"check: unknown authority", splunk(tlsSrv.URL, "--check"), exitcode.Failure,
			[]string{"could not talk to the SIEM", "--ca-file"}, []string{"rejected"}},
		{"check: unknown authority, elastic", []string{"--kind", "elastic", "--url", tlsSrv.URL, "--check"}, exitcode.Failure,
			[]string{"--ca-file"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := runShip(t, nil, tc.args...)
			if exitcode.Of(err) != tc.code {
				t.Errorf("exit %d, want %d: %v\n%s", exitcode.Of(err), tc.code, err, stderr)
			}
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(msg, w) {
					t.Errorf("error %q has %q", msg, w)
				}
			}
		})
	}
}

// TestAgentBatchingWithAuditBatch: agent.yaml's batchSize and intervalMs do
// not apply when audit-batch is in the pipe: audit-ship says so, naming the
// file's lines and the fix, instead of ignoring them without a word.
func TestAgentBatchingWithAuditBatch(t *testing.T) {
	t.Setenv("AP_TEST_DD", "k")
	dd := ddfake.New(ddfake.Options{})
	t.Cleanup(dd.Close)
	yaml := writeFile(t, "agent.yaml", "audit:\n  export:\n    kind: datadog\n    apiKey: env:AP_TEST_DD\n    batchSize: 7\n    intervalMs: 20\n")
	in := framed(t, ndjsonOf(makeChain(t, 3, 1_700_000_000_000)), "--siem", "datadog")
	_, stderr, err := runShip(t, in, "--agent-config", yaml, "--url", dd.URL, "--acks", "-")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, w := range []string{"already batched", "audit.export.batchSize (line 5)", "audit.export.intervalMs (line 6)", "audit-batch --agent-config " + yaml} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	// Plain records: batched in-process with them, no warning.
	_, stderr, err = runShip(t, ndjsonOf(makeChain(t, 3, 1_700_000_000_000)), "--agent-config", yaml, "--url", dd.URL, "--acks", "-")
	if err != nil || strings.Contains(stderr, "already batched") {
		t.Errorf("plain input: %v\n%s", err, stderr)
	}
}

// TestProgressStatus: the progress line's state, from the engine's counters.
func TestProgressStatus(t *testing.T) {
	now := time.Unix(1_700_000_100, 0)
	for _, c := range []struct {
		set  func(m *ship.Metrics)
		want progress.Status
	}{
		{func(m *ship.Metrics) {}, progress.Status{Verb: "delivered"}},
		{func(m *ship.Metrics) { m.DeliveredRecords.Store(10); m.LastAckedSeq.Store(10); m.Inflight.Store(1) },
			progress.Status{Records: 10, Seq: 10, Verb: "delivered", Note: "1 request in flight"}},
		{func(m *ship.Metrics) {
			m.FailingSince.Store(time.Unix(1_700_000_088, 0).UnixNano())
			m.FailedRequests.Store(3)
			m.AcksHeld.Store(500)
		}, progress.Status{Verb: "delivered", Note: "failing for 12s (3 failed requests), retrying, acks of 500 held (audit-ack not reading)"}},
		{func(m *ship.Metrics) { m.Paused.Store(1) }, progress.Status{Verb: "delivered", Note: "paused"}},
	} {
		m := &ship.Metrics{}
		c.set(m)
		if got := progressStatus(m, now); got != c.want {
			t.Errorf("got %+v, want %+v", got, c.want)
		}
	}
}
