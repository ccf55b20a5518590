package auditship

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/canon"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/stage/auditbatch"
)

// line is one generated record line and what a test checks it by.
type line struct {
	seq    int64
	ts     int64
	tenant string
	hash   string
	text   string
}

// makeChain builds n record lines as Declaragent writes them (docs/contract.md
// sections 2 and 3), seq 1..n from the genesis, ts from ts0 one ms apart,
// tenants in turn. Records hold bytes a re-serialisation would change.
func makeChain(t testing.TB, n int, ts0 int64, tenants ...string) []line {
	t.Helper()
	if len(tenants) == 0 {
		tenants = []string{"acme"}
	}
	awkward := []string{`plain`, `quote \" backslash \\ slash / tab \t`, `unicode é 日本 😀`, "sep \u2028 <b>&amp;", `n 1.50 1e21`}
	prev := ""
	out := make([]line, n)
	for i := range out {
		seq, ts, tenant := int64(i+1), ts0+int64(i), tenants[i%len(tenants)]
		rec := fmt.Sprintf(`{"ts":%d,"tenantId":%q,"kind":"tool_call","msg":"%s","n":1.50,"i":%d}`, ts, tenant, awkward[i%len(awkward)], i)
		canon, err := canon.Append(nil, []byte(rec))
		if err != nil {
			t.Fatalf("canonical %s: %v", rec, err)
		}
		hash := string(chain.AppendHexHash(nil, prev, canon))
		text := fmt.Sprintf(`{"seq":%d,"ts":%d,"tenantId":%q,"kind":"tool_call","record":%s,"prevHash":"%s","recordHash":"%s"}`,
			seq, ts, tenant, canon, prev, hash)
		out[i] = line{seq: seq, ts: ts, tenant: tenant, hash: hash, text: text}
		prev = hash
	}
	return out
}

// ndjsonOf joins lines into a record stream.
func ndjsonOf(lines []line) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// framed runs records through audit-batch with args.
func framed(t *testing.T, records []byte, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	if err := auditbatch.Run(context.Background(), append(args, "--quiet"), bytes.NewReader(records), &out, &errb); err != nil {
		t.Fatalf("audit-batch: %v\n%s", err, errb.String())
	}
	return out.Bytes()
}

// runShip runs audit-ship with args and stdin, and returns its stdout and
// stderr.
func runShip(t *testing.T, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, bytes.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// acksOf parses audit-ship's stdout (--acks -).
func acksOf(t *testing.T, stdout string) []ack.Ack {
	t.Helper()
	var p fastjson.Parser
	var acks []ack.Ack
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if l == "" {
			continue
		}
		a, err := ack.Parse(&p, []byte(l))
		if err != nil {
			t.Fatalf("ack %q: %v", l, err)
		}
		acks = append(acks, a)
	}
	return acks
}

// checkAcks checks that acks cover seq 1..len(lines) without gap, in
// order, end on the last hash, and list exactly the quarantined seqs.
func checkAcks(t *testing.T, acks []ack.Ack, lines []line, exporter string, quarantined ...int64) {
	t.Helper()
	next := int64(1)
	var q []int64
	for _, a := range acks {
		if a.Exporter != exporter || a.FirstSeq != next || a.Count != int(a.LastSeq-a.FirstSeq+1) {
			t.Fatalf("ack %+v: want exporter %s from seq %d", a, exporter, next)
		}
		if a.LastHash != lines[a.LastSeq-1].hash {
			t.Fatalf("ack %+v: lastHash is not seq %d's", a, a.LastSeq)
		}
		q = append(q, a.Quarantined...)
		next = a.LastSeq + 1
	}
	if next != int64(len(lines))+1 {
		t.Fatalf("acks end at seq %d, want %d", next-1, len(lines))
	}
	if fmt.Sprint(q) != fmt.Sprint(quarantined) && !(len(q) == 0 && len(quarantined) == 0) {
		t.Fatalf("acks list quarantined %v, want %v", q, quarantined)
	}
}

// reverify feeds record lines (as a SIEM returned them) through the chain
// verifier from the genesis and fails unless every one verifies on the
// fast path.
func reverify(t *testing.T, msgs []string) {
	t.Helper()
	v := chain.NewVerifier(chain.Options{})
	for i, m := range msgs {
		if pass, findings := v.Check(int64(i+1), []byte(m)); !pass || len(findings) > 0 {
			t.Fatalf("record %d does not re-verify: %v", i+1, findings)
		}
	}
	if f := v.Finish(); len(f) > 0 || v.Failed() {
		t.Fatalf("chain does not re-verify: %v", f)
	}
	if st := v.Stats(); st.Verified != int64(len(msgs)) || st.FastPath != int64(len(msgs)) {
		t.Fatalf("verified %d (fast path %d) of %d", st.Verified, st.FastPath, len(msgs))
	}
}

// h8 is the hash suffix lib/route gives a value it had to change.
func h8(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:4])
}
