package datadog

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Keys used by the tests; no error may ever contain one.
const (
	apiKey    = "0123456789abcdef0123456789abcdef"
	newAPIKey = "fedcba9876543210fedcba9876543210"
)

// keySource writes k to a file and returns a Source reading it, and the
// file's path for rotation.
func keySource(t testing.TB, k string) (*secret.Source, string) {
	return sinktest.SecretFile(t, "dd-api-key", k)
}

func rotate(t *testing.T, path, k string) { sinktest.Rotate(t, path, k) }

// records returns n chained record lines, each about size bytes, with ts
// from 1764244800123 on.
func records(t testing.TB, n, size int) []sink.Record {
	return sinktest.Records(n, size, 1764244800123, "")
}

func chainRecords(t testing.TB, n, size int, ts0 int64, prev string) []sink.Record {
	return sinktest.Records(n, size, ts0, prev)
}

func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	if cfg.APIKey == nil {
		cfg.APIKey, _ = keySource(t, apiKey)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func startFake(t testing.TB, opts ddfake.Options) *ddfake.Server {
	t.Helper()
	f := ddfake.New(opts)
	t.Cleanup(f.Close)
	return f
}

func statuses(ss ...sink.Status) []sink.Status { return ss }

func repeat(s sink.Status, n int) []sink.Status { return slices.Repeat([]sink.Status{s}, n) }

// noSecret fails if the error holds a key.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, k := range []string{apiKey, newAPIKey} {
		if strings.Contains(err.Error(), k) {
			t.Fatalf("error leaks the API key: %v", err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
