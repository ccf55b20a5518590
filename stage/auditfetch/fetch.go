// Package auditfetch is audit-fetch: it reads records back out of a log
// store's search API and writes them as record lines in seq order, so that
// audit-verify can re-check the chain from what the SIEM actually holds.
// The man page is cmd/audit-fetch/doc.go.
package auditfetch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	auditchain "github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

const prog = "audit-fetch"

const synopsis = `usage: audit-fetch --url URL [--kind splunk|elastic|datadog] [--host H] [--source S] [--query LOGSQL]

Reads the events audit-ship --kind KIND stored in VictoriaLogs (via its
query API), sorted by seq, and writes their record lines to stdout exactly
as they were stored. --kind (default: the one kind the query matches)
gives the seq field and the events' shape; --host and --source pick one
shipment when several share the store.

Example:
  audit-fetch --kind datadog --url http://127.0.0.1:9428 --host web1 | audit-verify`

// shape is what audit-ship --kind NAME stores in VictoriaLogs, per
// lib/sink/<name>/encode.go and what VictoriaLogs makes of it (internal/vlogs).
type shape struct {
	name string
	// seq is the field holding the seq, a decimal string (VictoriaLogs
	// sorts it numerically).
	seq string
	// is selects this kind's events and no other kind's. A field is
	// tested with :!"" (non-empty) and :"" (empty or absent), not :*:
	// VictoriaLogs v1.52.1 counts no match for seq:* inside stats ... if
	// when seq is stored as a number column.
	is string
	// host and source are the fields the --host and --source filters
	// match ("": the events carry none).
	host, source string
	// origin are the fields that tell one shipment from another.
	origin []string
	// chain is the field naming the record's chain (set when audit-ship
	// knew it: the Kafka fleet's central side, audit-verify --chain-mark).
	chain string
	// carries lists what the events carry, for messages.
	carries string
}

var shapes = []shape{
	{name: "splunk", seq: "fields.seq", is: `fields.seq:!""`, host: "host", source: "source", chain: "fields.chain",
		origin:  []string{"host", "source", "sourcetype"},
		carries: "host, source, sourcetype, index and fields.seq/tenantId/kind/recordHash"},
	{name: "elastic", seq: "seq", is: `seq:!"" fields.seq:"" service:"" ddsource:"" hostname:""`, chain: "chain",
		carries: "seq, tenantId, kind, recordHash and prevHash; no host or source, and VictoriaLogs ignores the bulk _index"},
	{name: "datadog", seq: "seq", is: `seq:!"" fields.seq:"" (service:!"" or ddsource:!"" or hostname:!"")`, host: "hostname", source: "ddsource", chain: "chain",
		origin:  []string{"hostname", "ddsource", "service"},
		carries: "hostname, ddsource, service, the ddtags as fields, and seq/tenantId/kind/recordHash/prevHash"},
}

func shapeOf(name string) *shape {
	for i := range shapes {
		if shapes[i].name == name {
			return &shapes[i]
		}
	}
	return nil
}

// vlMissingMsg starts the _msg VictoriaLogs gives an event that had none.
const vlMissingMsg = "missing _msg field"

// Main is the entry point of the audit-fetch binary.
func Main() int { return cli.Main(prog, Run) }

// quote returns s as a LogsQL quoted string.
func quote(s string) string { return strconv.Quote(s) }

// Run is audit-fetch with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet(prog, "AUDIT_FETCH", synopsis, stderr)
	kind := fs.String("kind", "", "what audit-ship shipped: splunk, elastic or datadog (default: the one kind the query matches); gives the seq field and the events' shape")
	store := fs.String("store", "victorialogs", "store queried: victorialogs")
	base := fs.String("url", "", "store base URL, e.g. http://127.0.0.1:9428")
	query := fs.String("query", "*", "LogsQL filter selecting the audit events (ANDed with --kind, --host and --source)")
	host := fs.String("host", "", "only events of this host: splunk host (audit-ship --host), datadog hostname (--hostname)")
	source := fs.String("source", "", "only events of this source: splunk source, datadog ddsource (audit-ship --source)")
	chainID := fs.String("chain", "", "only events of this chain (their chain label: splunk fields.chain, elastic and datadog chain); required when the selection holds several chains, as a fleet's store does")
	exporter := fs.String("exporter", "", "not carried by any event: refused with what to use instead")
	field := fs.String("field", "_msg", "field holding the record line")
	seqField := fs.String("seq-field", "", "field holding the seq, to sort by (default the --kind's: splunk fields.seq, elastic and datadog seq)")
	timeout := fs.Duration("timeout", 5*time.Minute, "timeout of the queries")
	if err := cli.Parse(fs, args, "AUDIT_FETCH"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q (the selection is --query)", fs.Arg(0))
	}
	if *store != "victorialogs" {
		return cli.Usagef("--store %q: only victorialogs is supported in this version", *store)
	}
	var sh *shape
	switch *kind {
	case "", "victorialogs": // victorialogs: the store, as --kind meant before --store
	default:
		if sh = shapeOf(*kind); sh == nil {
			return cli.Usagef("unknown --kind %q: splunk, elastic or datadog, as given to audit-ship --kind (the store is --store)", *kind)
		}
	}
	if *base == "" {
		return cli.Usagef("--url is required")
	}
	if *chainID != "" && !auditchain.IsChainID(*chainID) {
		return cli.Usagef("--chain %q: a chain id is 1 to 128 of A-Z a-z 0-9 . _ : - (the recordHash of the chain's first record)", *chainID)
	}
	if *exporter != "" {
		return cli.Usagef("--exporter: the events carry no exporter name (audit-ship does not stamp it); " +
			"pick the shipment by what its events carry: --host and --source (splunk, datadog), or --query " +
			"(a datadog ddtags tag such as exporter:prod is the field exporter: --query 'exporter:=prod')")
	}
	if sh != nil && sh.host == "" && (*host != "" || *source != "") {
		f := "--host"
		if *host == "" {
			f = "--source"
		}
		return cli.Usagef("%s: --kind %s events carry %s; pick a shipment with --query (a _time range: not tenantId, which would cut holes in the one chain)", f, sh.name, sh.carries)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	q := &querier{base: strings.TrimRight(*base, "/")}

	// sel is what the user selected; the filters of --host and --source
	// name the kind's fields, so they are added once the kind is known.
	filters := func(sh *shape) string {
		var f []string
		if *host != "" && sh.host != "" {
			f = append(f, sh.host+":="+quote(*host))
		}
		if *source != "" && sh.source != "" {
			f = append(f, sh.source+":="+quote(*source))
		}
		if *chainID != "" {
			f = append(f, sh.chain+":="+quote(*chainID))
		}
		return strings.Join(f, " ")
	}
	sel := func(sh *shape) string {
		f := strings.TrimSpace(sh.is + " " + filters(sh))
		if strings.TrimSpace(*query) == "*" {
			return f
		}
		return *query + " | filter " + f
	}

	// Which kinds does the selection hold? Needed to choose the kind when
	// none is given, and to answer a wrong --kind with the right one
	// rather than with an empty or mixed fetch.
	counts := map[string]int64{}
	{
		var stats []string
		for _, s := range shapes {
			stats = append(stats, "count() if ("+strings.TrimSpace(s.is+" "+filters(&s))+") "+s.name)
		}
		c, err := q.counts(ctx, *query+" | stats "+strings.Join(stats, ", "), kindNames())
		if err != nil {
			return err
		}
		counts = c
	}
	found := func(but string) []string {
		var f []string
		for _, s := range shapes {
			if s.name != but && counts[s.name] > 0 {
				f = append(f, fmt.Sprintf("%d %s events", counts[s.name], s.name))
			}
		}
		return f
	}
	switch {
	case sh == nil:
		var only []string
		for _, s := range shapes {
			if counts[s.name] > 0 {
				only = append(only, s.name)
			}
		}
		switch len(only) {
		case 0:
			fmt.Fprintf(stderr, "%s: 0 records fetched: the query matches no events audit-ship stored\n", prog)
			return nil
		case 1:
			sh = shapeOf(only[0])
			fmt.Fprintf(stderr, "%s: --kind %s: the only kind of events the query matches\n", prog, sh.name)
		default:
			return cli.Usagef("the query matches %s: give --kind %s, the kind audit-ship shipped (each kind stores the seq its own way; mixed kinds would interleave the chains)", strings.Join(found(""), ", "), strings.Join(only, " or --kind "))
		}
	case counts[sh.name] == 0 && len(found(sh.name)) > 0:
		var kinds []string
		for _, s := range shapes {
			if counts[s.name] > 0 {
				kinds = append(kinds, "--kind "+s.name)
			}
		}
		return cli.Usagef("--kind %s: the query matches no events audit-ship --kind %s stores, but %s: give %s",
			sh.name, sh.name, strings.Join(found(sh.name), " and "), strings.Join(kinds, " or "))
	}
	if counts[sh.name] == 0 {
		fmt.Fprintf(stderr, "%s: 0 records fetched: the query matches no events audit-ship --kind %s stored\n", prog, sh.name)
		return nil
	}
	if other := found(sh.name); len(other) > 0 {
		fmt.Fprintf(stderr, "%s: --kind %s: the query also matches %s, left out\n", prog, sh.name, strings.Join(other, ", "))
	}
	if *seqField == "" {
		*seqField = sh.seq
	}

	// Several chains in the selection (a fleet's store) would interleave:
	// audit-verify would call that tampering. Refuse it, naming them.
	if *chainID == "" {
		q.stderr = stderr
		if err := q.chains(ctx, sel(sh), sh); err != nil {
			return err
		}
	}

	// Two shipments whose seq ranges overlap would interleave two chains:
	// audit-verify would call that tampering. Refuse it, naming them.
	if len(sh.origin) > 0 {
		if err := q.shipments(ctx, sel(sh), sh, *seqField); err != nil {
			return err
		}
	}

	fields := *field
	if *seqField != *field {
		fields += ", " + *seqField
	}
	resp, err := q.post(ctx, sel(sh)+" | sort by ("+*seqField+") | fields "+fields)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	w := ndjson.NewWriter(stdout, 0)
	var p fastjson.Parser
	n := 0
	// fail stops at a bad row, after writing out the good rows before it.
	fail := func(err error) error {
		if ferr := w.Flush(); ferr != nil {
			return fmt.Errorf("write stdout: %w", ferr)
		}
		fmt.Fprintf(stderr, "%s: %s fetched before the bad row\n", prog, records(n))
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			v, perr := p.ParseBytes(line)
			if perr != nil {
				return fail(exitcode.Errorf(exitcode.Input, "row %d of the query result: %v", n+1, perr))
			}
			msg := v.GetStringBytes(*field)
			if msg == nil {
				return fail(exitcode.Errorf(exitcode.Input, "row %d of the query result has no %s field", n+1, *field))
			}
			if *field == "_msg" && bytes.HasPrefix(msg, []byte(vlMissingMsg)) {
				hint := ""
				if sh.name == "elastic" {
					hint = ": audit-ship --kind elastic --doc-shape line makes the record line the document itself, which VictoriaLogs keeps only as flattened fields; ship with --doc-shape message (the default) to fetch it back"
				}
				return fail(exitcode.Errorf(exitcode.Input, "row %d of the query result (seq %s) holds no record line: VictoriaLogs stored the event without a message%s", n+1, v.GetStringBytes(*seqField), hint))
			}
			// One row is one record line: a line break inside the value
			// would turn one stored value into two lines downstream.
			if i := bytes.IndexAny(msg, "\n\r"); i >= 0 {
				return fail(exitcode.Errorf(exitcode.Input, "row %d of the query result: the %s value holds a line break at byte %d; a record line has none", n+1, *field, i))
			}
			if !utf8.Valid(msg) {
				return fail(exitcode.Errorf(exitcode.Input, "row %d of the query result: the %s value is not valid UTF-8", n+1, *field))
			}
			if err := w.Write(msg); err != nil {
				return fmt.Errorf("write stdout: %w", err)
			}
			n++
		}
		if err == io.EOF {
			break
		}
		if err == bufio.ErrBufferFull {
			return fail(exitcode.Errorf(exitcode.Input, "row %d of the query result is longer than 1 MiB", n+1))
		}
		if err != nil {
			return fail(fmt.Errorf("read query result: %w", err))
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	fmt.Fprintf(stderr, "%s: %s fetched\n", prog, records(n))
	return nil
}

// quoteArg quotes a flag value for a shell if it needs it.
func quoteArg(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// records is "1 record" or "N records".
func records(n int) string {
	if n == 1 {
		return "1 record"
	}
	return strconv.Itoa(n) + " records"
}

func kindNames() []string {
	var n []string
	for _, s := range shapes {
		n = append(n, s.name)
	}
	return n
}

// querier runs LogsQL queries against a VictoriaLogs.
type querier struct {
	base   string
	stderr io.Writer // notes
}

// post runs logsql; the caller closes the answer's body.
func (q *querier) post(ctx context.Context, logsql string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.base+"/select/logsql/query",
		strings.NewReader(url.Values{"query": {logsql}}.Encode()))
	if err != nil {
		return nil, cli.Usagef("--url: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("query %s: HTTP %d: %s", q.base, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// rows runs a stats query and returns its rows (at most max).
func (q *querier) rows(ctx context.Context, logsql string, max int) ([]map[string]string, error) {
	resp, err := q.post(ctx, logsql)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []map[string]string
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	for len(out) < max {
		var row map[string]string
		if err := dec.Decode(&row); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("query %s: unexpected answer to %q: %v", q.base, logsql, err)
		}
		out = append(out, row)
	}
	return out, nil
}

// counts runs a one-row stats query whose columns are names.
func (q *querier) counts(ctx context.Context, logsql string, names []string) (map[string]int64, error) {
	rows, err := q.rows(ctx, logsql, 2)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	if len(rows) == 0 { // nothing at all matched
		return out, nil
	}
	if len(rows) > 1 {
		return nil, fmt.Errorf("query %s: %d rows answer %q, want one", q.base, len(rows), logsql)
	}
	for _, k := range names {
		v, ok := rows[0][k]
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("query %s: unexpected answer to %q: %v", q.base, logsql, rows[0])
		}
		out[k] = n
	}
	return out, nil
}

// chains refuses a selection holding the events of more than one chain
// (two or more chain labels), naming them and --chain. Events without a
// label beside one labelled chain are taken as that chain's (a host that
// began labelling midway), with a note.
func (q *querier) chains(ctx context.Context, sel string, sh *shape) error {
	const most = 10
	rows, err := q.rows(ctx, sel+" | stats by ("+sh.chain+") count() n, min("+sh.seq+") lo, max("+sh.seq+") hi | sort by (n desc)", most+1)
	if err != nil {
		return err
	}
	labelled := 0
	unlabelled := ""
	for _, r := range rows {
		if r[sh.chain] != "" {
			labelled++
		} else {
			unlabelled = r["n"]
		}
	}
	if labelled < 2 {
		if labelled == 1 && unlabelled != "" {
			// One host that began labelling its events midway
			// (audit-verify --chain-mark added later): one chain.
			fmt.Fprintf(q.stderr, "%s: %s events carry no chain label (%s): taken as the same chain's (a host that began labelling midway); if they are another host's, give --chain\n", prog, unlabelled, sh.chain)
		}
		return nil
	}
	var names []string
	for i, r := range rows {
		if i == most {
			names = append(names, "…")
			break
		}
		id := r[sh.chain]
		if id == "" {
			id = "(no chain label)"
		}
		names = append(names, fmt.Sprintf("%s: %s events, seq %s..%s", id, r["n"], r["lo"], r["hi"]))
	}
	return cli.Usagef("the selection holds the events of several chains (%s: a fleet's store); fetch one chain at a time with --chain ID, each verified on its own: %s",
		sh.chain, strings.Join(names, "; "))
}

// shipments refuses a selection holding two shipments (origins: the
// values of sh.origin) whose seq ranges overlap.
func (q *querier) shipments(ctx context.Context, sel string, sh *shape, seqField string) error {
	const most = 20
	rows, err := q.rows(ctx, sel+" | stats by ("+strings.Join(sh.origin, ", ")+") count() n, min("+seqField+") lo, max("+seqField+") hi | sort by (lo)", most+1)
	if err != nil {
		return err
	}
	type ship struct {
		name   string
		vals   map[string]string
		n      string
		lo, hi int64
	}
	var ships []ship
	for _, r := range rows {
		var parts []string
		for _, f := range sh.origin {
			parts = append(parts, f+"="+quote(r[f]))
		}
		lo, err1 := strconv.ParseInt(r["lo"], 10, 64)
		hi, err2 := strconv.ParseInt(r["hi"], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("query %s: unexpected answer to the shipments query: %v", q.base, r)
		}
		ships = append(ships, ship{strings.Join(parts, " "), r, r["n"], lo, hi})
	}
	for i := range ships {
		for j := i + 1; j < len(ships); j++ {
			a, b := ships[i], ships[j]
			if a.lo > b.hi || b.lo > a.hi {
				continue
			}
			// The flags that tell these two apart, with their values.
			var pick []string
			for _, f := range [...]struct {
				flag, field string
			}{{"--host", sh.host}, {"--source", sh.source}} {
				if a.vals[f.field] != b.vals[f.field] {
					pick = append(pick, fmt.Sprintf("%s %s or %s %s", f.flag, quoteArg(a.vals[f.field]), f.flag, quoteArg(b.vals[f.field])))
				}
			}
			pick = append(pick, "--query (audit-ship stamps no exporter name)")
			return cli.Usagef("the selection mixes two shipments whose seqs overlap (two chains, which audit-verify would call tampering): "+
				"%s (%s events, seq %d..%d) and %s (%s events, seq %d..%d); pick one: %s",
				a.name, a.n, a.lo, a.hi, b.name, b.n, b.lo, b.hi, strings.Join(pick, "; or "))
		}
	}
	return nil
}
