package elastic

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Secrets used by the tests; no error may ever contain one.
const (
	apiKey    = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
	newAPIKey = "bmV3a2V5aWQ6bmV3a2V5c2VjcmV0LXJvdGF0ZWQtMTIzNDU2Nzg5MA=="
	password  = "s3cret-pässword:with:colons"
	bearerTok = "eyJhbGciOiJIUzI1NiJ9.ZXNmYWtl.c2lnbmF0dXJl"
)

// basicB64 is the Basic credential of user "elastic" with password.
var basicB64 = base64.StdEncoding.EncodeToString([]byte("elastic:" + password))

// secretFile writes v to a file and returns a Source reading it, and the
// file's path for rotation.
func secretFile(t testing.TB, v string) (*secret.Source, string) {
	return sinktest.SecretFile(t, "secret", v)
}

func rotate(t *testing.T, path, v string) { sinktest.Rotate(t, path, v) }

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
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// apiKeyAuth returns Auth with apiKey read from a file.
func apiKeyAuth(t testing.TB) Auth {
	src, _ := secretFile(t, apiKey)
	return Auth{Kind: AuthAPIKey, APIKey: src}
}

func startFake(t testing.TB, opts esfake.Options) *esfake.Server {
	t.Helper()
	f := esfake.New(opts)
	t.Cleanup(f.Close)
	return f
}

func statuses(ss ...sink.Status) []sink.Status { return ss }

func repeat(s sink.Status, n int) []sink.Status { return slices.Repeat([]sink.Status{s}, n) }

// noSecret fails if the error or any text holds a secret (or the base64
// of the basic credentials).
func noSecret(t *testing.T, err error, texts ...string) {
	t.Helper()
	if err != nil {
		texts = append(texts, err.Error())
	}
	for _, s := range texts {
		for _, sec := range []string{apiKey, newAPIKey, password, bearerTok, basicB64} {
			if strings.Contains(s, sec) {
				t.Fatalf("text leaks a secret: %s", s)
			}
		}
	}
}
