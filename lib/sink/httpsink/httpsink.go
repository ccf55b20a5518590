// Package httpsink holds what the HTTP sinks (splunk, elastic, datadog)
// share: the TLS client configuration, the loopback test that decides
// whether plain http may carry a credential, Retry-After parsing, one
// request's round trip, and the wording of their errors.
package httpsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/lib/jsonstr"
)

// IsLoopback reports whether host (no port) is localhost or a loopback IP:
// the only place a credential may go over plain http without the user
// saying so.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// TLS is the TLS part of a sink's configuration.
type TLS struct {
	CAFile             string // PEM bundle trusted instead of the system roots
	CertFile, KeyFile  string // PEM client certificate and key (both or neither)
	InsecureSkipVerify bool
}

// Config returns the client TLS configuration: TLS 1.2 or later, the CA
// file's roots if given, the client certificate if given. Errors are
// prefixed with name (the sink's name).
func (t TLS) Config(name string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: read CA file: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: CA file %s holds no PEM certificate", name, t.CAFile)
		}
		c.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New(name + ": a client certificate needs both CertFile and KeyFile")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: load client certificate: %w", name, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// RetryAfter parses a Retry-After header: delay seconds or an HTTP date
// (relative to now). Anything else, or a date in the past, is 0.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseUint(h, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// escape maps each byte that JSON requires escaped to its short form, 'u'
// for the \u00XX ones, 0 for bytes written as they are.
// AppendJSONString appends s as a JSON string (lib/jsonstr): '"' and '\'
// escaped, control bytes as their short form or \u00xx, every other byte
// (UTF-8 included) as it is. It is how the sinks carry a record line as a
// string, so the store keeps its exact bytes.
func AppendJSONString[T string | []byte](dst []byte, s T) []byte {
	switch v := any(s).(type) {
	case []byte:
		return jsonstr.Append(dst, v)
	case string:
		return jsonstr.AppendString(dst, v)
	}
	panic("unreachable")
}

// MaxMessage is how much of a SIEM's response text an error keeps.
const MaxMessage = 512

// Clean makes a SIEM's response text safe to show: every secret replaced by
// mask (a SIEM may echo the credential it refused), control characters as
// spaces, trimmed, and cut to MaxMessage bytes at a rune boundary.
func Clean(text string, secrets []string, mask string) string {
	for _, t := range secrets {
		if t != "" {
			text = strings.ReplaceAll(text, t, mask)
		}
	}
	text = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, strings.TrimSpace(text))
	if len(text) > MaxMessage {
		cut := MaxMessage
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}

// Reply is what RoundTrip read of an answer.
type Reply struct {
	Status    int
	Header    http.Header
	Body      []byte // at most the limit given to RoundTrip
	Truncated bool   // the body was longer than the limit
}

// RoundTrip sends req with client and reads at most limit bytes of the
// answer's body, then drains up to 4*limit more so the connection can be
// reused. req must carry a context with the request's timeout (timeout is
// only named in the message). A transport failure comes back as an error
// whose text names the method and the endpoint without its query (which a
// url.Error would print whole) and the cause, or says that no complete
// response came within timeout; callers scrub it of secrets and make it a
// retryable failure.
func RoundTrip(client *http.Client, req *http.Request, limit int, timeout time.Duration) (Reply, error) {
	var r Reply
	resp, err := client.Do(req)
	if err == nil {
		r.Body, err = io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
		if len(r.Body) > limit {
			r.Body, r.Truncated = r.Body[:limit], true
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4*int64(limit)))
		resp.Body.Close()
	}
	if err != nil {
		where, _, _ := strings.Cut(req.URL.String(), "?")
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return r, fmt.Errorf("%s %s: no complete response within %s", req.Method, where, timeout)
		}
		return r, fmt.Errorf("%s %s: %v", req.Method, where, err)
	}
	r.Status, r.Header = resp.StatusCode, resp.Header
	return r, nil
}

// Explain joins what the sink concluded (explain) and what the SIEM said
// (text, already cleaned of secrets; quoted here): "explain: VENDOR said
// "text"", or whichever of the two is not empty.
func Explain(explain, vendor, text string) string {
	switch {
	case text == "":
		return explain
	case explain == "":
		return strconv.Quote(text)
	}
	return explain + ": " + vendor + " said " + strconv.Quote(text)
}

// RefreshNote ends the advice for a refused credential: that it was
// re-read after the refusal (so the one shown is current), or why
// re-reading it failed.
func RefreshNote(refreshErr error) string {
	if refreshErr != nil {
		return "; re-reading it failed: " + refreshErr.Error()
	}
	return " (re-read after the refusal)"
}

// NewRequest builds a request to u with auditpipe's User-Agent, carrying
// data (no body if nil) as contentType, marked gzip-encoded if gz.
func NewRequest(ctx context.Context, method, u string, data []byte, gz bool, contentType string) (*http.Request, error) {
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if data != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("User-Agent", "auditpipe")
	return req, nil
}

// ParseURL checks a SIEM URL the way every sink does: it parses, its
// scheme is https or http, it has a host, it carries no credentials
// (credHint says where they go instead) and, unless allowQuery, no query
// (not echoed: a query may hold a secret). The fragment and the raw path
// are dropped. prefix ("splunk") starts every error.
func ParseURL(prefix, raw, credHint string, allowQuery bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: bad URL: %w", prefix, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%s: URL %s: scheme must be https (or http)", prefix, u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: URL %s has no host", prefix, u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: URL %s carries credentials: %s", prefix, u.Redacted(), credHint)
	}
	if !allowQuery && (u.RawQuery != "" || u.ForceQuery) {
		return nil, fmt.Errorf("%s: URL %s://%s%s has a query (not shown: it may hold a secret): give the base URL only", prefix, u.Scheme, u.Host, u.EscapedPath())
	}
	u.Fragment, u.RawFragment = "", ""
	u.RawPath = ""
	return u, nil
}
