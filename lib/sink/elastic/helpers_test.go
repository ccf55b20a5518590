package elastic

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/elastic/esfake"
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
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := secret.NewSource(context.Background(), "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	return src, p
}

// rotate replaces a secret file atomically, as a secret manager does.
func rotate(t *testing.T, path, v string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// awkward record values: everything the JSON string escaper must carry.
var awkward = []string{
	`plain`,
	`quote \" backslash \\ slash / newline \n tab \t`,
	`unicode é ü 日本 😀 \ud83d\ude00`,
	"line sep \u2028 para sep \u2029 <script>&amp;",
	`controls \u0000 \u001f \u007f \b \f`,
}

// records returns n chained record lines, each about size bytes, with ts
// from 1764244800123 on.
func records(t testing.TB, n, size int) []sink.Record {
	return chainRecords(t, n, size, 1764244800123, "")
}

// chainRecords builds n record lines as Declaragent writes them
// (CONTRACTS.md sections 2 and 3): each "record" is canonical JSON and
// recordHash = hex(sha256(prevHash + "\n" + record)), chained from prev.
// The sink.Record fields are filled by chain.LineParser from the line.
func chainRecords(t testing.TB, n, size int, ts0 int64, prev string) []sink.Record {
	t.Helper()
	var p chain.LineParser
	out := make([]sink.Record, n)
	for i := range out {
		seq := int64(i + 40)
		ts := ts0 + int64(i)
		rec := fmt.Sprintf(`{"ts":%d,"tenantId":"acme","kind":"tool_call","msg":"%s","n":1.50}`, ts, awkward[i%len(awkward)])
		if pad := size - len(rec) - 230; pad > 0 {
			rec = rec[:len(rec)-1] + `,"pad":"` + strings.Repeat("x", pad) + `"}`
		}
		canon, err := chain.Canonical(nil, []byte(rec))
		if err != nil {
			t.Fatalf("canonical %s: %v", rec, err)
		}
		hash := string(chain.AppendHexHash(nil, prev, canon))
		line := fmt.Appendf(nil, `{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":%s,"prevHash":"%s","recordHash":"%s"}`,
			seq, ts, canon, prev, hash)
		pr, err := p.Parse(line)
		if err != nil {
			t.Fatalf("parse %s: %v", line, err)
		}
		out[i] = sink.Record{Seq: pr.Seq, TS: pr.TS, TenantID: string(pr.TenantID), Kind: string(pr.Kind),
			Hash: string(pr.RecordHash), PrevHash: string(pr.PrevHash), Line: line, Raw: pr.Raw}
		if out[i].Hash != hash || out[i].Seq != seq {
			t.Fatalf("LineParser read %+v from %s", out[i], line)
		}
		prev = hash
	}
	return out
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

// failure is an expected *sink.Error.
type failure struct {
	class      sink.Class
	status     int
	retryAfter int // seconds; -1: any
	contains   []string
}
