// Package auditfetch is audit-fetch: it reads records back out of a log
// store's search API and writes them as record lines in seq order, so that
// audit-verify can re-check the chain from what the SIEM actually holds.
// The man page is cmd/audit-fetch/doc.go.
package auditfetch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

const prog = "audit-fetch"

const synopsis = `usage: audit-fetch --kind victorialogs --url URL [--query LOGSQL]

Reads the events audit-ship stored (via the store's query API), sorted by
seq, and writes their record lines to stdout exactly as they were stored.

Example:
  audit-fetch --kind victorialogs --url http://127.0.0.1:9428 | audit-verify`

// Main is the entry point of the audit-fetch binary.
func Main() int { return cli.Main(prog, Run) }

// Run is audit-fetch with its I/O passed in.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet(prog, "AUDIT_FETCH", synopsis, stderr)
	kind := fs.String("kind", "victorialogs", "store kind: victorialogs")
	base := fs.String("url", "", "store base URL, e.g. http://127.0.0.1:9428")
	query := fs.String("query", "*", "LogsQL filter selecting the audit events")
	field := fs.String("field", "_msg", "field holding the record line")
	seqField := fs.String("seq-field", "fields.seq", "field holding the seq, to sort by")
	timeout := fs.Duration("timeout", 5*time.Minute, "timeout of the query")
	if err := cli.Parse(fs, args, "AUDIT_FETCH"); err != nil {
		return err
	}
	if *kind != "victorialogs" {
		return cli.Usagef("--kind %q: only victorialogs is supported in this version", *kind)
	}
	if *base == "" {
		return cli.Usagef("--url is required")
	}
	q := fmt.Sprintf("%s | sort by (%s) | fields %s", *query, *seqField, *field)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*base, "/")+"/select/logsql/query",
		strings.NewReader(url.Values{"query": {q}}.Encode()))
	if err != nil {
		return cli.Usagef("--url: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("query %s: %w", *base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("query %s: HTTP %d: %s", *base, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	w := ndjson.NewWriter(stdout, 0)
	var p fastjson.Parser
	n := 0
	// fail stops at a bad row, after writing out the good rows before it.
	fail := func(err error) error {
		if ferr := w.Flush(); ferr != nil {
			return fmt.Errorf("write stdout: %w", ferr)
		}
		fmt.Fprintf(stderr, "%s: %d records fetched before the bad row\n", prog, n)
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
	fmt.Fprintf(stderr, "%s: %d records fetched\n", prog, n)
	return nil
}
