// Package auditsample is audit-sample: a deterministic generator of
// realistic audit events for demos, tests and benchmarks. The man page is
// cmd/audit-sample/doc.go.
package auditsample

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

const prog = "audit-sample"

const synopsis = `usage: audit-sample [--count N] [--size BYTES] [--seed S] > events.ndjson

Writes N audit events (JSON objects, one per line) shaped like Declaragent's:
tool calls, channel events, secret reads and policy decisions across a few
tenants. The same seed gives the same events. Feed them to audit-append.

Example:
  audit-sample --count 1000 | audit-append --db sample.db`

// Main is the entry point of the audit-sample binary.
func Main() int { return cli.Main(prog, Run) }

var (
	kinds   = []string{"tool_call", "channel_event", "secret_access", "policy_decision", "auth_check", "rate_limited"}
	tenants = []string{"_system", "acme", "globex", "initech", "umbrella"}
	actors  = []string{"agent:orders", "agent:billing", "agent:support", "agent:ops"}
	tools   = []string{"search", "crm.lookup", "refund", "email.send", "vault.read", "ticket.update"}
	words   = []string{"order", "refund", "customer", "invoice", "ticket", "shipment", "approved", "lookup", "account", "session", "policy", "threshold", "escalated", "resolved"}
	awkward = []string{"élan", "監査", "naïve", "quote\"d", "back\\slash", "tab\t", "emoji 😀", "<script>", "line\nbreak", "\u2028sep"}
)

// Run is audit-sample with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet(prog, "AUDIT_SAMPLE", synopsis, stderr)
	count := fs.Int("count", 1000, "number of events")
	size := fs.Int("size", 500, "approximate size of each event in bytes (at least 200)")
	seed := fs.Uint64("seed", 1, "random seed")
	start := fs.Int64("start-ts", 1764244800000, "ts of the first event, ms since the epoch (0: now)")
	heavy := fs.Bool("awkward", false, "fill the text with awkward characters (escapes, non-ASCII, emoji) instead of mostly plain words")
	if err := cli.Parse(fs, args, "AUDIT_SAMPLE"); err != nil {
		return err
	}
	if *count < 0 || *size < 200 {
		return cli.Usagef("--count must be >= 0 and --size >= 200")
	}
	ts := *start
	if ts == 0 {
		ts = time.Now().UnixMilli()
	}
	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	w := ndjson.NewWriter(stdout, 0)
	var b []byte
	for i := 0; i < *count; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			break
		}
		ts += int64(rng.IntN(1500))
		b = event(b[:0], rng, i, ts, *size, *heavy)
		if err := w.Write(b); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// event appends one event. Keys are deliberately not sorted, as a producer
// writes them; audit-append stores the canonical form.
func event(b []byte, rng *rand.Rand, i int, ts int64, size int, heavy bool) []byte {
	kind := kinds[rng.IntN(len(kinds))]
	tenant := tenants[rng.IntN(len(tenants))]
	b = append(b, `{"kind":`...)
	b = strconv.AppendQuote(b, kind)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"tenantId":`...)
	b = strconv.AppendQuote(b, tenant)
	b = append(b, `,"actor":`...)
	b = strconv.AppendQuote(b, actors[rng.IntN(len(actors))])
	b = append(b, `,"tool":`...)
	b = strconv.AppendQuote(b, tools[rng.IntN(len(tools))])
	b = append(b, `,"decision":`...)
	if rng.IntN(20) == 0 {
		b = append(b, `"deny"`...)
	} else {
		b = append(b, `"allow"`...)
	}
	b = append(b, `,"durationMs":`...)
	b = strconv.AppendInt(b, int64(rng.IntN(2000)), 10)
	b = append(b, `,"requestId":"req-`...)
	b = strconv.AppendInt(b, int64(i), 36)
	b = append(b, `","detail":{"score":`...)
	b = strconv.AppendFloat(b, float64(rng.IntN(100000))/1000, 'g', -1, 64)
	b = append(b, `,"note":"`...)
	for len(b) < size-3 {
		w := words[rng.IntN(len(words))]
		if heavy || rng.IntN(16) == 0 {
			w = awkward[rng.IntN(len(awkward))]
		}
		for _, r := range w {
			switch r {
			case '"':
				b = append(b, `\"`...)
			case '\\':
				b = append(b, `\\`...)
			case '\t':
				b = append(b, `\t`...)
			case '\n':
				b = append(b, `\n`...)
			default:
				b = append(b, string(r)...)
			}
		}
		b = append(b, ' ')
	}
	b = append(b, `"}}`...)
	return b
}
