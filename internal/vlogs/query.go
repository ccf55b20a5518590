package vlogs

import (
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
)

// Query runs a LogsQL query through POST /select/logsql/query and returns its
// rows in the order the server wrote them (not sorted unless the query says
// `| sort by (...)`). Every row is a flat object: VictoriaLogs returns every
// field value as a string, nested objects flattened to dotted names.
func (s *Server) Query(ctx context.Context, logsql string) ([]map[string]string, error) {
	form := url.Values{"query": {logsql}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/select/logsql/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("query victoria-logs: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query victoria-logs: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query victoria-logs %q: HTTP %d: %s", logsql, resp.StatusCode, readSnippet(resp.Body))
	}
	var rows []map[string]string
	dec := json.NewDecoder(resp.Body)
	for {
		var row map[string]string
		if err := dec.Decode(&row); err != nil {
			if errors.Is(err, io.EOF) {
				return rows, nil
			}
			return rows, fmt.Errorf("query victoria-logs %q: row %d: %w", logsql, len(rows)+1, err)
		}
		rows = append(rows, row)
	}
}

// Count returns how many rows logsql matches, using `| stats count() n`.
func (s *Server) Count(ctx context.Context, logsql string) (int, error) {
	rows, err := s.Query(ctx, logsql+" | stats count() n")
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("count victoria-logs %q: %d result rows, want 1", logsql, len(rows))
	}
	n, err := strconv.Atoi(rows[0]["n"])
	if err != nil {
		return 0, fmt.Errorf("count victoria-logs %q: %w", logsql, err)
	}
	return n, nil
}

// WaitCount polls Count (forcing a flush first, see Flush) until it is at
// least want, and returns the last count. It returns an error if timeout
// passes first, or ctx's error as it is. A count above want is returned
// without error: callers that need exactly want compare themselves.
func (s *Server) WaitCount(ctx context.Context, logsql string, want int, timeout time.Duration) (int, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n, counted := 0, false
	var last error
	for {
		if last = s.Flush(wctx); last == nil {
			var c int
			if c, last = s.Count(wctx, logsql); last == nil {
				n, counted = c, true
				if n >= want {
					return n, nil
				}
			}
		}
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if !counted {
				return n, fmt.Errorf("wait for %d rows of %q: %w", want, logsql, last)
			}
			return n, fmt.Errorf("wait for %d rows of %q: %d after %s", want, logsql, n, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Flush asks the server to make every row ingested so far searchable now
// (GET /internal/force_flush) instead of within about a second.
func (s *Server) Flush(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/internal/force_flush", nil)
	if err != nil {
		return fmt.Errorf("flush victoria-logs: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("flush victoria-logs: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("flush victoria-logs: HTTP %d: %s", resp.StatusCode, readSnippet(resp.Body))
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

// readSnippet returns up to 1 KiB of an error response, trimmed.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 1<<10))
	return strings.TrimSpace(string(b))
}
