package datadog

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
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

// failure is an expected *sink.Error.
type failure struct {
	class      sink.Class
	status     int
	retryAfter int // seconds; -1: any
	contains   []string
}

// checkErr compares err with an expected *sink.Error (nil: no error).
func checkErr(t *testing.T, err error, w *failure) {
	t.Helper()
	if w == nil {
		if err != nil {
			t.Fatalf("err = %v", err)
		}
		return
	}
	var se *sink.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *sink.Error", err, err)
	}
	if se.Class != w.class || se.HTTPStatus != w.status || se.Code != -1 {
		t.Errorf("err = %v: class %v status %d code %d, want %v %d", err, se.Class, se.HTTPStatus, se.Code, w.class, w.status)
	}
	if w.retryAfter >= 0 {
		want := time.Duration(w.retryAfter) * time.Second
		if d := se.RetryAfter - want; d < -2*time.Second || d > 0 || (want == 0) != (se.RetryAfter == 0) {
			t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, want)
		}
	}
	for _, c := range w.contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("err %q does not contain %q", err, c)
		}
	}
	if len(se.Msg) > httpsink.MaxMessage+400 {
		t.Errorf("message of %d bytes is not truncated", len(se.Msg))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
