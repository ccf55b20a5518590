// Package sinktest holds what the tests of the HTTP sinks (splunk, elastic,
// datadog) share: credentials in rotatable files, and chained record lines
// with every awkward value the JSON string escaper must carry.
package sinktest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/canon"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// SecretFile writes v to a file named name in a temporary directory and
// returns a Source reading it, and the file's path for Rotate.
func SecretFile(t testing.TB, name, v string) (*secret.Source, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := secret.NewSource(context.Background(), "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	return src, p
}

// Rotate replaces a secret file atomically, as a secret manager does.
func Rotate(t testing.TB, path, v string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Awkward are record values (JSON string contents, escapes as written):
// everything the JSON string escaper must carry.
var Awkward = []string{
	`plain`,
	`quote \" backslash \\ slash / newline \n tab \t`,
	`unicode é ü 日本 😀 \ud83d\ude00`,
	"line sep \u2028 para sep \u2029 <script>&amp;",
	`controls \u0000 \u001f \u007f \b \f`,
}

// Records returns n record lines as Declaragent writes them (docs/contract.md
// sections 2 and 3), seqs from 40, each about size bytes, ts from ts0 on,
// chained from prev: each "record" is canonical JSON and recordHash =
// hex(sha256(prevHash + "\n" + record)). The sink.Record fields are read
// from each line by chain.LineParser. It panics on what can only be a bug
// here, so benchmarks without a *testing.T can use it too.
func Records(n, size int, ts0 int64, prev string) []sink.Record {
	var p chain.LineParser
	out := make([]sink.Record, n)
	for i := range out {
		seq := int64(i + 40)
		ts := ts0 + int64(i)
		rec := fmt.Sprintf(`{"ts":%d,"tenantId":"acme","kind":"tool_call","msg":"%s","n":1.50}`, ts, Awkward[i%len(Awkward)])
		if pad := size - len(rec) - 230; pad > 0 {
			rec = rec[:len(rec)-1] + `,"pad":"` + strings.Repeat("x", pad) + `"}`
		}
		canon, err := canon.Append(nil, []byte(rec))
		if err != nil {
			panic(fmt.Sprintf("sinktest: canonical %s: %v", rec, err))
		}
		hash := string(chain.AppendHexHash(nil, prev, canon))
		line := fmt.Appendf(nil, `{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":%s,"prevHash":"%s","recordHash":"%s"}`,
			seq, ts, canon, prev, hash)
		pr, err := p.Parse(line)
		if err != nil {
			panic(fmt.Sprintf("sinktest: parse %s: %v", line, err))
		}
		out[i] = sink.Record{Seq: pr.Seq, TS: pr.TS, TenantID: string(pr.TenantID), Kind: string(pr.Kind),
			Hash: string(pr.RecordHash), PrevHash: string(pr.PrevHash), Line: line, Raw: pr.Raw}
		if out[i].Hash != hash || out[i].Seq != seq {
			panic(fmt.Sprintf("sinktest: LineParser read %+v from %s", out[i], line))
		}
		prev = hash
	}
	return out
}
